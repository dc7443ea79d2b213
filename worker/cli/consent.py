"""msgworker consent show|opt-in|opt-out|import: staff and bulk changes to the consent ledger.

Each change is made as ``cli:<name>`` (``--by``, or the OS user): the ledger event and its
public.audit_logs row commit together; an import commits and audits batch by batch. ``show``
prints the full number, so it is audited too (a VIEW row).
"""

from __future__ import annotations

import csv
import getpass
import json
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worker.audit import Actor
from worker.cli.common import fail, refusals, setup
from worker.consent import importer, staff
from worker.db import session_scope
from worker.inputs import parse_time

app = typer.Typer(no_args_is_help=True)


def _who(by: str | None) -> Actor:
    if by and by.strip():
        return Actor.cli(by)
    try:
        return Actor.cli(getpass.getuser())
    except (KeyError, OSError):
        fail("say who is making this change with --by NAME")


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    return parse_time(value, field="--occurred-at", example="2026-03-02T15:00:00Z")


@app.command()
def show(
    phone: str = typer.Argument(..., help="the number, any common spelling"),
    station: str | None = typer.Option(None, "--station", help="station code: the state covering that station"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    by: str | None = typer.Option(None, "--by", help="who is looking (audited; default: your OS user)"),
) -> None:
    """Show a number's consent state, open reviews and every ledger event (audited as a VIEW)."""
    setup()
    actor = _who(by)
    with refusals(), session_scope() as session:
        summary = staff.consent_summary(
            session, phone, actor=actor, station=staff.station_by_code(session, station)
        )
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    yes = {True: "yes", False: "no"}
    typer.echo(f"phone: {summary['phone']}" + (f" (station {summary['station']})" if summary["station"] else ""))
    typer.echo(f"opted out: {yes[summary['opted_out']]}  marketing opted out: {yes[summary['marketing_opted_out']]}")
    typer.echo(f"marketing consent: {yes[summary['marketing_consent']]}  pending review: "
               f"{yes[summary['pending_review']]}")
    for st in summary["states"]:
        typer.echo(
            f"  scope {st['scope']}: opted_out={st['opted_out']} marketing_opted_out={st['marketing_opted_out']} "
            f"marketing_consent={st['marketing_consent']} pending_review={st['pending_review']}"
        )
    for item in summary["open_reviews"]:
        typer.echo(f"  open review {item['id']} due {item['deadline_at']}")
    typer.echo(f"events: {len(summary['events'])}")
    for ev in summary["events"]:
        typer.echo(
            f"  #{ev['seq']} {ev['occurred_at']} {ev['kind']} purpose={ev['purpose']} source={ev['source']} "
            f"scope={ev['scope']} id={ev['id']}"
        )


@app.command("opt-out")
def opt_out(
    phone: str = typer.Argument(...),
    by: str = typer.Option(..., "--by", help="who asked for it / who is recording it"),
    station: str | None = typer.Option(None, "--station", help="station code (default: business-wide)"),
    purpose: str = typer.Option("all", "--purpose", help="all | marketing"),
    note: str | None = typer.Option(None, "--note", help="why (kept in the ledger and the audit log)"),
    occurred_at: str | None = typer.Option(None, "--occurred-at", help="when the person asked (ISO-8601)"),
) -> None:
    """Record an opt-out a person made outside SMS (phone call, e-mail, in person)."""
    setup()
    actor = _who(by)
    with refusals(), session_scope() as session:
        result = staff.staff_opt_out(
            session, phone, actor=actor, station=staff.station_by_code(session, station),
            purpose=purpose, note=note, occurred_at=_when(occurred_at),
        )
        event_id, seq, moved = result.event.id, result.event.seq, result.moved_to_opted_out
    suffix = "" if moved else "; the number was already opted out"
    typer.echo(f"opt-out recorded: event {event_id} (seq {seq}){suffix}")


@app.command("opt-in")
def opt_in(
    phone: str = typer.Argument(...),
    purpose: str = typer.Option(..., "--purpose", help="marketing | transactional | all"),
    evidence_file: Path = typer.Option(..., "--evidence-file", help="proof of consent (JSON, text, or a scan)"),
    by: str | None = typer.Option(None, "--by", help="who is recording it (default: your OS user)"),
    station: str | None = typer.Option(None, "--station", help="station code (default: business-wide)"),
    note: str | None = typer.Option(None, "--note"),
    occurred_at: str | None = typer.Option(None, "--occurred-at", help="when consent was given (ISO-8601)"),
) -> None:
    """Record consent with its evidence; lifts an opt-out in that scope."""
    setup()
    actor = _who(by)
    with refusals(), session_scope() as session:
        result = staff.staff_opt_in(
            session, phone, purpose=purpose, evidence_file=evidence_file, actor=actor,
            station=staff.station_by_code(session, station), note=note, occurred_at=_when(occurred_at),
        )
        event_id, seq, kind = result.event.id, result.event.seq, result.event.kind
    typer.echo(f"{kind} recorded: event {event_id} (seq {seq})")


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="CSV with a phone column (+ occurred_at, station, note)"),
    by: str | None = typer.Option(None, "--by", help="who is importing (default: your OS user)"),
    rejects: Path | None = typer.Option(None, "--rejects", help="also write rejected rows (line, reason) to this CSV"),
    batch_size: int = typer.Option(500, "--batch-size", min=1, max=5000, help="rows per committed batch"),
) -> None:
    """Import an existing opt-out list; idempotent (re-running records nothing new)."""
    setup()
    actor = _who(by)
    if not file.is_file():
        fail(f"{file} is not a readable file")
    total = importer.count_rows(file)
    console = Console(stderr=True)
    with refusals(), Progress(
        TextColumn("importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(file.name, total=total)
        report = importer.import_opt_outs(
            file, actor=actor, scope=session_scope, batch_size=batch_size, progress=lambda n: progress.advance(task, n)
        )
    typer.echo(
        f"rows: {report.rows}  recorded: {report.recorded}  already recorded: {report.already}  "
        f"rejected: {len(report.rejected)}  newly opted out: {report.newly_opted_out}  "
        f"unsent messages cancelled: {report.cancelled_outbound}"
    )
    for rej in report.rejected:
        typer.echo(f"rejected line {rej.line}: {rej.reason}")
    if rejects is not None:
        with rejects.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["line", "reason"])
            writer.writerows([(r.line, r.reason) for r in report.rejected])
        typer.echo(f"rejected rows written to {rejects}")
