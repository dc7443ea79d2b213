"""The opt-out report's figures, kept while rows stream past: counts, latencies, violations, per day.

Memory must stay flat however long the range: latencies go into ``array('q')`` of integer
microseconds (8 bytes a row, exact percentiles via compliance.quantiles), counts into small
dicts, per-day counts into one entry per day of the range, and only the first
:data:`LISTED_VIOLATIONS` violations are kept with their details (every one is counted, and
every row's violations are in the CSV).
"""

from __future__ import annotations

import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from compliance.quantiles import percentiles
from compliance.report_rules import seconds_text

__all__ = ["LATENCY_BUCKETS", "LISTED_VIOLATIONS", "Tally"]

LISTED_VIOLATIONS = 1000
_US = timedelta(microseconds=1)
# Honour latency distribution: (label, upper bound exclusive; None = no bound).
LATENCY_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("< 1 s", timedelta(seconds=1)),
    ("1-10 s", timedelta(seconds=10)),
    ("10-60 s", timedelta(minutes=1)),
    ("1-10 min", timedelta(minutes=10)),
    ("10-60 min", timedelta(hours=1)),
    ("1-24 h", timedelta(days=1)),
    ("1-3 days", timedelta(days=3)),
    ("3-14 days", timedelta(days=14)),
    (">= 14 days", None),
)


def _bucket(latency: timedelta) -> str:
    for label, bound in LATENCY_BUCKETS:
        if bound is None or latency < bound:
            return label
    raise AssertionError("the last bucket has no bound")


def _stats(values: array[int]) -> dict[str, str | None]:
    p50, p99, top = (None if v is None else seconds_text(v * _US) for v in percentiles(values, (50, 99, 100)))
    return {"p50_s": p50, "p99_s": p99, "max_s": top, "count": str(len(values))}


@dataclass
class Tally:
    start: date
    end: date  # inclusive
    rows: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    no_confirmation: Counter[str] = field(default_factory=Counter)
    confirmations_sent: int = 0
    sends_after: int = 0
    rows_with_violations: int = 0
    violation_counts: Counter[str] = field(default_factory=Counter)
    violations: list[dict[str, Any]] = field(default_factory=list)
    honour: array[int] = field(default_factory=lambda: array("q"))
    confirmation: array[int] = field(default_factory=lambda: array("q"))
    per_day: Counter[str] = field(default_factory=Counter)
    distribution: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        *,
        seq: int,
        event_id: uuid.UUID,
        received_at: datetime,
        method: str,
        honour_latency: timedelta,
        confirmation_latency: timedelta | None,
        no_confirmation: str | None,
        sends_after: int,
        violations: tuple[str, ...],
        details: dict[str, Any],
    ) -> None:
        self.rows += 1
        self.by_method[method] += 1
        self.honour.append(honour_latency // _US)
        self.distribution[_bucket(honour_latency)] += 1
        if confirmation_latency is not None:
            self.confirmations_sent += 1
            self.confirmation.append(confirmation_latency // _US)
        if no_confirmation:
            self.no_confirmation[no_confirmation] += 1
        self.sends_after += sends_after
        self.per_day[received_at.date().isoformat()] += 1
        if violations:
            self.rows_with_violations += 1
            self.violation_counts.update(violations)
            if len(self.violations) < LISTED_VIOLATIONS:
                self.violations.append(
                    {"seq": seq, "event_id": str(event_id), "violations": list(violations), **details}
                )

    def merge(self, later: Tally) -> None:
        """Add the figures of rows that come after this tally's (a second process's share).

        Everything is a sum, a concatenation or a count per key, so the merged figures are
        the ones one tally over all the rows gives; the listed violations stay the first
        :data:`LISTED_VIOLATIONS` in ledger order.
        """
        self.rows += later.rows
        self.by_method.update(later.by_method)
        self.no_confirmation.update(later.no_confirmation)
        self.confirmations_sent += later.confirmations_sent
        self.sends_after += later.sends_after
        self.rows_with_violations += later.rows_with_violations
        self.violation_counts.update(later.violation_counts)
        self.violations.extend(later.violations[: max(0, LISTED_VIOLATIONS - len(self.violations))])
        self.honour.extend(later.honour)
        self.confirmation.extend(later.confirmation)
        self.per_day.update(later.per_day)
        self.distribution.update(later.distribution)

    def days(self) -> list[tuple[str, int]]:
        """Opt-outs per UTC day of the range, every day listed (zeros too), oldest first."""
        out: list[tuple[str, int]] = []
        day = self.start
        while day <= self.end:
            out.append((day.isoformat(), self.per_day.get(day.isoformat(), 0)))
            day += timedelta(days=1)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "revocations": self.rows,
            "by_detection_method": dict(sorted(self.by_method.items())),
            "confirmations_sent": self.confirmations_sent,
            "no_confirmation": dict(sorted(self.no_confirmation.items())),
            "sends_after_opt_out": self.sends_after,
            "honour_latency": _stats(self.honour),
            "confirmation_latency": _stats(self.confirmation),
            "honour_latency_distribution": [[label, self.distribution.get(label, 0)] for label, _ in LATENCY_BUCKETS],
            "per_day": self.days(),
        }

    def violations_dict(self, overdue_reviews: list[dict[str, Any]]) -> dict[str, Any]:
        total = self.rows_with_violations + len(overdue_reviews)
        if total == 0:
            verdict = (
                "No violations: every revocation in the range took effect within 10 business days, "
                "its confirmation (where one was due) went out once within 5 minutes, "
                "nothing else was sent after it, and no review item is past its deadline."
            )
        else:
            verdict = (
                f"{self.rows_with_violations} revocation(s) with violations and {len(overdue_reviews)} "
                "review item(s) open past their deadline."
            )
        return {
            "verdict": verdict,
            "rows_with_violations": self.rows_with_violations,
            "counts": dict(sorted(self.violation_counts.items())),
            "listed": self.violations,
            "listed_limit": LISTED_VIOLATIONS,
            "overdue_reviews": overdue_reviews,
        }
