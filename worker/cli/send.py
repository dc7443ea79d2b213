"""msgworker send: put one text in the outbox, and review the texts the gate held.

``msgworker send PHONE TEXT`` (the ``text`` command, the group's default) only writes the
outbox row and its audit row (worker/outbound/staff_send.py, as the OS user); the worker's
release tick and send task decide and send it (the gate runs at send time). ``--wait`` polls
the row until the worker has decided.

``msgworker send held`` lists the texts the gate held because it could not place the
recipient (zone_unknown); ``msgworker send release`` puts one back in the outbox with the
state staff say the recipient is in, or cancels it (worker/outbound/held.py).
"""

from __future__ import annotations

import enum
import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import func, select
from typer.core import TyperGroup

from compliance.errors import InvalidNumber
from compliance.phones import mask, normalize
from worker.audit import Actor
from worker.cli.common import fail, refusals, setup
from worker.db import session_scope
from worker.inputs import parse_id, parse_time
from worker.models import OutboundMessage, Station
from worker.outbound import held as held_texts
from worker.outbound.staff_send import queue_staff_text

__all__ = ["app", "send"]

_DEFAULT_COMMAND = "text"


class _DefaultsToText(TyperGroup):
    """``msgworker send PHONE TEXT ...`` keeps working: anything that is not a subcommand (or
    --help) is the arguments of the default ``text`` command."""

    # ctx is typer's vendored click Context, which typer does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [_DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultsToText,
    no_args_is_help=True,
    help="Outbound texts: queue one (msgworker send PHONE TEXT --station CODE --purpose P; "
    "the default command), list texts held for review, release or cancel one.",
)

# Where a row stops changing without more time passing (deferred rows wait for their minute).
_DECIDED = frozenset({"sent", "delivered", "undelivered", "failed", "blocked", "deferred", "cancelled", "unknown"})


class CliPurpose(enum.StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


def _parse_at(at: str, station_tz: str) -> datetime:
    return parse_time(
        at, field="--at", example="2026-07-04T10:00 or 2026-07-04T10:00-04:00", default_zone=ZoneInfo(station_tz)
    )


def _describe(msg: OutboundMessage) -> dict[str, object]:
    return {
        "id": str(msg.id),
        "status": msg.status,
        "purpose": msg.purpose,
        "not_before": msg.not_before.isoformat() if msg.not_before else None,
        "gate_decision": msg.gate_decision,
        "gate_reason": msg.gate_reason,
        "provider_sid": msg.provider_sid,
        "error_code": msg.error_code,
        "idempotency_key": msg.idempotency_key,
    }


@app.command(_DEFAULT_COMMAND)
def send(
    phone: str = typer.Argument(..., help="recipient number, E.164 (+14155550123) or US national format"),
    text: str = typer.Argument(..., help="message body, at most 1600 characters"),
    station: str = typer.Option(..., "--station", help="code of the sending station"),
    purpose: CliPurpose = typer.Option(..., "--purpose", help="transactional or marketing"),
    key: str | None = typer.Option(None, "--key", help="idempotency key: the same key twice is one message"),
    at: str | None = typer.Option(None, "--at", help="not before this ISO time (no offset: the station's zone)"),
    wait: float = typer.Option(0.0, "--wait", help="seconds to wait for the worker's decision (0: do not wait)"),
    as_json: bool = typer.Option(False, "--json", help="print the row as one JSON object"),
) -> None:
    """Queue one text for the worker to send through the send gate (also: msgworker send PHONE TEXT)."""
    setup()
    try:
        e164 = normalize(phone)
    except InvalidNumber as exc:
        fail(f"{exc}: {phone!r}")
    with session_scope() as session:
        found = session.execute(
            select(Station).where(func.lower(Station.code) == station.lower(), Station.deleted_at.is_(None))
        ).scalar_one_or_none()
        if found is None:
            fail(f"no station with code {station!r} (see `msgworker station list`)")
        with refusals():
            not_before = _parse_at(at, found.timezone) if at else None
            result = queue_staff_text(
                session,
                actor=Actor.os_user(),
                station=found,
                to=e164,
                body=text,
                purpose=purpose.value,
                idempotency_key=key,
                not_before=not_before,
            )
        message_id, created = result.message.id, result.created
        row = _describe(result.message)

    deadline = time.monotonic() + wait
    while wait > 0 and str(row["status"]) not in _DECIDED and time.monotonic() < deadline:
        time.sleep(0.25)
        with session_scope() as session:
            msg = session.get(OutboundMessage, message_id)
            assert msg is not None
            row = _describe(msg)
    if wait > 0 and str(row["status"]) not in _DECIDED:
        typer.secho(
            f"warning: no decision within {wait:g}s; is the worker running (`msgworker run`)?",
            fg=typer.colors.YELLOW,
            err=True,
        )

    if as_json:
        typer.echo(json.dumps({**row, "to": mask(e164), "created": created}))
        return
    typer.echo(
        f"outbox {row['id']} {'created' if created else 'exists (same key)'} to={mask(e164)} "
        f"purpose={row['purpose']} status={row['status']} not_before={row['not_before']}"
    )
    if row["gate_decision"]:
        typer.echo(
            f"decision={row['gate_decision']} reason={row['gate_reason'] or '-'} "
            f"sid={row['provider_sid'] or '-'} error={row['error_code'] or '-'}"
        )


@app.command("held")
def held(
    station: str | None = typer.Option(None, "--station", help="only this station's held texts"),
    as_json: bool = typer.Option(False, "--json", help="one JSON array on stdout"),
) -> None:
    """Texts held for review: the gate could not place the recipient (zone_unknown), oldest first."""
    setup()
    with refusals(), session_scope() as session:
        rows = held_texts.list_held(session, station_code=station)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no texts held for review")
        return
    for r in rows:
        typer.echo(
            f"{r.id}  station {r.station}  to={r.to}  purpose={r.purpose}  campaign={r.campaign or '-'}  "
            f"created {r.created_at.isoformat()}  body {r.body_length} chars"
        )
    typer.echo(
        f"{len(rows)} held; release one with `msgworker send release ID --state XX --by NAME` "
        "or cancel it with `msgworker send release ID --cancel --by NAME`"
    )


@app.command("release")
def release(
    message_id: str = typer.Argument(..., help="outbox id (from `msgworker send held`)"),
    state: str | None = typer.Option(None, "--state", help="US state the recipient is in (USPS code: TX, NY, DC...)"),
    cancel: bool = typer.Option(False, "--cancel", help="cancel the text instead of releasing it"),
    by: str = typer.Option(..., "--by", help="who reviewed it (kept on the row and in the audit log)"),
    note: str | None = typer.Option(None, "--note", help="why, or how the location is known"),
    as_json: bool = typer.Option(False, "--json", help="print the result as one JSON object"),
) -> None:
    """Release a held text with the recipient's state, or cancel it with --cancel.

    Released, it goes back to the outbox due now, and the gate decides again in that state's
    zones and quiet hours (late at night it waits for the next lawful minute).
    """
    setup()
    if cancel == (state is not None):
        fail("give either --state XX (release) or --cancel, not both or neither")
    with refusals():
        parsed = parse_id(message_id, what="an outbox id", hint=" (see `msgworker send held`)")
    actor = Actor.cli(by)
    with refusals(), session_scope() as session:
        if state is not None:
            result = held_texts.release(session, parsed, state=state, actor=actor, note=note)
        else:
            result = held_texts.cancel(session, parsed, actor=actor, note=note)
    if as_json:
        typer.echo(json.dumps({
            "id": str(result.id),
            "status": result.status,
            "recipient_state": result.recipient_state,
            "not_before": result.not_before.isoformat(),
            "reviewed_at": result.reviewed_at.isoformat(),
        }))
        return
    if result.recipient_state is not None:
        typer.echo(
            f"released {result.id}: recipient in {result.recipient_state} (by {by.strip()}); status={result.status}, "
            "due now: the gate decides again in that state's zones and quiet hours"
        )
    else:
        typer.echo(f"cancelled {result.id} (by {by.strip()}); it will not be sent")
