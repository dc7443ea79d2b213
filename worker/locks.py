"""Transaction-scoped advisory locks. Never reuse or renumber a namespace value.

The per-number lock serialises consent recording and the send decision for one phone
number: whichever commits second sees the other. It is keyed on the blind index, so the
lock id reveals nothing about the number.
"""

from __future__ import annotations

import enum

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["LockNamespace", "lock_number", "try_lock"]


class LockNamespace(enum.IntEnum):
    PHONE = 1
    CAMPAIGN = 2
    LEDGER_VERIFY = 3
    PII_ROTATE = 4


def _key(index: bytes) -> int:
    return int.from_bytes(index[:4], "big", signed=True)


def lock_number(session: Session, phone_index: bytes) -> None:
    """Block until this transaction holds the lock for the number (released at commit)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :key)"),
        {"ns": int(LockNamespace.PHONE), "key": _key(phone_index)},
    )


def try_lock(session: Session, namespace: LockNamespace, key: int) -> bool:
    """Take a transaction-scoped lock if free; False if another transaction holds it."""
    return bool(
        session.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, :key)"),
            {"ns": int(namespace), "key": key},
        ).scalar_one()
    )
