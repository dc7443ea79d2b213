"""The beat schedule: small, frequent ticks. Campaign and deferred-send schedules live in
the database, so nothing here changes when a marketer schedules something.

Each tick is idempotent and claims work with FOR UPDATE SKIP LOCKED, so a second beat
instance does no harm. ``expires`` drops a tick that waited longer than its period. A tick
that finds nothing logs at DEBUG (``quiet_idle_ticks`` below).
"""

from __future__ import annotations

import ast
import logging
from typing import Any

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS
from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Drains inbox rows stored but not processed (lost task, broker restart, worker down)
    # and fails rows out of attempts; see tasks/ingest.py.
    "sweep-inbox": {"task": "tasks.ingest.sweep_inbox", "schedule": 15.0, "options": {"expires": 15}},
    # Review items past their 10-business-day deadline become opt-outs; near ones are
    # logged as warnings (worker/consent/review.py).
    "expire-reviews": {"task": "tasks.consent.expire_reviews", "schedule": 300.0, "options": {"expires": 300}},
    # Due outbox rows (new, deferred, retrying) -> send tasks; stale "queued" rows re-published.
    "release-outbox": {"task": "tasks.send.release_due", "schedule": 1.0, "options": {"expires": 2}},
    # "unknown" and long-"sending" rows looked up at Twilio (worker/outbound/reconcile.py).
    "reconcile-outbox": {"task": "tasks.send.reconcile", "schedule": 10.0, "options": {"expires": 10}},
    # The previous month's opt-out report, 00:30 UTC on the 1st (celeryconfig: timezone UTC); does
    # nothing unless REPORTS_MONTHLY_DIR is set (tasks/reports.py, docs/reports.md).
    "monthly-opt-out-report": {
        "task": "tasks.reports.monthly_opt_out_report",
        "schedule": crontab(minute="30", hour="0", day_of_month="1"),
        "options": {"expires": 6 * 3600},
    },
    # Campaigns (worker/campaigns/): enrol completed bookings, plan due runs, fan out in chunks.
    "campaigns-tick": {"task": "tasks.campaigns.tick", "schedule": 5.0, "options": {"expires": 5}},
    # Coupon codes past their expiry; pools below their low-stock threshold.
    "coupon-upkeep": {"task": "tasks.campaigns.coupon_upkeep", "schedule": 60.0, "options": {"expires": 60}},
}


# ---------------------------------------------------------------------------------------
# Quiet logs when idle. Celery logs every task it receives and finishes at INFO, and beat
# every task it sends: for a one-second tick that is three lines a second saying nothing
# happened. For the ticks above those lines are DEBUG, except the "succeeded" line of a
# tick that found work (its return value counts something), so the default log shows what
# happened and not that nothing did. The ticks' own events (outbox_released, reconcile_pass,
# inbox_sweep_draining, review_deadline_passed) are INFO or louder and untouched.
# ---------------------------------------------------------------------------------------

TICK_TASKS = frozenset(entry["task"] for entry in BEAT_SCHEDULE.values())
# The loggers whose per-task lines are filtered: the worker's receipt and result lines, beat's sends.
_TASK_LINE_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.beat")


def found_nothing(value: object) -> bool:
    """True for a tick's result that counts no work: 0, None, empty, or only such values inside."""
    if value is None or value is False or value == 0:
        return True
    if isinstance(value, dict):
        return all(found_nothing(v) for v in value.values())
    if isinstance(value, list | tuple | set):
        return all(found_nothing(v) for v in value)
    return False


def _reported_nothing(return_repr: object) -> bool:
    # Celery hands the result over as its repr (cut short when long); a repr that does not
    # read back as a literal is treated as news.
    if not isinstance(return_repr, str):
        return False
    try:
        return found_nothing(ast.literal_eval(return_repr))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False


def _is_idle_tick_line(record: logging.LogRecord) -> bool:
    if record.name == "celery.beat":
        args = record.args
        return isinstance(args, tuple) and len(args) == 2 and str(args[1]) in TICK_TASKS
    data = getattr(record, "data", None)
    if not isinstance(data, dict) or data.get("name") not in TICK_TASKS:
        return False
    if record.msg == LOG_SUCCESS:
        return _reported_nothing(data.get("return_value"))
    return bool(record.msg == LOG_RECEIVED)  # never a failure, retry or rejection


class IdleTickFilter(logging.Filter):
    """Turns the INFO lines of ticks that found nothing into DEBUG lines (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not _is_idle_tick_line(record):
            return True
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def quiet_idle_ticks() -> None:
    """Install IdleTickFilter on Celery's per-task loggers (once; the worker and beat call it at start)."""
    for name in _TASK_LINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, IdleTickFilter) for f in logger.filters):
            logger.addFilter(IdleTickFilter())
