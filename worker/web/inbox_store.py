"""The receiver's one write: a webhook into core.webhook_inbox, committed before the reply.

The receiver has its own small engine with short timeouts: Twilio gives a webhook 15 s in
total (COMPLIANCE.md §1, connection overrides), so a stuck database must turn into a quick
503, not a hung request. There is no pre-ping on checkout (a round trip per webhook);
instead an insert that fails with an operational error (say, on a connection the server
dropped at a Postgres restart) is retried once on a fresh connection. A retry is safe: the
insert is idempotent on (provider, provider_event_id).

This is the hottest path of the service, so it uses the pooled DBAPI (psycopg) connection
directly: one prepared INSERT and a COMMIT, without the ORM/Core execution layers (about a
third of the CPU; bench/ingest.py).
"""

from __future__ import annotations

import atexit
import functools

import psycopg
from sqlalchemy import Engine, create_engine

from worker import pii
from worker.settings import get_settings

__all__ = ["POOL_SIZE", "POOL_TIMEOUT_SECONDS", "StoreUnavailable", "store", "store_engine"]

# The receiver lets at most POOL_SIZE stores run at once (worker/web/webhooks.py), so the
# pool never opens overflow connections: under load those were opened and closed again on
# every burst (a new Postgres backend each time).
POOL_SIZE = 8
POOL_TIMEOUT_SECONDS = 5.0

_INSERT = (
    "INSERT INTO core.webhook_inbox (provider, provider_event_id, delivery_id, content_type, payload_encrypted)"
    " VALUES (%(provider)s, %(event_id)s, %(delivery_id)s, %(content_type)s, %(payload)s)"
    " ON CONFLICT (provider, provider_event_id) DO NOTHING RETURNING id"
)


class StoreUnavailable(RuntimeError):
    """Raised when the database could not take the webhook (the receiver answers 503)."""


@functools.lru_cache(maxsize=2)
def _engine(url: str) -> Engine:
    engine = create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=4,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=False,
        connect_args={"connect_timeout": 3, "options": "-c statement_timeout=5000 -c lock_timeout=3000"},
    )
    # Close pooled connections at exit instead of leaving them to the garbage collector.
    atexit.register(engine.dispose)
    return engine


def store_engine() -> Engine:
    return _engine(get_settings().DATABASE_URL)


def store(*, provider: str, event_id: str, delivery_id: str | None, content_type: str | None, payload: str) -> bool:
    """Insert the webhook (idempotent on provider + event id) and commit; True if it was new.

    Raises StoreUnavailable when the database cannot take it.
    """
    params = {
        "provider": provider,
        "event_id": event_id,
        "delivery_id": delivery_id,
        "content_type": content_type,
        "payload": pii.encrypt(payload, kind="inbox"),
    }
    last: Exception | None = None
    for _attempt in (1, 2):
        try:
            conn = store_engine().raw_connection()
        except Exception as exc:  # pool timeout, refused connection, bad auth: all "unavailable"
            raise StoreUnavailable(f"no database connection: {type(exc).__name__}") from exc
        try:
            cur = conn.cursor()
            cur.execute(_INSERT, params)
            created = cur.fetchone() is not None
            cur.close()
            conn.commit()
            return created
        except psycopg.OperationalError as exc:
            last = exc
            conn.invalidate()  # never hand this connection out again
        except psycopg.Error as exc:
            raise StoreUnavailable(f"database refused the insert: {type(exc).__name__}") from exc
        finally:
            conn.close()  # back to the pool (rolled back if not committed), or discarded
    raise StoreUnavailable(f"database unavailable: {type(last).__name__}") from last
