"""msgworker booking add|complete|cancel: bookings by hand, for demos and operators.

The booking app writes core.bookings in production; these commands change it the same way, so
the review-request tick sees the same thing either way.
"""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import typer

from worker.audit import Actor
from worker.campaigns import bookings
from worker.cli.common import refusals, setup
from worker.db import session_scope
from worker.identity.stations import find_station
from worker.inputs import parse_id, parse_time

app = typer.Typer(no_args_is_help=True, help="Bookings (demos and operators; the booking app writes them too).")

_BY = typer.Option(None, "--by", help="who makes the change (audit log); default: your OS user")


def _actor(by: str | None) -> Actor:
    return Actor.cli(by) if by else Actor.os_user()


@app.command("add")
def add(
    station: str = typer.Option(..., "--station"),
    phone: str = typer.Option(..., "--phone"),
    event_at: str = typer.Option(..., "--event-at", help="ISO time of the event (no offset: the station's zone)"),
    status: str = typer.Option("confirmed", "--status"),
    first_name: str | None = typer.Option(None, "--first-name"),
    adults: int = typer.Option(10, "--adults"),
    by: str | None = _BY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a booking (the customer is found by number in the station, or added)."""
    setup()
    with refusals(), session_scope() as session:
        zone = ZoneInfo(find_station(session, station).timezone)
        booking = bookings.add_booking(
            session, _actor(by), station_code=station, phone=phone,
            event_at=parse_time(event_at, field="--event-at", example="2026-12-12T18:00", default_zone=zone),
            status=status, adults=adults, first_name=first_name,
        )
        shown = {"id": str(booking.id), "status": booking.status, "date": booking.date.isoformat()}
    typer.echo(json.dumps(shown) if as_json else f"booking {shown['id']} {shown['status']} for {shown['date']}")


def _set(booking_id: str, status: str, by: str | None) -> None:
    setup()
    with refusals(), session_scope() as session:
        parsed = parse_id(booking_id, what="a booking id")
        booking = bookings.set_status(session, parsed, status, _actor(by))
        shown = (str(booking.id), booking.status)
    typer.echo(f"booking {shown[0]} {shown[1]}")


@app.command("complete")
def complete(booking_id: str = typer.Argument(...), by: str | None = _BY) -> None:
    """Mark a booking completed: a running review-request campaign enrols it at its next tick."""
    _set(booking_id, "completed", by)


@app.command("cancel")
def cancel(booking_id: str = typer.Argument(...), by: str | None = _BY) -> None:
    """Cancel a booking: its pending review request is withdrawn at the next tick."""
    _set(booking_id, "cancelled", by)
