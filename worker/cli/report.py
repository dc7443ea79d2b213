"""msgworker report opt-outs|verify|number: compliance evidence for staff and auditors (docs/reports.md).

Exit codes: 0 done; 1 refused (bad input: the line says what to fix) or, for ``verify``, the
ZIP was changed; 2 the export was written but the ledger check failed (INTEGRITY_FAILED), or
``verify`` found the ZIP intact but recording INTEGRITY_FAILED.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer

from worker.audit import Actor
from worker.cli.common import fail, refusals, setup
from worker.db import session_scope
from worker.reports.dossier import export_number
from worker.reports.export import ExportResult, OptOutRequest, export_opt_outs, parse_range
from worker.reports.verify import verify_zip

app = typer.Typer(no_args_is_help=True)

INTEGRITY_FAILED_EXIT = 2


def _actor(by: str | None) -> Actor:
    return Actor.cli(by) if by else Actor.os_user()


def _run(export: Callable[..., ExportResult]) -> ExportResult:
    """One transaction: the export and its audit row commit together; a failed commit withdraws the file."""
    result: ExportResult | None = None
    committed = False
    try:
        with refusals(), session_scope() as session:
            result = export(session)
        committed = True
    finally:
        if result is not None and not committed:
            result.withdraw()
    assert result is not None
    return result


def _report_outcome(result: ExportResult, *, err: bool) -> None:
    integrity = result.summary["integrity"]
    where = f"wrote {result.path}" if result.path else "exported"
    typer.echo(f"{where}: {result.rows} rows; sha256 {result.sha256}", err=err)
    verdict = result.summary.get("violations", {}).get("verdict")
    if verdict:
        typer.echo(verdict, err=err)
    if integrity["status"] != "ok":
        typer.secho(f"INTEGRITY_FAILED: the ledger is broken at seq {integrity['first_bad_seq']} (see chain.json); "
                    "the export is written and marked so", fg=typer.colors.RED, err=True)
        raise typer.Exit(INTEGRITY_FAILED_EXIT)
    typer.echo("ledger integrity ok", err=err)


@app.command("opt-outs")
def opt_outs(
    start: str = typer.Option(..., "--from", help="first day received, YYYY-MM-DD (UTC)"),
    end: str = typer.Option(..., "--to", help="last day received, YYYY-MM-DD (UTC), inclusive"),
    station: str | None = typer.Option(None, "--station", help="only revocations that came through this station"),
    out: Path | None = typer.Option(None, "--out", help="write the ZIP here (never overwrites)"),
    fmt: str | None = typer.Option(None, "--format", help="csv | json: the rows on stdout instead of a ZIP"),
    unmask: bool = typer.Option(False, "--unmask", help="full phone numbers (audited as such)"),
    by: str | None = typer.Option(None, "--by", help="who is exporting (default: the OS user)"),
) -> None:
    """The opt-out audit report: every revocation received in the range, its honouring, confirmation and sends."""
    setup()
    with refusals():
        first, last = parse_range(start, end, today=datetime.now(UTC).date())
    if (out is None) == (fmt is None):
        fail("give --out FILE.zip, or --format csv|json for stdout (not both)")
    if fmt is not None and fmt not in ("csv", "json"):
        fail(f"--format must be csv or json, not {fmt!r}")
    request = OptOutRequest(first, last, station, unmask)
    actor = _actor(by)
    if out is not None:
        result = _run(lambda s: export_opt_outs(s, request, actor=actor, out=out))
        _report_outcome(result, err=False)
        return
    stdout = sys.stdout.buffer
    result = _run(lambda s: export_opt_outs(s, request, actor=actor, stream=stdout,
                                            fmt="csv" if fmt == "csv" else "json"))
    stdout.flush()
    _report_outcome(result, err=True)


@app.command()
def verify(
    file: Path = typer.Argument(..., help="an export ZIP"),
    as_json: bool = typer.Option(False, "--json", help="the result as JSON on stdout"),
) -> None:
    """Recompute the ZIP's hashes and check its structure: "ok", or what changed. Needs only the file."""
    setup()
    with refusals():
        check = verify_zip(file)
    if as_json:
        typer.echo(json.dumps(check.as_dict(), indent=2))
    elif check.ok:
        typer.echo(f"ok: {file} is exactly as exported (sha256 {check.sha256})")
    else:
        typer.echo(f"CHANGED: {file} differs from what was exported:")
        for problem in check.problems:
            typer.echo(f"  {problem}")
    if not check.ok:
        raise typer.Exit(1)
    if check.ledger_failed:
        integrity = (check.summary or {}).get("integrity") or {}
        typer.echo(f"note: the export itself records INTEGRITY_FAILED (ledger broken at seq "
                   f"{integrity.get('first_bad_seq')}) when it was made", err=True)
        raise typer.Exit(INTEGRITY_FAILED_EXIT)


@app.command()
def number(
    phone: str = typer.Argument(..., help="the phone number, any spelling"),
    out: Path = typer.Option(..., "--out", help="write the ZIP here (never overwrites)"),
    unmask: bool = typer.Option(False, "--unmask", help="the full number in the files (audited as such)"),
    by: str | None = typer.Option(None, "--by", help="who is exporting (default: the OS user)"),
) -> None:
    """The dossier of one number: every consent event, inbound message and outbound text with its gate decision."""
    setup()
    actor = _actor(by)
    result = _run(lambda s: export_number(s, phone, out=out, unmask=unmask, actor=actor))
    _report_outcome(result, err=False)
