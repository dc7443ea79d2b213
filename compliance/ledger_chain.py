"""The consent ledger's hash chain, checked row by row: pure, so every checker shares one rule.

``msgworker ledger verify`` (worker/consent/verify.py), the opt-out report's range check
(worker/reports/chain.py), its second process (worker/reports/beside.py, which imports no
SQLAlchemy and so keeps its memory small) and the dossier all call :func:`check_chain`. The
rules: a number's first event has no prev_hash; every other event's prev_hash is the stored
hash of the one before it; every stored hash is the one recomputed from the row
(compliance.consent_hash).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compliance.consent_hash import stored_hash_matches

__all__ = ["ChainBreak", "StateMismatch", "VerifyReport", "add_break", "check_chain"]


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    event_id: uuid.UUID
    phone_index: bytes
    reason: str

    def describe(self) -> str:
        return f"seq={self.seq} event={self.event_id} number={self.phone_index.hex()[:16]}: {self.reason}"


@dataclass(frozen=True, slots=True)
class StateMismatch:
    phone_index: bytes
    station_id: uuid.UUID | None
    reason: str

    def describe(self) -> str:
        scope = str(self.station_id) if self.station_id else "business"
        return f"number={self.phone_index.hex()[:16]} scope={scope}: {self.reason}"


@dataclass
class VerifyReport:
    events: int = 0
    numbers: int = 0
    state_rows: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    mismatches: list[StateMismatch] = field(default_factory=list)
    break_count: int = 0
    mismatch_count: int = 0
    first_break: ChainBreak | None = None
    digest: str = ""

    @property
    def ok(self) -> bool:
        return self.break_count == 0 and self.mismatch_count == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "numbers": self.numbers,
            "state_rows": self.state_rows,
            "break_count": self.break_count,
            "mismatch_count": self.mismatch_count,
            "first_break": None
            if self.first_break is None
            else {
                "seq": self.first_break.seq,
                "event_id": str(self.first_break.event_id),
                "reason": self.first_break.reason,
            },
            "breaks": [b.describe() for b in self.breaks],
            "mismatches": [m.describe() for m in self.mismatches],
            "digest": self.digest,
        }


def add_break(report: VerifyReport, brk: ChainBreak, max_problems: int) -> None:
    report.break_count += 1
    if report.first_break is None or brk.seq < report.first_break.seq:
        report.first_break = brk
    if len(report.breaks) < max_problems:
        report.breaks.append(brk)


def check_chain(
    report: VerifyReport, key: bytes, rows: Sequence[Any], max_problems: int, *, after: tuple[int, bytes] | None = None
) -> None:
    """Check consecutive events of one number (seq order): each hash and each link.

    ``rows`` start at the number's first event, or right after ``after`` (the seq and stored
    hash of the event before them: the opt-out report checks a range of the ledger). They
    need the attributes of a consent_events row (the ORM row here; the report's
    ``compliance.report_rules.LedgerEvent``), so both check one way.
    """
    prev_seq, prev = after if after is not None else (None, None)
    for row in rows:
        stored_prev = bytes(row.prev_hash) if row.prev_hash is not None else None
        if stored_prev != prev:
            if prev is None:
                reason = "first event of this number has a prev_hash: earlier events are missing"
            elif stored_prev is None:
                reason = f"prev_hash is empty but seq {prev_seq} comes before it: an event was inserted out of chain"
            else:
                reason = (
                    f"prev_hash does not match the hash of the previous event (seq {prev_seq}): "
                    "an event between them is missing, was inserted, or was re-hashed"
                )
            add_break(report, ChainBreak(row.seq, row.id, key, reason), max_problems)
        if not stored_hash_matches(row, key, stored_prev, bytes(row.hash)):
            add_break(
                report,
                ChainBreak(row.seq, row.id, key, "stored hash does not match the row's contents: the row was altered"),
                max_problems,
            )
        # Link to the STORED hash, so one altered row is reported once, at itself.
        prev = bytes(row.hash)
        prev_seq = row.seq
