"""Exports end to end: check the request, read the snapshot, write the files, audit, publish.

Each export, whoever asks (a person at the command line, the monthly beat job), is one
transaction owned by the caller: the read snapshot (worker/reports/snapshot.py), then its
one ``VIEW`` audit row (who, the parameters, the row count, the SHA-256 of what was written,
whether numbers were unmasked), flushed in that same transaction. A ZIP is written beside its
target and linked into place only after the audit row is in the transaction; if anything
fails, no file is left behind (the caller removes a published file when its commit fails:
``ExportResult.withdraw``).

Bad input is refused before any reading (worker/errors.py): a range reversed or in the future,
an unknown station, an output path that cannot be written or already exists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy.orm import Session

from compliance.consent_hash import format_ts
from compliance.report_tally import Tally
from worker import audit
from worker.audit import Actor
from worker.errors import InvalidInput
from worker.models import AuditAction
from worker.reports.archive import HashingStream, ReportZip
from worker.reports.beside import BackgroundCheck, split
from worker.reports.chain import RANGE_CHECKED, ChainResult
from worker.reports.csv_rows import csv_writer, write_rows
from worker.reports.html import opt_out_page
from worker.reports.opt_outs import COLUMNS, RangeParams, overdue_reviews, seq_bounds, stream_rows
from worker.reports.snapshot import ReadSnapshot, read_snapshot
from worker.reports.verify import FORMAT

__all__ = [
    "CSV_NAME",
    "ExportResult",
    "OptOutRequest",
    "audit_export",
    "csv_writer",
    "export_opt_outs",
    "generator",
    "json_bytes",
    "parse_range",
    "write_csv",
    "write_rows",
]

CSV_NAME = "opt_outs.csv"
StreamFormat = Literal["csv", "json"]


def generator() -> str:
    try:
        version = metadata.version("msgworker")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        version = "unknown"
    return f"msgworker {version}"


def parse_range(start: str, end: str, *, today: date) -> tuple[date, date]:
    """``--from``/``--to`` as UTC dates (both inclusive); InvalidInput when unusable."""
    parsed: list[date] = []
    for name, value in (("--from", start), ("--to", end)):
        try:
            parsed.append(date.fromisoformat(value.strip()))
        except ValueError:
            raise InvalidInput(
                f"{name} {value!r} is not a date: YYYY-MM-DD (UTC), e.g. 2026-11-01", field=name.lstrip("-")
            ) from None
    first, last = parsed
    if first > last:
        raise InvalidInput(f"the range is reversed: --from {first} is after --to {last}", field="from")
    if last > today:
        raise InvalidInput(
            f"--to {last} is in the future (today is {today}, UTC): a report covers what happened", field="to"
        )
    return first, last


def write_csv(
    sink: HashingStream, header: Iterable[str], rows: Iterable[Iterable[str]],
    *, then: Callable[[HashingStream], int] | None = None,
) -> int:  # fmt: skip
    """Header and rows, then what ``then`` writes (rows already in CSV form); the number of rows."""
    writer = csv_writer(sink)
    writer.writerow(list(header))
    count = write_rows(writer, rows)
    if then is not None:
        count += then(sink)
    return count


@dataclass
class ExportResult:
    sha256: str
    rows: int
    summary: dict[str, Any]
    path: Path | None = None
    chain: ChainResult = field(default_factory=ChainResult)

    @property
    def integrity_ok(self) -> bool:
        return self.chain.ok

    def withdraw(self) -> None:
        """Remove the published file (the caller's commit failed, so no audit row vouches for it)."""
        if self.path is not None:
            with suppress(FileNotFoundError):
                self.path.unlink()


def audit_export(
    session: Session,
    actor: Actor,
    *,
    resource_type: str,
    sha256: str,
    rows: int,
    parameters: dict[str, Any],
    unmask: bool,
    chain: ChainResult,
    station_id: uuid.UUID | None,
    file_name: str | None,
) -> None:
    audit.record(
        session,
        actor,
        action=AuditAction.VIEW,
        resource_type=resource_type,
        resource_id=sha256,
        station_id=station_id,
        new_values={
            "parameters": parameters,
            "rows": rows,
            "file_sha256": sha256,
            "file_name": file_name,
            "unmasked": unmask,
            "integrity": "ok" if chain.ok else "INTEGRITY_FAILED",
            "first_bad_seq": chain.first_bad_seq,
        },
    )


def _summary(
    *,
    snap: ReadSnapshot,
    parameters: dict[str, Any],
    tally: Tally,
    chain: ChainResult,
    overdue: list[dict[str, Any]],
    csv_facts: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": "opt_outs",
        "generator": generator(),
        "generated_at": format_ts(datetime.now(UTC)),
        "snapshot_taken_at": format_ts(snap.taken_at),
        "parameters": parameters,
        "integrity": {"status": "ok" if chain.ok else "INTEGRITY_FAILED", "first_bad_seq": chain.first_bad_seq},
        "csv": {"name": CSV_NAME, "rows": csv_facts["rows"], "sha256": csv_facts["sha256"]},
        "figures": tally.as_dict(),
        "violations": tally.violations_dict(overdue),
        "columns": list(COLUMNS),
        "files": {CSV_NAME: csv_facts},
    }


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class OptOutRequest:
    start: date
    end: date
    station_code: str | None
    unmask: bool

    def parameters(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "station": self.station_code.strip().upper() if self.station_code else None,
            "unmask": self.unmask,
        }


def export_opt_outs(
    session: Session,
    request: OptOutRequest,
    *,
    actor: Actor,
    out: Path | None = None,
    stream: IO[bytes] | None = None,
    fmt: StreamFormat = "csv",
) -> ExportResult:
    """The opt-out report as a ZIP at ``out``, or as CSV / JSON on ``stream``; audited either way."""
    if (out is None) == (stream is None):
        raise InvalidInput("give either an output file (--out FILE.zip) or a format for stdout (--format)", field="out")
    target = ReportZip(out) if out is not None else None
    try:
        with read_snapshot(session) as snap:
            station = snap.find_station(request.station_code) if request.station_code else None
            params = RangeParams(request.start, request.end, station.id if station else None, request.unmask)
            tally = Tally(request.start, request.end)
            # The ledger check, and for a large range the last share of the rows, run in a second
            # process on the same snapshot while this one builds the rows (worker/reports/beside.py).
            bounds = seq_bounds(snap, params)
            own, tail = split(bounds) if fmt != "json" else (bounds, None)
            check = BackgroundCheck(snap.exported, params.sql(), tail=tail, params=params, taken_at=snap.taken_at)
            try:
                rows, sink, csv_facts = _write_rows(snap, params, tally, target, stream, fmt, own, check)
                chain = check.result()
            except BaseException:
                check.cancel()
                raise
            overdue = overdue_reviews(snap, params.station)
            summary = _summary(
                snap=snap,
                parameters=request.parameters(),
                tally=tally,
                chain=chain,
                overdue=overdue,
                csv_facts=csv_facts,
            )
            chain_doc = chain.as_dict(snap.snapshot, format_ts(snap.taken_at), RANGE_CHECKED)
        if target is not None:
            target.stored("chain.json", json_bytes(chain_doc))
            target.stored("summary.json", json_bytes(summary))
            target.stored("summary.html", opt_out_page(summary))
            sha256 = target.finish()
        else:
            assert stream is not None
            if fmt == "json":
                sink.write(
                    json.dumps({"summary": summary, "chain": chain_doc}, sort_keys=True, ensure_ascii=False)[1:] + "\n"
                )
            sha256 = sink.sha256.hexdigest()
        audit_export(
            session,
            actor,
            resource_type="opt_out_report",
            sha256=sha256,
            rows=rows,
            parameters={**request.parameters(), "format": "zip" if target else fmt},
            unmask=request.unmask,
            chain=chain,
            station_id=params.station,
            file_name=out.name if out else None,
        )
        path = target.publish() if target is not None else None
    except BaseException:
        if target is not None:
            target.discard()
        raise
    return ExportResult(sha256=sha256, rows=rows, summary=summary, path=path, chain=chain)


def _write_rows(
    snap: ReadSnapshot,
    params: RangeParams,
    tally: Tally,
    target: ReportZip | None,
    stream: IO[bytes] | None,
    fmt: StreamFormat,
    own: tuple[int, int] | None,
    second: BackgroundCheck,
) -> tuple[int, HashingStream, dict[str, Any]]:
    """The rows into the ZIP's CSV, or onto ``stream`` as CSV or JSON: (rows, the sink, the CSV's facts).

    ``own``: the sequences this process builds rows for; the second process's share follows.
    """

    def then(sink: HashingStream) -> int:
        return second.append_tail(sink, tally)

    if target is not None:
        with target.compressed(CSV_NAME) as sink:
            rows = write_csv(sink, COLUMNS, stream_rows(snap, params, tally, bounds=own), then=then)
        facts = target.members[-1]
        return (
            rows,
            sink,
            {"sha256": facts.sha256, "bytes": facts.bytes, "rows": rows, "deflated_sha256": facts.deflated_sha256},
        )
    assert stream is not None
    sink = HashingStream(stream)
    if fmt == "csv":
        rows = write_csv(sink, COLUMNS, stream_rows(snap, params, tally, bounds=own), then=then)
    else:
        rows = _json_rows(sink, stream_rows(snap, params, tally, bounds=own))
    return rows, sink, {"sha256": sink.sha256.hexdigest(), "bytes": sink.bytes, "rows": rows}


def _json_rows(sink: HashingStream, rows: Iterator[tuple[str, ...]]) -> int:
    """``{"rows": [...], `` streamed; the caller closes the object with the summary and the chain."""
    sink.write('{"columns": ' + json.dumps(list(COLUMNS)) + ', "rows": [')
    count = 0
    for row in rows:
        sink.write(("," if count else "") + "\n" + json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False))
        count += 1
    sink.write("\n], ")
    return count
