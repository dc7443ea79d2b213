"""msgworker send PHONE TEXT: put one text in the outbox (staff sends, and for trying it out).

The command only writes the outbox row; the worker's release tick and send task decide and
send it (the gate runs at send time). ``--wait`` polls the row until the worker has decided.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import func, select

from compliance.errors import InvalidNumber
from compliance.phones import mask, normalize
from worker import audit
from worker.cli.common import fail, setup
from worker.db import session_scope
from worker.models import OutboundMessage, Station
from worker.outbox import enqueue

__all__ = ["send"]

# Where a row stops changing without more time passing (deferred rows wait for their minute).
_DECIDED = frozenset({"sent", "delivered", "undelivered", "failed", "blocked", "deferred", "cancelled", "unknown"})


class CliPurpose(enum.StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


def _parse_at(at: str, station_tz: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at {at!r} is not an ISO time (e.g. 2026-07-04T10:00 or 2026-07-04T10:00-04:00)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(station_tz))


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
    """Queue one text for the worker to send through the send gate."""
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
        not_before = _parse_at(at, found.timezone) if at else None
        try:
            result = enqueue(
                session,
                station=found,
                to=e164,
                body=text,
                purpose=purpose.value,
                idempotency_key=key or f"cli:{uuid.uuid4()}",
                not_before=not_before,
                created_by=audit.cli_actor(),
            )
        except ValueError as exc:
            fail(str(exc))
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
