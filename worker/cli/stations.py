"""msgworker station add|list and msgworker sender add|list: operator set-up."""

from __future__ import annotations

import json

import typer

from worker.audit import Actor
from worker.cli.common import refusals, setup
from worker.db import session_scope
from worker.identity import senders, stations

station_app = typer.Typer(no_args_is_help=True)
sender_app = typer.Typer(no_args_is_help=True)


@station_app.command("add")
def station_add(
    code: str = typer.Option(..., "--code", help="short unique code, e.g. NYC01"),
    name: str = typer.Option(..., "--name", help="display name"),
    timezone: str = typer.Option(..., "--timezone", help="IANA time zone, e.g. America/New_York"),
    brand: str = typer.Option(..., "--brand", help="brand named in HELP and opt-out replies"),
    help_text: str | None = typer.Option(None, "--help-text", help="the HELP auto-reply (CTIA: brand, STOP, contact)"),
    contact: str | None = typer.Option(None, "--contact", help="support phone, e-mail or URL"),
) -> None:
    """Create a station (a franchise location)."""
    setup()
    with refusals(), session_scope() as session:
        station = stations.create_station(
            session,
            code=code,
            name=name,
            timezone=timezone,
            brand=brand,
            help_text=help_text,
            contact=contact,
            actor=Actor.os_user(),
        )
        station_code, station_id = station.code, station.id
    for warning in stations.help_text_warnings(brand, help_text):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"station {station_code} created (id {station_id})")


@station_app.command("list")
def station_list(as_json: bool = typer.Option(False, "--json", help="one JSON array on stdout")) -> None:
    """List live stations and how many active senders each has."""
    setup()
    with session_scope() as session:
        rows = stations.list_stations(session)
        data = [
            {
                "id": str(s.id),
                "code": s.code,
                "name": s.name,
                "status": s.status,
                "timezone": s.timezone,
                "brand": s.brand_name,
                "senders": n,
            }
            for s, n in rows
        ]
    if as_json:
        typer.echo(json.dumps(data))
        return
    if not data:
        typer.echo("no stations yet: add one with `msgworker station add`")
        return
    typer.echo(f"{'CODE':<12} {'STATUS':<8} {'TIMEZONE':<22} {'SENDERS':>7}  NAME / BRAND")
    for d in data:
        typer.echo(
            f"{d['code']:<12} {d['status']:<8} {d['timezone']:<22} {d['senders']:>7}  {d['name']} / {d['brand']}"
        )


@sender_app.command("add")
def sender_add(
    station: str = typer.Option(..., "--station", help="station code"),
    channel: str = typer.Option(..., "--channel", help="sms, facebook or instagram"),
    address: str = typer.Option(..., "--address", help="SMS: the Twilio number (any spelling) or short code; Meta: id"),
    messaging_service_sid: str | None = typer.Option(None, "--messaging-service-sid", help="MG... (sms only)"),
    rate: float | None = typer.Option(None, "--rate", help="messages per second (default by number type)"),
) -> None:
    """Register an address a station sends from and receives on."""
    setup()
    with refusals(), session_scope() as session:
        sender = senders.create_sender(
            session,
            station_code=station,
            channel=channel.strip().lower(),
            address=address,
            messaging_service_sid=messaging_service_sid,
            rate_per_second=rate,
            actor=Actor.os_user(),
        )
        line = (
            f"{sender.channel} sender {sender.address} added to station {station.strip()} "
            f"(id {sender.id}, {sender.rate_per_second:g}/s)"
        )
    typer.echo(line)


@sender_app.command("list")
def sender_list(
    station: str | None = typer.Option(None, "--station", help="only this station's senders"),
    as_json: bool = typer.Option(False, "--json", help="one JSON array on stdout"),
) -> None:
    """List sender addresses by station."""
    setup()
    with refusals(), session_scope() as session:
        data = [
            {
                "id": str(s.id),
                "station": code,
                "channel": s.channel,
                "address": s.address,
                "messaging_service_sid": s.messaging_service_sid,
                "rate_per_second": s.rate_per_second,
                "active": s.is_active,
            }
            for s, code in senders.list_senders(session, station)
        ]
    if as_json:
        typer.echo(json.dumps(data))
        return
    if not data:
        typer.echo("no senders yet: add one with `msgworker sender add`")
        return
    typer.echo(f"{'STATION':<12} {'CHANNEL':<10} {'ADDRESS':<20} {'RATE':>6}  {'ACTIVE':<6} MESSAGING SERVICE")
    for d in data:
        typer.echo(
            f"{d['station']:<12} {d['channel']:<10} {d['address']:<20} {d['rate_per_second']:>6g}  "
            f"{'yes' if d['active'] else 'no':<6} {d['messaging_service_sid'] or '-'}"
        )
