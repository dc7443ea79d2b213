"""msgworker demo: watch a scripted day go through the real pipeline (see worker/ops/demo.py)."""

from __future__ import annotations

import typer
from sqlalchemy.exc import OperationalError

from worker import migrate
from worker.cli.common import fail, setup
from worker.db import session_scope

__all__ = ["demo"]


def demo(
    what: str = typer.Argument("day", help="day (the consent day) or campaigns (one campaign of each kind)"),
    seed: int | None = typer.Option(None, "--seed", help="fix the random demo numbers"),
) -> None:
    """Play a scripted day (question, STOP, blocked marketing, quiet hours, START, a send) against a fake Twilio;
    `msgworker demo campaigns`: a review request that escalates, and a coupon campaign to 20 customers."""
    setup()
    from worker.ops.campaign_demo import run_campaign_demo
    from worker.ops.demo import DemoFailure, run_demo

    if what not in ("day", "campaigns"):
        fail(f"unknown demo {what!r}: day or campaigns")

    try:
        current, head = migrate.current_revision(), migrate.head_revision()
    except OperationalError as exc:  # refused, unknown host, bad auth: the same advice
        fail(f"cannot reach the database ({type(exc).__name__}); is Postgres up and DATABASE_URL right?")
    if current != head:
        fail(f"database is at {current or 'base'}, code at {head}: run `msgworker db upgrade` first")
    try:
        if what == "campaigns":
            run_campaign_demo(typer.echo, scope=session_scope, seed=seed)
        else:
            run_demo(typer.echo, scope=session_scope, seed=seed)
    except DemoFailure as exc:
        fail(f"demo step failed: {exc}")
