"""msgworker review list|resolve: the queue of messages a person must read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import typer
from sqlalchemy import select

from compliance.business_days import business_days_between
from compliance.phones import mask
from worker import pii
from worker.audit import Actor
from worker.cli.common import fail, refusals, setup
from worker.consent import review
from worker.db import session_scope
from worker.inputs import parse_id
from worker.models import Message
from worker.settings import get_settings

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="one JSON array on stdout"),
    limit: int | None = typer.Option(None, "--limit", min=1),
) -> None:
    """Open review items, nearest deadline first ("!" marks items inside the warning window)."""
    setup()
    now = datetime.now(UTC)
    warn = get_settings().CONSENT_REVIEW_WARN_BUSINESS_DAYS
    rows: list[dict[str, Any]] = []
    with session_scope() as session:
        for item, station in review.list_open(session, limit=limit):
            tz = station.timezone if station is not None else "America/New_York"
            body = None
            if item.message_id is not None:
                body = session.execute(select(Message.body).where(Message.id == item.message_id)).scalar_one_or_none()
            rows.append(
                {
                    "id": str(item.id),
                    "deadline_at": item.deadline_at.astimezone(UTC).isoformat(),
                    "business_days_left": business_days_between(now, item.deadline_at, tz),
                    "overdue": item.deadline_at <= now,
                    "station": station.code if station is not None else None,
                    "phone": mask(pii.decrypt(item.phone_encrypted, kind="phone")),
                    "rule": item.classification.get("rule"),
                    "matched": item.classification.get("matched"),
                    "body": body,
                    "created_at": item.created_at.astimezone(UTC).isoformat(),
                }
            )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no open review items")
        return
    for r in rows:
        flag = "!" if r["overdue"] or r["business_days_left"] <= warn else " "
        typer.echo(
            f"{flag} {r['id']}  due {r['deadline_at']} ({r['business_days_left']} business days left)  "
            f"station {r['station']}  {r['phone']}  rule={r['rule']} matched={r['matched']!r}"
        )
        if r["body"] is not None:
            typer.echo(f"    message: {r['body']}")


@app.command()
def resolve(
    item_id: str = typer.Argument(..., help="review item id (from `msgworker review list`)"),
    as_: str = typer.Option(..., "--as", help="opt_out | not_opt_out"),
    by: str = typer.Option(..., "--by", help="who decided"),
    note: str = typer.Option(..., "--note", help="why (kept in the ledger and the audit log)"),
) -> None:
    """Decide an item: opt_out records the opt-out (and its confirmation); not_opt_out lifts the pause."""
    setup()
    if as_ not in ("opt_out", "not_opt_out"):
        fail("--as must be opt_out or not_opt_out")
    resolution: Literal["opt_out", "not_opt_out"] = "opt_out" if as_ == "opt_out" else "not_opt_out"
    with refusals():
        parsed = parse_id(item_id, what="a review item id")
    if not by.strip() or not note.strip():
        fail("--by and --note must not be empty")
    with refusals(), session_scope() as session:
        result = review.resolve(session, parsed, resolution=resolution, actor=Actor.cli(by), note=note.strip())
        status = result.item.status
        resolved_id = result.resolved.event.id
        opt_out_id = result.opt_out.event.id if result.opt_out else None
        confirmation = result.confirmation.id if result.confirmation else None
    typer.echo(f"review {parsed} {status}: event {resolved_id}")
    if opt_out_id is not None:
        typer.echo(f"opt-out recorded: event {opt_out_id}" + (f"; confirmation queued {confirmation}"
                                                             if confirmation else ""))
