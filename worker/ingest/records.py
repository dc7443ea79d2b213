"""Find-or-create of stations, customers, threads and messages, race-free.

Two first messages from a new number processed at the same time (two workers, or a retry
racing the original) must end as one customer and one open thread. The partial unique
indexes do that work: ``uq_customers_station_phone_live`` and ``uq_message_threads_open``
take INSERT ... ON CONFLICT, and a conflicting concurrent insert makes ours wait for it and
then find its row. Social senders have no phone number and no unique key, so their
find-or-create runs under an advisory lock on (channel, station, sender id).

Every function takes the caller's session and never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from worker.locks import LockNamespace, lock, lock_number, number_lock_key, text_key
from worker.models import Message
from worker.phone import PhoneNumber

__all__ = [
    "SmsRecord",
    "StationCache",
    "customer_for_phone",
    "insert_message",
    "insert_sms",
    "insert_sms_many",
    "open_thread",
    "social_thread",
]


@dataclass
class StationCache:
    """Sender-address -> station lookups for one drain run (the table changes rarely)."""

    _by_address: dict[tuple[str, str], uuid.UUID | None] = field(default_factory=dict)
    _by_service: dict[str, uuid.UUID | None] = field(default_factory=dict)

    def by_address(self, session: Session, channel: str, address: str) -> uuid.UUID | None:
        key = (channel, address)
        if key not in self._by_address:
            self._by_address[key] = session.execute(
                text("SELECT station_id FROM identity.station_senders WHERE channel = :ch AND address = :addr"),
                {"ch": channel, "addr": address},
            ).scalar_one_or_none()
        return self._by_address[key]

    def by_messaging_service(self, session: Session, service_sid: str) -> uuid.UUID | None:
        """The station owning a Messaging Service, when exactly one station does."""
        if service_sid not in self._by_service:
            stations = (
                session.execute(
                    text(
                        "SELECT DISTINCT station_id FROM identity.station_senders"
                        " WHERE channel = 'sms' AND messaging_service_sid = :mg"
                    ),
                    {"mg": service_sid},
                )
                .scalars()
                .all()
            )
            self._by_service[service_sid] = stations[0] if len(stations) == 1 else None
        return self._by_service[service_sid]


_CUSTOMER_UPSERT = text(
    "WITH ins AS ("
    " INSERT INTO core.customers (station_id, phone_encrypted, phone_index, source)"
    " VALUES (:station_id, :phone_encrypted, :phone_index, :source)"
    " ON CONFLICT (station_id, phone_index) WHERE deleted_at IS NULL DO NOTHING"
    " RETURNING id)"
    " SELECT id, true AS created FROM ins"
    " UNION ALL"
    " SELECT id, false FROM core.customers"
    " WHERE station_id = :station_id AND phone_index = :phone_index AND deleted_at IS NULL"
    " LIMIT 1"
)
_CUSTOMER_FIND = text(
    "SELECT id FROM core.customers WHERE station_id = :station_id AND phone_index = :phone_index"
    " AND deleted_at IS NULL"
)


def customer_for_phone(
    session: Session, station_id: uuid.UUID, phone: PhoneNumber, *, source: str = "sms_inbound"
) -> tuple[uuid.UUID, bool]:
    """The live customer with this number in this station, created as a stub if none exists."""
    params = {
        "station_id": station_id,
        "phone_index": phone.index,
        "phone_encrypted": phone.encrypted,
        "source": source,
    }
    row = session.execute(_CUSTOMER_UPSERT, params).first()
    if row is not None:
        return row[0], bool(row[1])
    # A concurrent transaction inserted the same customer after this statement's snapshot
    # was taken: ON CONFLICT waited for its commit, and a fresh statement now sees it.
    return session.execute(_CUSTOMER_FIND, params).scalar_one(), False


_THREAD_UPSERT = text(
    "INSERT INTO core.message_threads (customer_id, channel, station_id, external_thread_id, last_message_at)"
    " VALUES (:customer_id, :channel, :station_id, :external_id, :at)"
    " ON CONFLICT (customer_id, channel, station_id) WHERE deleted_at IS NULL AND status = 'open'"
    " DO UPDATE SET last_message_at = GREATEST(core.message_threads.last_message_at, EXCLUDED.last_message_at),"
    " updated_at = now()"
    " RETURNING id"
)


def open_thread(
    session: Session,
    *,
    customer_id: uuid.UUID,
    channel: str,
    station_id: uuid.UUID,
    at: datetime,
    external_id: str | None = None,
) -> uuid.UUID:
    """The customer's open thread on this channel and station (created if none), bumped to ``at``.

    The bump is GREATEST(existing, at), so processing a message twice, or an older message
    late, never moves last_message_at backwards.
    """
    return uuid.UUID(
        str(
            session.execute(
                _THREAD_UPSERT,
                {
                    "customer_id": customer_id,
                    "channel": channel,
                    "station_id": station_id,
                    "external_id": external_id,
                    "at": at,
                },
            ).scalar_one()
        )
    )


def social_thread(
    session: Session, *, channel: str, station_id: uuid.UUID, sender_id: str, at: datetime
) -> tuple[uuid.UUID, uuid.UUID]:
    """(customer id, open thread id) for a Messenger/Instagram sender, created if needed.

    The sender id (PSID / IGSID) is the thread's external id; the customer is a stub with no
    phone number (source = the channel).
    """
    lock(session, LockNamespace.SOCIAL_THREAD, text_key(f"{channel}:{station_id}:{sender_id}"))
    found = session.execute(
        text(
            "SELECT customer_id FROM core.message_threads"
            " WHERE channel = :ch AND external_thread_id = :ext AND station_id = :st AND deleted_at IS NULL"
            " ORDER BY (status = 'open') DESC, last_message_at DESC LIMIT 1"
        ),
        {"ch": channel, "ext": sender_id, "st": station_id},
    ).scalar_one_or_none()
    if found is None:
        customer_id = session.execute(
            text("INSERT INTO core.customers (station_id, source) VALUES (:st, :src) RETURNING id"),
            {"st": station_id, "src": channel},
        ).scalar_one()
    else:
        customer_id = found
    thread_id = open_thread(
        session, customer_id=customer_id, channel=channel, station_id=station_id, at=at, external_id=sender_id
    )
    return customer_id, thread_id


def insert_message(session: Session, **values: Any) -> uuid.UUID | None:
    """Insert an inbound message; None when (channel, provider_message_id) already exists."""
    stmt = (
        insert(Message)
        .values(direction="inbound", **values)
        .on_conflict_do_nothing(index_elements=["channel", "provider_message_id"])
        .returning(Message.id)
    )
    return session.execute(stmt).scalar_one_or_none()


# The SMS hot path in one statement (one round trip): the number's advisory lock, then the
# customer (found or created), the open thread (created or bumped) and the message (inserted
# unless its MessageSid exists). Same semantics as lock_number + customer_for_phone +
# open_thread + insert_message. The data dependencies fix the order: each step selects from
# the previous one, so the lock is held before any row is touched.
_SMS_UPSERT = """
WITH lk AS (SELECT pg_advisory_xact_lock(%(lock_ns)s, %(lock_key)s)),
cust_ins AS (
  INSERT INTO core.customers (station_id, phone_encrypted, phone_index, source)
  SELECT %(station_id)s, %(phone_encrypted)s, %(phone_index)s, 'sms_inbound' FROM lk
  ON CONFLICT (station_id, phone_index) WHERE deleted_at IS NULL DO NOTHING
  RETURNING id),
cust AS (
  SELECT id, true AS created FROM cust_ins
  UNION ALL
  SELECT id, false FROM core.customers
  WHERE station_id = %(station_id)s AND phone_index = %(phone_index)s AND deleted_at IS NULL
  LIMIT 1),
thr AS (
  INSERT INTO core.message_threads (customer_id, channel, station_id, last_message_at)
  SELECT id, 'sms', %(station_id)s, %(at)s FROM cust
  ON CONFLICT (customer_id, channel, station_id) WHERE deleted_at IS NULL AND status = 'open'
  DO UPDATE SET last_message_at = GREATEST(core.message_threads.last_message_at, EXCLUDED.last_message_at),
                updated_at = now()
  RETURNING id),
msg AS (
  INSERT INTO core.messages
    (thread_id, station_id, channel, direction, provider_message_id, body, media, num_segments, meta, inbox_id)
  SELECT id, %(station_id)s, 'sms', 'inbound', %(sid)s, %(body)s, %(media)s, %(segments)s, %(meta)s, %(inbox_id)s
  FROM thr
  ON CONFLICT (channel, provider_message_id) DO NOTHING
  RETURNING id)
SELECT (SELECT id FROM cust), (SELECT created FROM cust), (SELECT id FROM thr), (SELECT id FROM msg)
"""


@dataclass(frozen=True, slots=True)
class SmsRecord:
    customer_id: uuid.UUID
    customer_created: bool
    thread_id: uuid.UUID
    message_id: uuid.UUID | None  # None: this MessageSid was already stored


def _sms_params(
    *, station_id: uuid.UUID, phone: PhoneNumber, at: datetime, message: dict[str, Any]
) -> dict[str, Any]:
    lock_ns, lock_key = number_lock_key(phone.index)
    return {
        "lock_ns": lock_ns,
        "lock_key": lock_key,
        "station_id": station_id,
        "phone_index": phone.index,
        "phone_encrypted": phone.encrypted,
        "at": at,
        "sid": message["provider_message_id"],
        "body": message["body"],
        "media": Jsonb(message["media"]) if message["media"] is not None else None,
        "segments": message["num_segments"],
        "meta": Jsonb(message["meta"]) if message["meta"] is not None else None,
        "inbox_id": message["inbox_id"],
    }


def _raw(session: Session) -> psycopg.Connection[Any]:
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def insert_sms(
    session: Session,
    *,
    station_id: uuid.UUID,
    phone: PhoneNumber,
    at: datetime,
    message: dict[str, Any],
) -> SmsRecord:
    """Take the number's lock, then find-or-create customer and thread and insert the message.

    Runs on the session's own connection and transaction (inside the caller's savepoint),
    through psycopg directly: this is the per-row cost of ingest.
    """
    # The per-number lock the consent engine and the send path share is taken first, so this
    # transaction's lock order is (number, then rows), like theirs.
    params = _sms_params(station_id=station_id, phone=phone, at=at, message=message)
    with _raw(session).cursor() as cur:
        cur.execute(_SMS_UPSERT, params)
        row = cur.fetchone()
    if row is not None and row[0] is not None:
        return SmsRecord(row[0], bool(row[1]), row[2], row[3])
    # The customer was inserted by a transaction that committed after this statement's
    # snapshot was taken (while it waited for the number lock, or one that takes no lock,
    # like a staff import). Step by step, each statement with a fresh snapshot, finds it.
    lock_number(session, phone.index)
    customer_id, created = customer_for_phone(session, station_id, phone)
    thread_id = open_thread(session, customer_id=customer_id, channel="sms", station_id=station_id, at=at)
    message_id = insert_message(session, thread_id=thread_id, station_id=station_id, channel="sms", **message)
    return SmsRecord(customer_id, created, thread_id, message_id)


def insert_sms_many(session: Session, rows: Sequence[dict[str, Any]]) -> list[SmsRecord | None]:
    """``insert_sms`` for several messages in one round trip (psycopg pipelines executemany).

    Each dict holds insert_sms's keyword arguments. The statements run in the given order
    (the caller's lock order), in the caller's transaction. None for a message whose customer
    the statement could not see (committed after its snapshot): nothing of it was written,
    and the caller applies it alone with ``insert_sms``, which handles that case. Any error
    propagates; the caller's savepoint then undoes the whole group.
    """
    if not rows:
        return []
    out: list[SmsRecord | None] = []
    with _raw(session).cursor() as cur:
        cur.executemany(_SMS_UPSERT, [_sms_params(**r) for r in rows], returning=True)
        while True:
            row = cur.fetchone()
            out.append(SmsRecord(row[0], bool(row[1]), row[2], row[3]) if row is not None and row[0] is not None
                       else None)
            if not cur.nextset():
                break
    if len(out) != len(rows):
        raise RuntimeError(f"expected {len(rows)} results from the SMS group, got {len(out)}")
    return out
