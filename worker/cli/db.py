"""msgworker db upgrade|downgrade|current."""

from __future__ import annotations

import typer

from worker import migrate
from worker.cli.common import setup

app = typer.Typer(no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    setup()
    migrate.upgrade(revision)
    typer.echo(f"database at {migrate.current_revision()}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="target revision, or 'base'")) -> None:
    """Revert migrations down to REVISION."""
    setup()
    migrate.downgrade(revision)
    typer.echo(f"database at {migrate.current_revision() or 'base'}")


@app.command()
def current() -> None:
    """Print the database's revision and the code's head."""
    setup()
    cur = migrate.current_revision()
    head = migrate.head_revision()
    typer.echo(f"current: {cur or 'base'}\nhead:    {head}")
    if cur != head:
        typer.echo("database is not at head: run `msgworker db upgrade`")
