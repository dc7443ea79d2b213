"""The receiver's one write: a webhook into core.webhook_inbox, committed before the reply.

The receiver has its own small engine with short timeouts: Twilio gives a webhook 15 s in
total (COMPLIANCE.md §1, connection overrides), so a stuck database must turn into a quick
503, not a hung request. There is no pre-ping on checkout (a round trip per webhook);
instead a statement that fails on a connection the server dropped (a Postgres restart) is
retried once on a fresh connection.
"""

from __future__ import annotations

import functools

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from worker import pii
from worker.settings import get_settings

__all__ = ["store", "store_engine"]

_INSERT = text(
    "INSERT INTO core.webhook_inbox (provider, provider_event_id, delivery_id, content_type, payload_encrypted)"
    " VALUES (:provider, :event_id, :delivery_id, :content_type, :payload)"
    " ON CONFLICT (provider, provider_event_id) DO NOTHING RETURNING id"
)


@functools.lru_cache(maxsize=2)
def _engine(url: str) -> Engine:
    return create_engine(
        url,
        pool_size=8,
        max_overflow=4,
        pool_timeout=5,
        pool_pre_ping=False,
        connect_args={"connect_timeout": 3, "options": "-c statement_timeout=5000 -c lock_timeout=3000"},
    )


def store_engine() -> Engine:
    return _engine(get_settings().DATABASE_URL)


def store(*, provider: str, event_id: str, delivery_id: str | None, content_type: str | None, payload: str) -> bool:
    """Insert the webhook (idempotent on provider + event id) and commit; True if it was new.

    Raises SQLAlchemy errors when the database cannot take it (the caller answers 503).
    """
    params = {
        "provider": provider,
        "event_id": event_id,
        "delivery_id": delivery_id,
        "content_type": content_type,
        "payload": pii.encrypt(payload, kind="inbox"),
    }
    for attempt in (1, 2):
        try:
            with store_engine().begin() as conn:
                return conn.execute(_INSERT, params).first() is not None
        except DBAPIError as exc:
            if attempt == 1 and exc.connection_invalidated:
                continue
            raise
    raise AssertionError("unreachable")
