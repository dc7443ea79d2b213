"""msgworker doctor: check database, migrations, broker, worker, Twilio and PII keys."""

from __future__ import annotations

import typer

from worker.logging import configure_logging
from worker.ops.doctor import Check, Status, run_checks

_COLORS = {Status.OK: typer.colors.GREEN, Status.WARN: typer.colors.YELLOW, Status.FAIL: typer.colors.RED}


def _print(check: Check) -> None:
    typer.secho(f"[{check.status.value:^4}] {check.name}: {check.detail}", fg=_COLORS.get(check.status))
    if check.fix and check.status is not Status.OK:
        typer.echo(f"       fix: {check.fix}")


def doctor(
    worker_timeout: float = typer.Option(5.0, "--worker-timeout", min=0.5, help="seconds to wait for a worker"),
) -> None:
    """Check that this deployment can work; print each problem with its fix. Exit 0 only if nothing failed."""
    # Not common.setup(): that refuses unusable settings, and reporting them is the point here.
    configure_logging("WARNING", "console")
    results = run_checks(worker_timeout=worker_timeout, report=_print)
    failed = [c for c in results if c.status is Status.FAIL]
    warned = [c for c in results if c.status is Status.WARN]
    if failed:
        typer.secho(f"{len(failed)} check(s) failed", fg=typer.colors.RED)
        raise typer.Exit(1)
    suffix = f" ({len(warned)} warning(s))" if warned else ""
    typer.secho(f"all checks passed{suffix}", fg=typer.colors.GREEN)
