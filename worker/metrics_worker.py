"""The worker's metrics endpoint: its processes' counters plus gauges read from the database at scrape time.

Started by the Celery worker's main process (``worker_init``, worker/app.py) on
``WORKER_METRICS_HOST``:``WORKER_METRICS_PORT``; its pool children count into the shared
multiprocess directory (worker/metrics.py), which this endpoint adds up.

Why the database gauges are read at scrape time rather than written by a beat tick: a scrape
reads the truth of that moment; a gauge written by a tick goes stale, without anyone noticing,
exactly when beat or the worker stops, which is when an operator needs it most. A scrape every
15 s costs a handful of index reads (the partial indexes on pending inbox rows, waiting outbox
rows and open review items). Every read has a short deadline on both sides (a 2 s statement
timeout and a 3 s client-side answer limit), so a hung database makes the scrape report
``msgworker_database_gauges_up 0`` quickly instead of hanging it; the counters are still
served. Each worker host reports the same database-wide values; alert rules take ``max``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import structlog

from worker.db_deadlines import DeadlineConnection, connect_params, libpq_url
from worker.metrics import exposition, scrape_registry
from worker.settings import Settings, get_settings

__all__ = ["DATABASE_GAUGES", "DatabaseGauges", "serve", "worker_exposition"]

log = structlog.get_logger(__name__)

STATEMENT_TIMEOUT_MS = 2000
ANSWER_TIMEOUT_S = 3.0
# Not yet handed to Twilio, or not known to be: what "depth" counts (finished rows are history).
OPEN_STATUSES = ("pending", "queued", "sending", "deferred", "unknown")

DATABASE_GAUGES = (
    "msgworker_database_gauges_up",
    "msgworker_inbox_pending_rows",
    "msgworker_inbox_oldest_pending_age_seconds",
    "msgworker_outbox_rows",
    "msgworker_confirmation_oldest_unsent_age_seconds",
    "msgworker_review_items",
)

_QUERIES = {
    "inbox": (
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0) "
        "FROM core.webhook_inbox WHERE status = 'pending'"
    ),
    "outbox": (
        "SELECT status, count(*) FROM core.outbound_messages "
        "WHERE status IN ('pending', 'queued', 'sending', 'deferred', 'unknown') GROUP BY status"
    ),
    # An opt-out's confirmation (a compliance text replying to an opt-out event) not yet accepted.
    "confirmation": (
        "SELECT coalesce(extract(epoch FROM now() - min(e.recorded_at)), 0) "
        "FROM core.outbound_messages o JOIN compliance.consent_events e ON e.id = o.in_reply_to_event_id "
        "WHERE o.status IN ('pending', 'queued', 'sending', 'deferred', 'unknown') "
        "AND o.purpose = 'compliance' AND e.kind = 'opt_out'"
    ),
    "reviews": (
        "SELECT count(*) FILTER (WHERE deadline_at >= now()), count(*) FILTER (WHERE deadline_at < now()) "
        "FROM compliance.review_items WHERE status = 'open'"
    ),
}


class DatabaseGauges:
    """A prometheus_client collector: one short read-only connection per scrape."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings or get_settings()

    def _read(self) -> dict[str, list[tuple[Any, ...]]]:
        s = self._settings
        params = connect_params(s, statement_timeout_ms=STATEMENT_TIMEOUT_MS, lock_timeout_ms=STATEMENT_TIMEOUT_MS)
        params["connect_timeout"] = min(int(params["connect_timeout"]), 3)
        conn = DeadlineConnection.connect(libpq_url(s.DATABASE_URL), autocommit=True, **params)
        conn.answer_timeout = ANSWER_TIMEOUT_S
        try:
            # One read-only transaction; transaction-scoped settings, so a pooler (PgBouncer) is fine.
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                conn.execute("SELECT set_config('statement_timeout', %s, true)", (str(STATEMENT_TIMEOUT_MS),))
                return {name: list(conn.execute(sql).fetchall()) for name, sql in _QUERIES.items()}
        finally:
            conn.close()

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("msgworker_database_gauges_up", "1 when the database gauges below were read.")
        started = time.monotonic()
        try:
            rows = self._read()
        except (psycopg.Error, OSError) as exc:
            log.warning("metrics_database_gauges_failed", error=type(exc).__name__, detail=str(exc)[:200])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        log.debug("metrics_database_gauges_read", ms=round((time.monotonic() - started) * 1000, 1))
        pending, oldest = rows["inbox"][0]
        yield GaugeMetricFamily(
            "msgworker_inbox_pending_rows", "Webhook inbox rows not yet processed.", value=int(pending)
        )
        yield GaugeMetricFamily(
            "msgworker_inbox_oldest_pending_age_seconds",
            "Age of the oldest unprocessed webhook inbox row (0: none).",
            value=float(oldest),
        )
        depth = GaugeMetricFamily(
            "msgworker_outbox_rows",
            "Outbox rows not yet handed to Twilio (or not known to be), by status.",
            labels=["status"],
        )
        counts = {status: int(n) for status, n in rows["outbox"]}
        for status in OPEN_STATUSES:
            depth.add_metric([status], counts.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            "msgworker_confirmation_oldest_unsent_age_seconds",
            "Seconds since the opt-out of the oldest confirmation not yet accepted by Twilio (0: none).",
            value=float(rows["confirmation"][0][0]),
        )
        due, overdue = rows["reviews"][0]
        reviews = GaugeMetricFamily(
            "msgworker_review_items",
            "Open consent review items: due (deadline ahead) or overdue (deadline passed, not converted).",
            labels=["state"],
        )
        reviews.add_metric(["due"], int(due))
        reviews.add_metric(["overdue"], int(overdue))
        yield reviews


def worker_exposition() -> tuple[bytes, str]:
    return exposition([DatabaseGauges()])


def serve(host: str, port: int) -> Any | None:
    """Serve /metrics in a daemon thread; None (logged) if the port cannot be bound."""
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=scrape_registry([DatabaseGauges()]))
    except OSError as exc:
        log.warning("metrics_endpoint_unavailable", host=host, port=port, error=str(exc))
        return None
    log.info("metrics_endpoint_listening", host=host, port=server.server_port)
    return server
