"""Report tasks: the previous month's opt-out report, written on the 1st (UTC) when configured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import structlog

from worker.app import app
from worker.db import session_scope
from worker.reports.export import ExportResult
from worker.reports.monthly import previous_month, write_month
from worker.settings import get_settings
from worker.tasks_base import DbTask

log = structlog.get_logger(__name__)


# Idempotent: the month's file name is the key (an existing file is left alone), and the
# export with its audit row is one transaction; a failure leaves no file and is retried by
# the next run. transactional=False: the export owns its transaction (and removes its file
# if that transaction fails to commit). A month of a busy ledger may take minutes.
@app.task(base=DbTask, bind=True, name="tasks.reports.monthly_opt_out_report", transactional=False,
          time_limit=3600, soft_time_limit=3300)
def monthly_opt_out_report(self: DbTask, *, now: str | None = None) -> dict[str, object]:
    directory = get_settings().REPORTS_MONTHLY_DIR
    if not directory:
        log.debug("monthly_report_disabled")
        return {"written": False, "reason": "REPORTS_MONTHLY_DIR is not set"}
    month = previous_month(datetime.fromisoformat(now) if now else datetime.now(UTC))
    result: ExportResult | None = None
    try:
        with session_scope() as session:
            result = write_month(session, month, Path(directory))
    except BaseException:
        if result is not None:
            result.withdraw()
        raise
    if result is None:
        log.info("monthly_report_exists", file=month.file_name())
        return {"written": False, "reason": "exists", "file": month.file_name()}
    if not result.integrity_ok:
        log.error("monthly_report_integrity_failed", file=month.file_name(), first_bad_seq=result.chain.first_bad_seq)
    log.info("monthly_report_written", file=month.file_name(), rows=result.rows, sha256=result.sha256)
    return {"written": True, "file": month.file_name(), "rows": result.rows, "sha256": result.sha256,
            "integrity": "ok" if result.integrity_ok else "INTEGRITY_FAILED"}
