"""msgworker feedback escalations: reviews rated "could be better", for a person to follow up."""

from __future__ import annotations

import json

import typer

from worker.campaigns import reviews
from worker.cli.common import setup
from worker.db import session_scope

app = typer.Typer(no_args_is_help=True, help="Review replies: escalations for staff.")


@app.command("escalations")
def escalations(
    station: str | None = typer.Option(None, "--station", help="only this station"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reviews rated "could be better", oldest first, with the reply and the service-recovery coupon."""
    setup()
    with session_scope() as session:
        rows = reviews.escalations(session, station)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no escalated reviews")
    for r in rows:
        when = r.escalated_at.isoformat() if r.escalated_at else "-"
        typer.echo(f"{r.review_id}  {r.station}  {r.phone}  escalated {when}"
                   f"  coupon {r.coupon or 'none (no service-recovery pool or it is empty)'}")
        typer.echo(f"    reply: {r.reply!r}")
