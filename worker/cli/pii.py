"""msgworker pii status|rotate: which keys encrypt what, and re-encryption under the newest key."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from worker.audit import Actor
from worker.cli.common import fail, setup
from worker.db import engine, session_scope
from worker.ops import pii_rotation
from worker.pii import KeyRing, PiiError
from worker.settings import get_settings

app = typer.Typer(no_args_is_help=True)

# Shown per failed value; the rest are counted, so a broken table does not flood the terminal.
_MAX_FAILURES_SHOWN = 20


def _ring() -> KeyRing:
    try:
        return KeyRing.from_settings(get_settings())
    except PiiError as exc:
        fail(f"PII_KEYS / PII_INDEX_KEY: {exc}")


def _print_usage(ring: KeyRing) -> None:
    known = {kid for kid, _ in ring.keys}
    used: set[str] = set()
    for usage in pii_rotation.key_usage(engine()):
        used |= set(usage.by_key)
        counts = ", ".join(f"{k}={n}" for k, n in sorted(usage.by_key.items())) or "empty"
        flag = "" if usage.rotated else f"  (not rotated: {usage.note})"
        typer.echo(f"{usage.table}.{usage.column}: {counts}{flag}")
        unknown = set(usage.by_key) - known
        if unknown:
            typer.secho(
                f"  error: values under key(s) {', '.join(sorted(unknown))} that PII_KEYS does not hold "
                "cannot be decrypted: add the key(s) back to PII_KEYS",
                fg=typer.colors.RED,
            )
    typer.echo(f"current key: {ring.current_key_id}; ring: {', '.join(kid for kid, _ in ring.keys)}")
    idle = [kid for kid, _ in ring.keys[1:] if kid not in used]
    if idle:
        typer.echo(f"no value uses {', '.join(idle)}: it can be removed from PII_KEYS")


@app.command()
def status() -> None:
    """Count encrypted values per key id in every table (which old keys are still needed)."""
    setup()
    _print_usage(_ring())


@app.command()
def rotate(
    batch_size: int = typer.Option(500, "--batch-size", min=1, max=10000, help="rows per committed batch"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count what would be re-encrypted; change nothing"),
    max_batches: int | None = typer.Option(
        None, "--max-batches", min=1, help="stop after this many batches per table (rerun to continue)"
    ),
) -> None:
    """Re-encrypt PII under the first key in PII_KEYS, in committed batches; rerun to resume."""
    setup()
    ring = _ring()
    eng = engine()
    kid = ring.current_key_id
    plan = [(rt, pii_rotation.stale_rows(eng, rt, kid)) for rt in pii_rotation.ROTATED_TABLES]
    if dry_run:
        for rt, n in plan:
            typer.echo(f"{rt.name}: {n} row(s) to re-encrypt under {kid}")
        _print_usage(ring)
        return

    results: list[pii_rotation.TableResult] = []
    actor = Actor.os_user()
    console = Console(stderr=True)
    try:
        with Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            for rt, n in plan:
                task = progress.add_task(rt.name, total=n)

                def advance(rows: int, task: TaskID = task) -> None:
                    progress.advance(task, rows)

                results.append(
                    pii_rotation.rotate_table(
                        session_scope, rt, ring, actor=actor, batch_size=batch_size, max_batches=max_batches,
                        on_batch=advance,
                    )
                )
                progress.update(task, completed=max(progress.tasks[task].completed, n))
    except KeyboardInterrupt:
        # The open batch rolled back; committed batches stay rotated.
        typer.secho("interrupted: committed batches are kept; rerun `msgworker pii rotate` to continue", err=True)
        raise typer.Exit(130) from None

    failures = [(r.table, f) for r in results for f in r.failures]
    for r in results:
        typer.echo(f"{r.table}: {r.rows} row(s) in {r.batches} batch(es), {r.values} value(s) re-encrypted")
    for table, f in failures[:_MAX_FAILURES_SHOWN]:
        typer.secho(f"failed: {table} id={f.row_id} {f.column}: {f.error}", fg=typer.colors.RED, err=True)
    if len(failures) > _MAX_FAILURES_SHOWN:
        typer.secho(f"... and {len(failures) - _MAX_FAILURES_SHOWN} more failures", fg=typer.colors.RED, err=True)

    remaining = sum(pii_rotation.stale_rows(eng, rt, kid) for rt in pii_rotation.ROTATED_TABLES)
    for (table, column), why in pii_rotation.NOT_ROTATED.items():
        typer.echo(f"{table}.{column}: left under its original keys ({why})")
    if failures:
        fail(f"{len(failures)} value(s) could not be re-encrypted (listed above); fix PII_KEYS and rerun")
    if remaining:
        if any(r.stopped_early for r in results):
            typer.echo(f"stopped after --max-batches: {remaining} row(s) still to do; rerun to continue")
            return
        fail(f"{remaining} row(s) were locked by other transactions or written meanwhile under an old key; rerun")
    typer.echo(f"done: every rotatable value is under key {kid}")
