"""The scheduled monthly opt-out report: which month, which file, and writing it once.

On the 1st (UTC) the beat task (tasks/reports.py) asks for the previous calendar month, all
stations, phones masked, into ``REPORTS_MONTHLY_DIR/opt-outs-YYYY-MM.zip``. The file's
existence is the idempotency key: a redelivered or overlapping run finds it and writes
nothing, so there is never a second audit row for the same month's file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from worker.audit import Actor
from worker.reports.export import ExportResult, OptOutRequest, export_opt_outs

__all__ = ["MONTHLY_ACTOR", "Month", "previous_month", "write_month"]

# Audited like a person's export, under the job's name.
MONTHLY_ACTOR = Actor.beat("monthly_opt_out_report")


@dataclass(frozen=True, slots=True)
class Month:
    first: date
    last: date

    def file_name(self) -> str:
        return f"opt-outs-{self.first:%Y-%m}.zip"


def previous_month(now: datetime) -> Month:
    """The calendar month before ``now``'s, in UTC (``now`` must be timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(UTC).date()
    first_this = today.replace(day=1)
    last = first_this - timedelta(days=1)
    return Month(last.replace(day=1), last)


def write_month(session: Session, month: Month, directory: Path) -> ExportResult | None:
    """Write the month's report in ``directory``; None when its file is already there."""
    target = directory / month.file_name()
    if target.exists():
        return None
    request = OptOutRequest(month.first, month.last, None, False)
    return export_opt_outs(session, request, actor=MONTHLY_ACTOR, out=target)
