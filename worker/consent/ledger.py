"""Recording consent events: lock the number, chain the hash, append, project, same transaction.

Every change to a number's consent goes through :func:`record_event` (or
:func:`record_events` for bulk imports). Under the per-number advisory lock that the send
path also takes (worker.locks), it

1. returns the existing event if the idempotency key was already recorded (a redelivered
   webhook, a re-run import) and changes nothing;
2. reads the number's last event hash (by seq) and computes this event's hash over its
   canonical form plus that previous hash (compliance.consent_hash);
3. inserts the event (the table refuses UPDATE/DELETE by trigger);
4. updates compliance.consent_state with compliance.consent_rules.apply_event, the same
   pure function ``ledger verify`` replays.

The caller's transaction commits all of it or none of it, and a send decided after the
commit sees it (the lock orders them). The caller never commits here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from compliance.consent_hash import HashInput, canonical_evidence, event_hash
from compliance.consent_rules import (
    LIFTS_OPT_OUT,
    ConsentSnapshot,
    EventFacts,
    Kind,
    Purpose,
    Source,
    affected_scopes,
    apply_event,
    moved_to_opted_out,
    validate,
)
from compliance.errors import LedgerConflict
from worker import metrics
from worker.consent.state import SNAPSHOT_FIELDS, STATE_ROWS_SQL, parse_state_rows, snapshot_of
from worker.consent.verify import VerifyReport, verify
from worker.db import driver_connection
from worker.locks import NUMBERS_LOCK_SQL, lock_number, numbers_lock_params
from worker.models import ConsentEvent, ConsentState
from worker.phone import PhoneNumber, as_number

__all__ = [
    "CarrierReport",
    "EventInput",
    "RecordResult",
    "VerifyReport",
    "record_carrier_opt_out",
    "record_event",
    "record_events",
    "snapshot_of",
    "verify_ledger",
]

log = structlog.get_logger(__name__)

@dataclass(frozen=True, slots=True)
class EventInput:
    """One event to record; the phone is already normalised, indexed and encrypted."""

    phone_index: bytes
    phone_encrypted: str
    kind: str
    purpose: str
    source: str
    evidence: Mapping[str, Any]
    occurred_at: datetime
    station_id: uuid.UUID | None = None
    idempotency_key: str | None = None

    @classmethod
    def for_phone(cls, phone_e164: str | PhoneNumber, **fields: Any) -> EventInput:
        """A string is parsed here; a PhoneNumber (ingest's) lends its index and ciphertext."""
        number = as_number(phone_e164)
        return cls(phone_index=number.index, phone_encrypted=number.encrypted, **fields)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What recording one input did (the bulk path's result; no ORM objects)."""

    event_id: uuid.UUID
    created: bool
    phone_index: bytes
    # Per affected state row (station_id, None = business-wide): before and after.
    before: dict[uuid.UUID | None, ConsentSnapshot] = field(default_factory=dict)
    after: dict[uuid.UUID | None, ConsentSnapshot] = field(default_factory=dict)

    @property
    def moved_to_opted_out(self) -> bool:
        return any(
            moved_to_opted_out(self.before[scope], self.after[scope], self.event_id) for scope in self.after
        )

    @property
    def lifted_opt_out(self) -> bool:
        """Some covered row was opted out (fully) before this event and is not after it."""
        return any(self.before[scope].opted_out and not self.after[scope].opted_out for scope in self.after)


@dataclass(frozen=True, slots=True)
class RecordResult:
    event: ConsentEvent
    created: bool
    # The state rows this event covers (business row and/or the station row), as committed.
    states: list[ConsentState]
    # This event put at least one covering row into an opted-out state (a repeated STOP
    # does not): the trigger for the one confirmation text.
    moved_to_opted_out: bool = False
    # This event lifted a full opt-out on at least one covered row (a START that counted).
    lifted_opt_out: bool = False


def _check_input(item: EventInput) -> None:
    validate(item.kind, item.purpose, item.source)
    if item.occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    if len(item.phone_index) != 32:
        raise ValueError("phone_index must be a 32-byte blind index")
    if item.idempotency_key is not None and not 0 < len(item.idempotency_key) <= 255:
        raise ValueError("idempotency_key must be 1..255 characters")


def record_events(session: Session, items: Sequence[EventInput]) -> list[Outcome]:
    """Record many events in one transaction, in order; one Outcome per input.

    The same number may appear more than once; its events chain in input order.
    """
    if not items:
        return []
    for item in items:
        _check_input(item)
    indexes = sorted({i.phone_index for i in items})
    keys = [i.idempotency_key for i in items if i.idempotency_key is not None]
    existing, heads, states = _read_locked(session, indexes, keys)

    recorded_at = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    slots: list[tuple[EventInput, uuid.UUID, bool, bytes]] = []
    for item in items:
        key = item.idempotency_key
        if key is not None and key in existing:
            ev_id, idx = existing[key]
            if idx != item.phone_index:
                raise LedgerConflict(f"idempotency key {key!r} was already used for another number")
            slots.append((item, ev_id, False, b""))
            continue
        if not item.phone_encrypted:
            raise ValueError("phone_encrypted is required for an event that is not yet recorded")
        ev_id = uuid.uuid4()
        evidence = canonical_evidence(dict(item.evidence))
        prev = heads.get(item.phone_index)
        digest = event_hash(
            HashInput(
                id=ev_id,
                phone_index=item.phone_index,
                station_id=item.station_id,
                kind=item.kind,
                purpose=item.purpose,
                source=item.source,
                evidence=evidence,
                occurred_at=item.occurred_at,
                recorded_at=recorded_at,
                idempotency_key=key,
                prev_hash=prev,
            ),
            evidence_is_canonical=True,
        )
        heads[item.phone_index] = digest
        if key is not None:
            existing[key] = (ev_id, item.phone_index)
        rows.append(
            {
                "id": ev_id,
                "phone_index": item.phone_index,
                "phone_encrypted": item.phone_encrypted,
                "station_id": item.station_id,
                "kind": item.kind,
                "purpose": item.purpose,
                "source": item.source,
                "evidence": evidence,
                "occurred_at": item.occurred_at,
                "recorded_at": recorded_at,
                "idempotency_key": key,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        slots.append((item, ev_id, True, digest))

    seqs: dict[uuid.UUID, int] = {}
    if rows:
        # One multi-row VALUES statement: PostgreSQL assigns the identity in row order,
        # so seq order equals chain order for a number that appears twice.
        seqs = _insert_events(session, rows)
        if len(seqs) != len(rows):
            # Only possible if a key is being used for another number right now, or
            # someone writes events without the lock: refuse rather than break a chain.
            raise LedgerConflict("an idempotency key was recorded concurrently by a writer without the number lock")

    # The projection, for the numbers that got new events (their state rows, read under the
    # locks before the insert, which changes no state row).
    encrypted: dict[bytes, str] = {}
    changed: set[tuple[bytes, uuid.UUID | None]] = set()
    outcomes: list[Outcome] = []
    for item, ev_id, created, digest in slots:
        if not created:
            outcomes.append(Outcome(event_id=ev_id, created=False, phone_index=item.phone_index))
            continue
        facts = EventFacts.from_evidence(
            id=ev_id,
            seq=seqs[ev_id],
            hash=digest,
            kind=item.kind,
            purpose=item.purpose,
            station_id=item.station_id,
            occurred_at=item.occurred_at,
            evidence=item.evidence,
        )
        rows_of = states.setdefault(item.phone_index, {})
        before: dict[uuid.UUID | None, ConsentSnapshot] = {}
        after: dict[uuid.UUID | None, ConsentSnapshot] = {}
        for scope in affected_scopes(item.station_id, list(rows_of)):
            old = rows_of.get(scope, ConsentSnapshot())
            new = apply_event(old, facts)
            before[scope], after[scope] = old, new
            rows_of[scope] = new
            changed.add((item.phone_index, scope))
        encrypted[item.phone_index] = item.phone_encrypted
        outcomes.append(Outcome(event_id=ev_id, created=True, phone_index=item.phone_index, before=before, after=after))

    if changed:
        ordered = sorted(changed, key=lambda k: (k[0], str(k[1])))
        _upsert_states(session, [(idx, scope, states[idx][scope], encrypted[idx]) for idx, scope in ordered])
    metrics.consent_events(session, [(r["kind"], r["source"], r["occurred_at"]) for r in rows])
    return outcomes


_KNOWN_KEYS = (
    "SELECT idempotency_key, id, phone_index FROM compliance.consent_events WHERE idempotency_key = ANY(%(keys)s)"
)
# The chain heads: each number's last event by seq.
_HEADS = (
    "SELECT DISTINCT ON (phone_index) phone_index, hash FROM compliance.consent_events "
    "WHERE phone_index = ANY(%(indexes)s) ORDER BY phone_index, seq DESC"
)


_Locked = tuple[
    dict[str, tuple[uuid.UUID, bytes]], dict[bytes, bytes], dict[bytes, dict[uuid.UUID | None, ConsentSnapshot]]
]


def _read_locked(session: Session, indexes: list[bytes], keys: list[str]) -> _Locked:
    """Take the numbers' locks, then read what the append needs: (known idempotency keys -> (event
    id, blind index), chain heads, state rows per number and scope).

    One round trip: the statements go in one pipeline on the session's connection, and the server
    runs them in order, each read with a snapshot taken after the lock statement returned, so
    nothing for these numbers can be appended or projected between these reads and our commit.
    """
    conn = driver_connection(session)
    with conn.cursor() as lock, conn.cursor() as known, conn.cursor() as head, conn.cursor() as state:
        with conn.pipeline():
            lock.execute(NUMBERS_LOCK_SQL, numbers_lock_params(indexes))
            if keys:
                known.execute(_KNOWN_KEYS, {"keys": keys})
            head.execute(_HEADS, {"indexes": indexes})
            state.execute(STATE_ROWS_SQL, {"indexes": indexes})
        existing = {key: (ev_id, bytes(idx)) for key, ev_id, idx in known.fetchall()} if keys else {}
        heads = {bytes(idx): bytes(digest) for idx, digest in head.fetchall()}
        return existing, heads, parse_state_rows(state.fetchall())


# Column name -> PostgreSQL array type, for the unnest() bulk statements below. One
# statement per batch, with one array parameter per column: no per-row SQL to build.
_EVENT_ARRAYS = {
    "id": "uuid[]",
    "phone_index": "bytea[]",
    "phone_encrypted": "text[]",
    "station_id": "uuid[]",
    "kind": "text[]",
    "purpose": "text[]",
    "source": "text[]",
    "evidence": "jsonb[]",
    "occurred_at": "timestamptz[]",
    "recorded_at": "timestamptz[]",
    "idempotency_key": "text[]",
    "prev_hash": "bytea[]",
    "hash": "bytea[]",
}
_STATE_ARRAYS = {
    "phone_index": "bytea[]",
    "station_id": "uuid[]",
    "phone_encrypted": "text[]",
    "opted_out": "boolean[]",
    "marketing_opted_out": "boolean[]",
    "opted_out_at": "timestamptz[]",
    "opt_out_event_id": "uuid[]",
    "marketing_consent": "boolean[]",
    "marketing_consent_event_id": "uuid[]",
    "marketing_consent_at": "timestamptz[]",
    "pending_review": "boolean[]",
    "last_event_id": "uuid[]",
    "last_event_seq": "bigint[]",
    "last_event_hash": "bytea[]",
}


def _unnest(arrays: dict[str, str]) -> str:
    casts = ", ".join(f"CAST(%({name})b AS {kind})" for name, kind in arrays.items())
    # Fixed column names and types from the tables above; values only ever travel as parameters.
    return f"SELECT {', '.join(arrays)} FROM unnest({casts}) WITH ORDINALITY AS t({', '.join(arrays)}, ord)"  # noqa: S608


_INSERT_EVENTS = (
    f"INSERT INTO compliance.consent_events ({', '.join(_EVENT_ARRAYS)}) "
    # ORDER BY ord: the identity (seq) is assigned in input order, so a number that appears
    # twice in one batch gets its seqs in chain order.
    f"{_unnest(_EVENT_ARRAYS)} ORDER BY ord "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, seq"
)

_UPSERT_STATES = (
    f"INSERT INTO compliance.consent_state ({', '.join(_STATE_ARRAYS)}) {_unnest(_STATE_ARRAYS)} "
    "ON CONFLICT (phone_index, station_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in SNAPSHOT_FIELDS)
    + ", updated_at = now()"
)


def _raw(session: Session, sql: str, params: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    """Run on the session's own connection (same transaction), parameters in binary (``%(x)b``).

    Large array parameters dump much faster in binary than as text (which escapes every
    element with a regex); this is the bulk path's hot spot.
    """
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> dict[uuid.UUID, int]:
    params: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in _EVENT_ARRAYS}
    # Serialised here; JSONB parses it back to exactly the canonical evidence that was hashed.
    params["evidence"] = [json.dumps(e, ensure_ascii=False) for e in params["evidence"]]
    return {ev_id: seq for ev_id, seq in _raw(session, _INSERT_EVENTS, params)}


def _upsert_states(
    session: Session, rows: list[tuple[bytes, uuid.UUID | None, ConsentSnapshot, str]]
) -> None:
    params: dict[str, list[Any]] = {name: [] for name in _STATE_ARRAYS}
    for idx, scope, snap, enc in rows:
        params["phone_index"].append(idx)
        params["station_id"].append(scope)
        params["phone_encrypted"].append(enc)
        for name in SNAPSHOT_FIELDS:
            params[name].append(getattr(snap, name))
    _raw(session, _UPSERT_STATES, params)


def _states_for(session: Session, phone_index: bytes, station_id: uuid.UUID | None) -> list[ConsentState]:
    q = select(ConsentState).where(ConsentState.phone_index == phone_index)
    if station_id is not None:
        q = q.where(ConsentState.station_id == station_id)
    return list(
        session.execute(
            q.order_by(ConsentState.station_id.is_not(None), ConsentState.station_id).execution_options(
                populate_existing=True
            )
        ).scalars()
    )


def record_event(
    session: Session,
    *,
    phone_e164: str | PhoneNumber,
    kind: str,
    purpose: str,
    source: str,
    evidence: dict[str, Any],
    occurred_at: datetime,
    station_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> RecordResult:
    """Append one consent event and update the state it covers (see the module docstring).

    A known idempotency key returns the event already recorded (``created`` False) and
    changes nothing.
    """
    item = EventInput.for_phone(
        phone_e164,
        kind=kind,
        purpose=purpose,
        source=source,
        evidence=evidence,
        occurred_at=occurred_at,
        station_id=station_id,
        idempotency_key=idempotency_key,
    )
    (outcome,) = record_events(session, [item])
    event = session.execute(
        select(ConsentEvent).where(ConsentEvent.id == outcome.event_id).execution_options(populate_existing=True)
    ).scalar_one()
    states = _states_for(session, item.phone_index, event.station_id)
    log.info(
        "consent_event_recorded" if outcome.created else "consent_event_duplicate",
        event_id=str(event.id),
        seq=event.seq,
        kind=event.kind,
        purpose=event.purpose,
        source=event.source,
        station_id=str(event.station_id) if event.station_id else None,
        moved_to_opted_out=outcome.moved_to_opted_out,
    )
    return RecordResult(
        event=event,
        created=outcome.created,
        states=states,
        moved_to_opted_out=outcome.moved_to_opted_out,
        lifted_opt_out=outcome.lifted_opt_out,
    )


# How the carrier opt-out reached us: the error answer to a create (HTTP 400), or a status
# callback reporting the code for a message Twilio had accepted.
CarrierReport = Literal["send_response", "status_callback"]


def record_carrier_opt_out(
    session: Session,
    *,
    phone_e164: str | PhoneNumber,
    station_id: uuid.UUID,
    error_code: int,
    provider_ref: str,
    reported_via: CarrierReport,
    occurred_at: datetime,
    provider_sid: str | None = None,
) -> RecordResult:
    """Record that Twilio says the number opted out (21610), however the code reached us.

    Twilio keeps its own opt-out list per sender / Messaging Service
    (docs/compliance.md#error-21610):
    a 21610 means the person replied STOP somewhere we may not have seen. The scope follows
    CONSENT_OPT_OUT_SCOPE, purpose all. No confirmation is sent (Twilio would refuse it
    with the same 21610); the number's other unsent rows are cancelled.

    Once per number and scope: the idempotency key names the number's blind index, the scope
    and the last event that could have lifted an opt-out (LIFTS_OPT_OUT; 0 for none), so the
    refused create, the status callback of another accepted text and a redelivered callback
    all land on the one event, while a 21610 after a START is recorded again. The key is read
    under the number's lock, so no opt-in can commit between reading it and recording.
    """
    from worker.consent.effects import cancel_after_opt_out
    from worker.settings import get_settings

    number = as_number(phone_e164)
    scope = None if get_settings().CONSENT_OPT_OUT_SCOPE == "business" else station_id
    lock_number(session, number.index)
    since = session.execute(
        select(func.max(ConsentEvent.seq)).where(
            ConsentEvent.phone_index == number.index, ConsentEvent.kind.in_(sorted(LIFTS_OPT_OUT))
        )
    ).scalar_one()
    evidence: dict[str, Any] = {
        "error_code": error_code,
        "provider_ref": provider_ref,
        "station_id": station_id,
        "reported_via": reported_via,
    }
    if provider_sid is not None:
        evidence["provider_sid"] = provider_sid
    result = record_event(
        session,
        phone_e164=number,
        kind=Kind.CARRIER_OPT_OUT,
        purpose=Purpose.ALL,
        source=Source.CARRIER_ERROR,
        evidence=evidence,
        occurred_at=occurred_at,
        station_id=scope,
        idempotency_key=f"carrier-opt-out:{number.index.hex()}:{scope or 'business'}:{since or 0}",
    )
    if result.created:
        cancel_after_opt_out(session, result.event.phone_index)
    return result


def verify_ledger(
    session: Session, *, max_problems: int = 1000, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Recompute every hash and replay the projection; see worker.consent.verify."""
    return verify(session, max_problems=max_problems, progress=progress)
