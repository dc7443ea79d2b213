"""msgworker inbox failed|retry|show|stats: webhook inbox rows an operator has to look at.

A row the worker could not act on (unknown station, unparseable number, malformed payload,
out of attempts) is marked failed with a reason and stays here; nothing is retried on its
own. After fixing the cause (say, `msgworker sender add` for the missing number),
`msgworker inbox retry ID` (or `--all`) re-runs it: processing is idempotent, so a retry of
a row whose messages were already stored stores nothing twice.

Output never shows a raw payload: numbers are masked and message text is reduced to its
length (so ``show`` is not an audited VIEW: it reveals no full number). A retry is a staff
change: it writes one public.audit_logs row, as the OS user running the command. The queries
are worker/ingest/service.py's; this module has no SQL of its own.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import typer

from compliance.phones import mask
from worker import pii
from worker.audit import Actor
from worker.cli.common import fail, setup
from worker.db import session_scope
from worker.errors import InvalidInput, surface
from worker.ingest import service
from worker.ingest.payloads import BadInput, decode_params, parse_meta
from worker.inputs import parse_id

app = typer.Typer(no_args_is_help=True)

_MASKED_FIELDS = frozenset({"From", "To", "Caller", "Called", "WaId"})
_TEXT_FIELDS = frozenset({"Body", "ButtonText", "ButtonPayload", "Address", "Label", "Latitude", "Longitude"})


def _parse_id(value: str) -> uuid.UUID:
    try:
        return parse_id(value, what="an inbox id", hint=" (a UUID from `msgworker inbox failed`)")
    except InvalidInput as exc:
        fail(str(exc), surface(exc).exit_code)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


@app.command()
def failed(
    limit: int = typer.Option(50, "--limit", min=1, help="at most this many rows, newest first"),
    provider: str | None = typer.Option(None, "--provider", help="twilio_sms | twilio_status | meta"),
    as_json: bool = typer.Option(False, "--json", help="one JSON array on stdout"),
) -> None:
    """Rows marked failed, with the reason (never the payload)."""
    setup()
    with session_scope() as session:
        rows = service.failed_rows(session, provider=provider, limit=limit)
    out = [
        {"id": str(r.id), "provider": r.provider, "received_at": _iso(r.received_at), "attempts": r.attempts,
         "reason": r.last_error}
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    if not out:
        typer.echo("no failed inbox rows")
        return
    for r in out:
        typer.echo(f"{r['id']}  {r['provider']:<13}  {r['received_at']}  attempts={r['attempts']}  {r['reason']}")


@app.command()
def retry(
    inbox_id: str | None = typer.Argument(None, help="inbox id (from `msgworker inbox failed`)"),
    all_failed: bool = typer.Option(False, "--all", help="re-run every failed row (up to --limit)"),
    limit: int = typer.Option(500, "--limit", min=1, help="with --all: at most this many rows"),
) -> None:
    """Re-run a row now, in this process, and print what happened (exit 1 if it failed again)."""
    setup()
    if all_failed == (inbox_id is not None):
        fail("give an inbox ID or --all (not both)")
    actor = Actor.os_user()
    if inbox_id is not None:
        row_id = _parse_id(inbox_id)
        with session_scope() as session:
            result = service.retry_row(session, row_id, actor=actor)
        if result is None:
            fail(f"no inbox row {inbox_id}")
        typer.echo(f"{result.inbox_id}  {result.outcome}" + (f"  {result.reason}" if result.reason else ""))
        if result.outcome != "processed":
            raise typer.Exit(1)
        return
    with session_scope() as session:
        report = service.retry_failed(session, actor=actor, limit=limit)
    for result in report.not_processed:
        typer.echo(f"{result.inbox_id}  {result.outcome}  {result.reason}")
    counts = report.counts
    typer.echo(f"retried {report.retried}: {counts['processed']} processed, {counts['failed']} failed, "
               f"{counts['retry']} left pending (transient)")
    if counts["failed"]:
        raise typer.Exit(1)


def _masked_fields(provider: str, plain: str, content_type: str | None) -> dict[str, Any]:
    if provider == "meta":
        try:
            meta = parse_meta(plain)
        except BadInput as exc:
            return {"unparseable": str(exc)}
        return {
            "channel": meta.channel,
            "messages": [{"mid": e.mid, "page_id": e.page_id, "kind": e.kind, "text_chars": len(e.body)}
                         for e in meta.events],
            "skipped_events": meta.skipped,
            "problems": meta.errors,
        }
    try:
        params = decode_params(plain, content_type)
    except BadInput as exc:
        return {"unparseable": str(exc)}
    shown: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        if key in _MASKED_FIELDS:
            shown[key] = mask(value) if value else value
        elif key in _TEXT_FIELDS:
            shown[key] = f"<{len(value)} chars>"
        else:
            shown[key] = value[:120]
    return shown


@app.command()
def show(
    inbox_id: str = typer.Argument(..., help="inbox id"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """One row: status, attempts, reason, and its fields with numbers masked and text reduced to a length."""
    setup()
    row_id = _parse_id(inbox_id)
    with session_scope() as session:
        row = service.inbox_row(session, row_id)
    if row is None:
        fail(f"no inbox row {inbox_id}")
    try:
        fields = _masked_fields(row.provider, pii.decrypt(row.payload_encrypted, kind="inbox"), row.content_type)
    except pii.PiiError as exc:
        fields = {"undecryptable": str(exc)}
    out = {
        "id": str(row.id),
        "provider": row.provider,
        "provider_event_id": row.provider_event_id,
        "delivery_id": row.delivery_id,
        "content_type": row.content_type,
        "received_at": _iso(row.received_at),
        "status": row.status,
        "attempts": row.attempts,
        "reason": row.last_error,
        "processed_at": _iso(row.processed_at),
        "fields": fields,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for key, value in out.items():
        if key != "fields":
            typer.echo(f"{key}: {value}")
    typer.echo("fields:")
    for key, value in fields.items():
        typer.echo(f"  {key}: {value}")


@app.command()
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Row counts by provider and status, and the age of the oldest pending row."""
    setup()
    with session_scope() as session:
        counts, oldest = service.inbox_counts(session)
    out: dict[str, Any] = {
        "counts": [{"provider": r.provider, "status": r.status, "rows": r.n} for r in counts],
        "oldest_pending_seconds": round(oldest, 1) if oldest is not None else None,
    }
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for r in out["counts"]:
        typer.echo(f"{r['provider']:<13} {r['status']:<9} {r['rows']}")
    typer.echo(f"oldest pending: {out['oldest_pending_seconds']} s" if oldest is not None else "nothing pending")
