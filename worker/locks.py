"""Transaction-scoped advisory locks. Never reuse or renumber a namespace value.

The per-number lock serialises consent recording and the send decision for one phone
number: whichever commits second sees the other. It is keyed on the blind index, so the
lock id reveals nothing about the number.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = [
    "NUMBERS_LOCK_SQL",
    "LockNamespace",
    "lock",
    "lock_number",
    "lock_numbers",
    "number_lock_key",
    "numbers_lock_params",
    "text_key",
    "try_lock",
]


class LockNamespace(enum.IntEnum):
    PHONE = 1
    CAMPAIGN = 2
    LEDGER_VERIFY = 3
    PII_ROTATE = 4
    # 31-39: inbound ingest (worker/ingest, worker/delivery).
    SOCIAL_THREAD = 31  # find-or-create of a Messenger/Instagram thread by sender id
    DELIVERY_SID = 32  # a provider sid: status-callback ingest vs. the send path setting it
    INBOX_CLAIM = 33  # one key: the inbox drains' claims take turns (worker/ingest/drain.py)


def _key(index: bytes) -> int:
    return int.from_bytes(index[:4], "big", signed=True)


def number_lock_key(phone_index: bytes) -> tuple[int, int]:
    """(namespace, key) of lock_number's lock, for callers that take it on a raw connection."""
    return int(LockNamespace.PHONE), _key(phone_index)


def lock_number(session: Session, phone_index: bytes) -> None:
    """Block until this transaction holds the lock for the number (released at commit)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :key)"),
        {"ns": int(LockNamespace.PHONE), "key": _key(phone_index)},
    )


# Many numbers' locks in one statement, keys taken in ascending order.
_NUMBERS = ("SELECT count(pg_advisory_xact_lock({ns}, k)) FROM (SELECT unnest(CAST({keys} AS int[])) AS k "
            "ORDER BY 1) AS ordered")
# lock_numbers' statement for a caller on the session's raw psycopg connection (sent in a
# pipeline with the reads it guards), with numbers_lock_params.
NUMBERS_LOCK_SQL = _NUMBERS.format(ns="%(ns)s", keys="%(keys)s")


def numbers_lock_params(phone_indexes: Iterable[bytes]) -> dict[str, Any]:
    """NUMBERS_LOCK_SQL's parameters: the numbers' keys, ascending, each once."""
    return {"ns": int(LockNamespace.PHONE), "keys": sorted({_key(i) for i in phone_indexes})}


def lock_numbers(session: Session, phone_indexes: list[bytes]) -> None:
    """lock_number for many numbers in one round trip (bulk consent import).

    Keys are taken in ascending order, so two bulk callers cannot deadlock each other.
    """
    params = numbers_lock_params(phone_indexes)
    if params["keys"]:
        session.execute(text(_NUMBERS.format(ns=":ns", keys=":keys")), params)


def text_key(value: str) -> int:
    """A lock key for a string id (sid, sender id): 32 bits of its SHA-256."""
    return int.from_bytes(hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()[:4], "big", signed=True)


def lock(session: Session, namespace: LockNamespace, key: int) -> None:
    """Block until this transaction holds the lock (released at commit or rollback)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"), {"ns": int(namespace), "key": key})


def try_lock(session: Session, namespace: LockNamespace, key: int) -> bool:
    """Take a transaction-scoped lock if free; False if another transaction holds it."""
    return bool(
        session.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
            {"ns": int(namespace), "key": key},
        ).scalar_one()
    )
