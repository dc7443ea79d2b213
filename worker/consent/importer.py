"""Importing an existing opt-out list (CSV) into the ledger, idempotently, in batches.

Columns (header row, case-insensitive): ``phone`` (required), ``occurred_at`` (ISO-8601
date or date-time; naive values are read as UTC and marked so in the evidence),
``station`` (a station code), ``note``. Each good row becomes one ``opt_out`` event,
source ``import``, purpose all: business-wide unless CONSENT_OPT_OUT_SCOPE is "station"
and the row names a station.

Idempotency key: ``import:<blind index hex>:<station code or ->:<occurred_at or the
file's SHA-256>``. Re-running the same file records nothing new; the same number listed
twice with the same time is recorded once.

Each batch is one transaction, opened by the caller's scope factory (the CLI passes
``session_scope``): the numbers' locks (in key order), the events chained per number, the
state rows, the cancellation of unsent rows to newly opted-out numbers, and the batch's one
public.audit_logs row (actor, file digest, line range, counts). A crash loses at most the
batch in flight, and a re-run skips what was committed. A batch that records nothing (every
row already in the ledger) writes nothing, not even an audit row, so re-running a file
leaves the log as it was; rejected rows change nothing and are reported, not audited.

Bad rows never stop the import: each is reported with its line number and the reason.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from compliance.consent_hash import format_ts
from compliance.consent_rules import Kind, Purpose, Source
from compliance.errors import InvalidNumber
from compliance.phones import normalize
from worker import audit, pii
from worker.audit import Actor
from worker.consent.effects import cancel_after_opt_out_many
from worker.consent.ledger import EventInput, record_events
from worker.db import SessionScope
from worker.errors import UserError
from worker.models import AuditAction, ConsentEvent, Station
from worker.settings import get_settings

__all__ = ["ConsentImportError", "ImportReport", "Rejected", "count_rows", "import_opt_outs"]

log = structlog.get_logger(__name__)

PHONE_COLUMNS = ("phone", "phone_number", "number", "mobile")
STATION_COLUMNS = ("station", "station_code")
MAX_NOTE = 500
# A number already in North American E.164 form: +1, an area code not starting with 0/1,
# then nine more ASCII digits (not \d, which matches any Unicode digit). normalize()
# returns these unchanged, so the importer skips the (comparatively slow) full parse.
NANP_E164_PATTERN = r"\+1[2-9][0-9]{9}"
_NANP_E164 = re.compile(NANP_E164_PATTERN, re.ASCII)


class ConsentImportError(UserError):
    """Raised when the file as a whole cannot be imported (unreadable, no phone column)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ImportReport:
    file_sha256: str
    rows: int = 0
    recorded: int = 0
    already: int = 0
    newly_opted_out: int = 0
    cancelled_outbound: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_rows(path: Path) -> int:
    """Data rows (lines after the header), for a progress bar's total."""
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 1, 0)


def _pick(header: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in header:
            return header[name]
    return None


def _parse_time(raw: str, now: datetime) -> tuple[datetime, bool]:
    """(aware time, whether UTC was assumed); ValueError with a readable reason."""
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"occurred_at {raw.strip()[:40]!r} is not an ISO-8601 date or date-time") from exc
    assumed = value.tzinfo is None
    if assumed:
        value = value.replace(tzinfo=UTC)
    if value > now:
        raise ValueError("occurred_at is in the future")
    return value, assumed


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    e164: str
    # phone_encrypted is filled in only for rows not recorded before (encryption is the
    # costliest per-row step, and a re-run would otherwise pay it for nothing).
    item: EventInput


def _rows(
    path: Path, *, digest: str, by: str, stations: dict[str, Any], report: ImportReport, now: datetime
) -> Iterator[_Row]:
    scope_by_station = get_settings().CONSENT_OPT_OUT_SCOPE == "station"
    ring = pii.keyring()
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        try:
            header_row = next(reader)
        except StopIteration:
            raise ConsentImportError(f"{path.name} is empty (expected a header row with a 'phone' column)") from None
        header = {name.strip().lower(): name for name in header_row}
        cols = {name.strip().lower(): i for i, name in enumerate(header_row)}
        phone_col = _pick(header, PHONE_COLUMNS)
        if phone_col is None:
            raise ConsentImportError(
                f"{path.name} has no phone column (header: {', '.join(header_row)[:200]}; expected 'phone')"
            )
        i_phone = cols[phone_col.strip().lower()]
        station_col = _pick(header, STATION_COLUMNS)
        i_station = cols[station_col.strip().lower()] if station_col else None
        i_when = cols.get("occurred_at")
        i_note = cols.get("note")
        width = len(header_row)
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            report.rows += 1

            def reject(reason: str, line: int = line) -> None:
                report.rejected.append(Rejected(line, reason))

            if len(values) > width:
                reject(f"{len(values)} fields, the header has {width}")
                continue
            values = values + [""] * (width - len(values))
            raw_phone = values[i_phone].strip()
            if _NANP_E164.fullmatch(raw_phone):
                e164 = raw_phone  # already what normalize() returns (tests/unit/consent/test_importer.py)
            else:
                try:
                    e164 = normalize(raw_phone, require_valid=False)
                except InvalidNumber as exc:
                    reject(f"phone: {exc}")
                    continue
            occurred, assumed_utc, given = now, False, False
            if i_when is not None and values[i_when].strip():
                try:
                    occurred, assumed_utc = _parse_time(values[i_when], now)
                    given = True
                except ValueError as exc:
                    reject(str(exc))
                    continue
            code = values[i_station].strip() if i_station is not None else ""
            station_id = None
            if code:
                station_id = stations.get(code.upper())
                if station_id is None:
                    reject(f"unknown station code {code[:32]!r}")
                    continue
            note = values[i_note].strip()[:MAX_NOTE] if i_note is not None else ""
            index = ring.blind_index(e164, kind="phone")
            when_key = format_ts(occurred) if given else digest
            yield _Row(
                line,
                e164,
                EventInput(
                    phone_index=index,
                    phone_encrypted="",
                    kind=Kind.OPT_OUT,
                    purpose=Purpose.ALL,
                    source=Source.IMPORT,
                    evidence={
                        "file_name": path.name,
                        "file_sha256": digest,
                        "line": line,
                        "note": note or None,
                        "station_code": code or None,
                        "imported_by": by,
                        "occurred_at_given": given,
                        "occurred_at_assumed_utc": assumed_utc,
                    },
                    occurred_at=occurred,
                    station_id=station_id if scope_by_station else None,
                    idempotency_key=f"import:{index.hex()}:{code.upper() or '-'}:{when_key}",
                ),
            )


def import_opt_outs(
    path: Path,
    *,
    actor: Actor,
    scope: SessionScope,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import the file (see the module docstring); one ``scope()`` transaction per batch."""
    if not path.is_file():
        raise ConsentImportError(f"{path} is not a readable file")
    if not 1 <= batch_size <= 5000:
        raise ConsentImportError("batch size must be 1..5000")
    now = now or datetime.now(UTC)
    digest = file_digest(path)
    report = ImportReport(file_sha256=digest)
    with scope() as session:
        stations = {code.upper(): sid for code, sid in session.execute(select(Station.code, Station.id))}
    log.info("consent_import_started", file=path.name, file_sha256=digest, by=actor.label)
    batch: list[_Row] = []
    seen_rows = 0

    def flush() -> None:
        nonlocal seen_rows
        if not batch:
            return
        ring = pii.keyring()
        with scope() as session:
            keys = [r.item.idempotency_key for r in batch]
            known = set(
                session.execute(select(ConsentEvent.idempotency_key).where(ConsentEvent.idempotency_key.in_(keys)))
                .scalars()
                .all()
            )
            if len(known) == len(batch):
                # Everything here was recorded by an earlier run (an append-only key cannot
                # disappear), so there is nothing to lock or write.
                report.already += len(batch)
                batch.clear()
                return
            items = [
                r.item
                if r.item.idempotency_key in known
                else replace(r.item, phone_encrypted=ring.encrypt(r.e164, kind="phone"))
                for r in batch
            ]
            outcomes = record_events(session, items)
            moved = sorted({o.phone_index for o in outcomes if o.created and o.moved_to_opted_out})
            cancelled = cancel_after_opt_out_many(session, moved)
            recorded = sum(1 for o in outcomes if o.created)
            if recorded:
                _audit_batch(session, actor, path=path, digest=digest, batch=batch, recorded=recorded,
                             newly_opted_out=len(moved), cancelled=cancelled)
        report.cancelled_outbound += cancelled
        report.recorded += recorded
        report.already += len(outcomes) - recorded
        report.newly_opted_out += len(moved)
        batch.clear()

    for row in _rows(path, digest=digest, by=actor.name, stations=stations, report=report, now=now):
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
            if progress is not None:
                progress(report.rows - seen_rows)
                seen_rows = report.rows
    flush()
    if progress is not None:
        progress(report.rows - seen_rows)
    log.info(
        "consent_import_finished",
        file_sha256=digest,
        rows=report.rows,
        recorded=report.recorded,
        already=report.already,
        rejected=len(report.rejected),
    )
    return report


def _audit_batch(
    session: Session,
    actor: Actor,
    *,
    path: Path,
    digest: str,
    batch: list[_Row],
    recorded: int,
    newly_opted_out: int,
    cancelled: int,
) -> None:
    """The batch's one audit row, in the batch's transaction: which file, which lines, what changed."""
    audit.record(
        session,
        actor,
        action=AuditAction.CREATE,
        resource_type="consent_import",
        resource_id=digest,
        new_values={
            "file_name": path.name,
            "file_sha256": digest,
            "first_line": batch[0].line,
            "last_line": batch[-1].line,
            "rows": len(batch),
            "recorded": recorded,
            "already": len(batch) - recorded,
            "newly_opted_out": newly_opted_out,
            "cancelled_outbound": cancelled,
        },
    )
