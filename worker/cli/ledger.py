"""msgworker ledger verify: recompute the consent ledger's hash chain and replay its state."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy import func, select

from worker.cli.common import setup
from worker.consent.ledger import verify_ledger
from worker.db import get_sessionmaker
from worker.models import ConsentEvent

app = typer.Typer(no_args_is_help=True)


@app.command()
def verify(
    as_json: bool = typer.Option(False, "--json", help="the full report as JSON on stdout"),
    max_problems: int = typer.Option(20, "--max-problems", min=1, help="problems listed (all are counted)"),
) -> None:
    """Exit 0 if every hash and state row checks out; else exit 1 and name the first broken link."""
    setup()
    session = get_sessionmaker()()
    try:
        # One consistent snapshot: events appended while we read are simply not seen.
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        total = session.execute(select(func.count()).select_from(ConsentEvent)).scalar_one()
        # Progress on stderr, so --json output on stdout stays clean.
        with Progress(
            TextColumn("verifying ledger"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        ) as progress:
            task = progress.add_task("events", total=total)
            report = verify_ledger(
                session, max_problems=max_problems, progress=lambda n: progress.advance(task, n)
            )
    finally:
        session.rollback()
        session.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif report.ok:
        typer.echo(
            f"ledger ok: {report.events} events, {report.numbers} numbers, {report.state_rows} state rows; "
            f"digest {report.digest}"
        )
    else:
        if report.first_break is not None:
            typer.echo(f"first broken link: {report.first_break.describe()}")
        typer.echo(f"chain breaks: {report.break_count}; state mismatches: {report.mismatch_count}")
        for brk in report.breaks:
            typer.echo(f"  break {brk.describe()}")
        for mis in report.mismatches:
            typer.echo(f"  state {mis.describe()}")
    if not report.ok:
        raise typer.Exit(1)
