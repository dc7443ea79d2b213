"""One inbox row's effect, per provider: prepare (pure) then apply (database).

``prepare`` decrypts and parses a row without touching the database, so a malformed
payload fails before any work, and so a batch can be ordered by the locks its rows will
take (see drain.py). ``apply`` runs inside the row's savepoint; everything it writes is
keyed by a unique constraint, so applying the same row twice writes nothing the second
time and calls the consent engine only for a newly inserted message.

After the consent engine, a newly inserted SMS goes to the campaigns' reply handler
(worker.campaigns.replies), in the same savepoint: consent first, so STOP always beats a review
rating; the handler reads a rating only from a reply the consent engine left alone.

The SMS rows of a batch are applied together (``apply_sms_group``), plain texts and consent
texts alike, with the statements shared across the group; the drain falls back to ``apply``
row by row if the group fails (worker/ingest/drain.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from compliance.errors import InvalidNumber
from compliance.phones import is_short_code, mask
from worker import pii
from worker.campaigns.replies import InboundReply, handle_replies
from worker.consent.inbound import InboundMessage, Intent, handle_inbound, handle_inbound_many, read_intent
from worker.ingest.payloads import (
    BadInput,
    MetaPayload,
    StatusCallback,
    TwilioSms,
    decode_params,
    parse_meta,
    parse_status_callback,
    parse_twilio_sms,
)
from worker.ingest.records import (
    SmsRecord,
    StationCache,
    insert_message,
    insert_sms,
    insert_sms_many,
    social_thread,
)
from worker.locks import number_lock_key
from worker.outbound.delivery import record_callback
from worker.phone import PhoneNumber

__all__ = ["GroupOrderLost", "InboxItem", "Outcome", "Prepared", "apply", "apply_sms_group", "is_sms", "prepare"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: uuid.UUID
    provider: str
    payload_encrypted: str
    content_type: str | None
    received_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class PreparedSms:
    sms: TwilioSms
    # Parsed once here and handed to the consent engine, the ledger and the outbox, which
    # neither re-normalise nor re-index it (worker/phone.py).
    sender: PhoneNumber
    to_address: str
    # The body classified and merged with OptOutType, once: handle_inbound gets it too.
    intent: Intent

    @property
    def consent_inert(self) -> bool:
        """The consent engine would do nothing for it (no keyword, no OptOutType)."""
        return self.intent.inert


@dataclass(frozen=True, slots=True)
class Prepared:
    item: InboxItem
    payload: PreparedSms | StatusCallback | MetaPayload
    # Rows are applied in this order, so concurrent drains take row and advisory locks in
    # one global order and cannot deadlock each other. SMS rows come first, by their number's
    # lock key ascending (the order worker.locks.lock_numbers and the send path take number
    # locks in), then by number; a number's texts keep their arrival order (a stable sort of
    # rows loaded by received_at).
    sort_key: tuple[int, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    failed_reason: str | None = None  # set: the row is marked failed (its good parts stay)
    note: str | None = None


def _number(raw: str, field_name: str) -> PhoneNumber:
    try:
        return PhoneNumber.parse(raw)
    except InvalidNumber as exc:
        raise BadInput(f"{field_name} is not a phone number: {exc}") from exc


def _prepare_sms(text: str, content_type: str | None) -> PreparedSms:
    sms = parse_twilio_sms(decode_params(text, content_type))
    sender = _number(sms.from_raw, "From")
    to = sms.to_raw.strip()
    to_address = to if is_short_code(to) else _number(to, "To").e164
    # A sender that parsed is a number the SMS ledger applies to, so whether the consent
    # engine has anything to do is the intent's alone (worker.consent.inbound.is_inert).
    return PreparedSms(sms, sender, to_address, read_intent(sms.body, sms.opt_out_type))


def prepare(item: InboxItem) -> Prepared:
    """Decrypt and parse a row; BadInput (with a readable reason) when it cannot be acted on."""
    try:
        text = pii.decrypt(item.payload_encrypted, kind="inbox")
    except (pii.PiiError, UnicodeDecodeError) as exc:
        raise BadInput(f"stored payload cannot be decrypted: {exc}") from exc
    if item.provider == "twilio_sms":
        sms = _prepare_sms(text, item.content_type)
        return Prepared(item, sms, (0, _lock_order(sms.sender.index)))
    if item.provider == "twilio_status":
        cb = parse_status_callback(decode_params(text, item.content_type))
        return Prepared(item, cb, (1, cb.message_sid))
    if item.provider == "meta":
        meta = parse_meta(text)
        if not meta.events and meta.errors:
            raise BadInput("; ".join(meta.errors)[:1000])
        first = meta.events[0] if meta.events else None
        return Prepared(item, meta, (2, f"{first.page_id}:{first.sender_id}" if first else ""))
    raise BadInput(f"unknown provider {item.provider!r}")


def _lock_order(index: bytes) -> str:
    """Sorts as the number's advisory lock key (signed, ascending), then by number."""
    return f"{number_lock_key(index)[1] + 2**31:010d}:{index.hex()}"


def _sms_station(session: Session, stations: StationCache, p: PreparedSms) -> uuid.UUID | None:
    station_id = stations.by_address(session, "sms", p.to_address)
    if station_id is None and p.sms.messaging_service_sid:
        station_id = stations.by_messaging_service(session, p.sms.messaging_service_sid)
    return station_id


def _sms_row(station_id: uuid.UUID, item: InboxItem, p: PreparedSms) -> dict[str, Any]:
    sms = p.sms
    return {
        "station_id": station_id,
        "phone": p.sender,
        "at": item.received_at,
        "message": {
            "provider_message_id": sms.message_sid,
            "body": sms.body,
            "media": sms.media or None,
            "num_segments": sms.num_segments,
            "meta": sms.meta or None,
            "inbox_id": item.id,
        },
    }


def _apply_sms(session: Session, stations: StationCache, item: InboxItem, p: PreparedSms) -> Outcome:
    station_id = _sms_station(session, stations, p)
    if station_id is None:
        raise BadInput(f"no station has the SMS number {mask(p.to_address)} (add it with `msgworker sender add`)")
    record = insert_sms(session, **_sms_row(station_id, item, p))
    if record.message_id is None:
        return Outcome(note="duplicate message")
    if record.customer_created:
        log.debug("customer_stub_created", customer_id=str(record.customer_id), station_id=str(station_id))
    handle_inbound(session, _inbound(station_id, record, item, p))
    handle_replies(session, [_reply(station_id, record.message_id, item, p)])
    return Outcome()


def _inbound(station_id: uuid.UUID, record: SmsRecord, item: InboxItem, p: PreparedSms) -> InboundMessage:
    assert record.message_id is not None
    sms = p.sms
    return InboundMessage(
        station_id=station_id,
        customer_id=record.customer_id,
        thread_id=record.thread_id,
        message_id=record.message_id,
        channel="sms",
        phone_e164=p.sender,
        to_address=p.to_address,
        body=sms.body,
        provider_message_id=sms.message_sid,
        opt_out_type=sms.opt_out_type,
        messaging_service_sid=sms.messaging_service_sid,
        received_at=item.received_at,
        intent=p.intent,
    )


def _reply(station_id: uuid.UUID, message_id: uuid.UUID, item: InboxItem, p: PreparedSms) -> InboundReply:
    return InboundReply(station_id=station_id, phone_index=p.sender.index, message_id=message_id, body=p.sms.body,
                        received_at=item.received_at, consent_acted=not p.consent_inert)


def is_sms(prepared: Prepared) -> bool:
    """An SMS row: it may go through apply_sms_group with the batch's other SMS rows."""
    return isinstance(prepared.payload, PreparedSms)


class GroupOrderLost(Exception):
    """A text the group could not write (its customer was committed after the statement's
    snapshot) belongs to a number with consent work in the group. Applied alone afterwards, its
    consent would come after a later text's; the caller applies the group row by row instead."""


@dataclass(frozen=True, slots=True)
class _Written:
    """A text the group wrote as a new message."""

    station_id: uuid.UUID
    record: SmsRecord
    item: InboxItem
    sms: PreparedSms

    @property
    def message_id(self) -> uuid.UUID:
        assert self.record.message_id is not None
        return self.record.message_id


def apply_sms_group(session: Session, stations: StationCache, group: Sequence[Prepared]) -> list[Outcome | None]:
    """Apply SMS rows (is_sms) together, in the given order: what ``apply`` does row by row, with
    the statements shared.

    1. Every message in one pipelined round trip (insert_sms_many). Each statement takes its
       number's lock first, and the group is in ascending lock order (Prepared.sort_key), so
       every lock of the group is held, taken in the order every other locker uses, before any
       consent work.
    2. The consent engine and the reply handler in rounds. A number's texts must have their
       effects in arrival order (its ledger chain, and which of two texts cancels what), and a
       text's consent work comes before its reply handling (STOP beats a rating). So each
       number's texts are cut into units: the plain texts before its first consent text, then
       each consent text with the plain texts after it. Round 0 takes every number's leading
       plain texts, round r its r-th consent text's unit: ``handle_inbound_many`` for the
       round's consent texts (one per number), then ``handle_replies`` for all its texts.
       Numbers do not read each other's rows, so a round is what its texts give one after the
       other; the consent engine runs once per batch unless a number sent two consent texts.

    None for a row this cannot finish (no station: ``apply`` raises the readable BadInput; a
    customer committed after the statement's snapshot): the caller applies it alone. Any error
    propagates (GroupOrderLost when such a row's number has consent work here), and the
    caller's savepoint undoes the whole group; the caller then applies its rows one by one.
    """
    outcomes: list[Outcome | None] = [None] * len(group)
    todo: list[int] = []
    rows: list[dict[str, Any]] = []
    for i, prepared in enumerate(group):
        p = prepared.payload
        if not isinstance(p, PreparedSms):
            raise TypeError("apply_sms_group takes SMS rows only (is_sms)")
        station_id = _sms_station(session, stations, p)
        if station_id is not None:
            todo.append(i)
            rows.append(_sms_row(station_id, prepared.item, p))
    records = insert_sms_many(session, rows)
    written: list[_Written] = []
    unseen: set[bytes] = set()
    for i, row, record in zip(todo, rows, records, strict=True):
        payload = group[i].payload
        assert isinstance(payload, PreparedSms)
        if record is None:
            unseen.add(payload.sender.index)
            continue
        if record.message_id is None:
            outcomes[i] = Outcome(note="duplicate message")
            continue
        if record.customer_created:
            log.debug("customer_stub_created", customer_id=str(record.customer_id), station_id=str(row["station_id"]))
        written.append(_Written(row["station_id"], record, group[i].item, payload))
        outcomes[i] = Outcome()
    if any(w.sms.sender.index in unseen and not w.sms.consent_inert for w in written):
        raise GroupOrderLost("a text of a number with consent work in the group must be applied alone")
    for round_ in _rounds(written):
        consent = [_inbound(w.station_id, w.record, w.item, w.sms) for w in round_ if not w.sms.consent_inert]
        if consent:
            handle_inbound_many(session, consent)
        # One query for the round; most rounds answer no review request.
        handle_replies(session, [_reply(w.station_id, w.message_id, w.item, w.sms) for w in round_])
    return outcomes


def _rounds(written: Sequence[_Written]) -> list[list[_Written]]:
    """The rounds of apply_sms_group, in group order: round 0 every number's texts before its
    first consent text, round r (r >= 1) its r-th consent text and the plain texts after it."""
    units: dict[bytes, list[list[_Written]]] = {}
    for w in written:
        mine = units.setdefault(w.sms.sender.index, [[]])
        if w.sms.consent_inert:
            mine[-1].append(w)
        else:
            mine.append([w])
    rounds: list[list[_Written]] = []
    for mine in units.values():
        for r, unit in enumerate(mine):
            if r == len(rounds):
                rounds.append([])
            rounds[r].extend(unit)
    return [round_ for round_ in rounds if round_]


def _apply_status(session: Session, item: InboxItem, cb: StatusCallback) -> Outcome:
    out = record_callback(
        session,
        provider_sid=cb.message_sid,
        status=cb.status,
        error_code=cb.error_code,
        raw=cb.raw,
        inbox_id=item.id,
    )
    if out.event_id is None:
        return Outcome(note="duplicate callback")
    if out.outbound_id is None:
        return Outcome(note="no outbound message has this sid yet; kept for the send path")
    return Outcome()


def _timestamp(ms: int | None) -> datetime | None:
    if ms is None or not 0 < ms < 10**14:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _apply_meta(session: Session, stations: StationCache, item: InboxItem, meta: MetaPayload) -> Outcome:
    errors = list(meta.errors)
    handled = 0
    for ev in meta.events:
        station_id = stations.by_address(session, ev.channel, ev.page_id)
        if station_id is None and ev.recipient_id and ev.recipient_id != ev.page_id:
            station_id = stations.by_address(session, ev.channel, ev.recipient_id)
        if station_id is None:
            errors.append(f"{ev.where}: no station has {ev.channel} page/account id {ev.page_id}")
            continue
        customer_id, thread_id = social_thread(
            session, channel=ev.channel, station_id=station_id, sender_id=ev.sender_id, at=item.received_at
        )
        message_id = insert_message(
            session,
            thread_id=thread_id,
            station_id=station_id,
            channel=ev.channel,
            provider_message_id=ev.mid,
            body=ev.body,
            media=ev.media or None,
            meta={"kind": ev.kind, "page_id": ev.page_id},
            inbox_id=item.id,
            sent_at=_timestamp(ev.timestamp_ms),
        )
        handled += 1
        if message_id is None:
            continue
        handle_inbound(
            session,
            InboundMessage(
                station_id=station_id,
                customer_id=customer_id,
                thread_id=thread_id,
                message_id=message_id,
                channel=ev.channel,
                phone_e164=None,
                to_address=ev.page_id,
                body=ev.body,
                provider_message_id=ev.mid,
                opt_out_type=None,
                messaging_service_sid=None,
                received_at=item.received_at,
            ),
        )
    if errors:
        # The good events stay stored; `msgworker inbox retry` re-runs the row idempotently
        # (mids are unique) once the cause (e.g. a missing page id) is fixed.
        return Outcome(
            failed_reason=f"{len(errors)} problem(s), {handled} message(s) stored: " + "; ".join(errors)[:1000]
        )
    return Outcome(note=f"{len(meta.events)} message(s), {meta.skipped} other event(s) skipped")


def apply(session: Session, stations: StationCache, prepared: Prepared) -> Outcome:
    """Write the row's effect (inside the caller's savepoint)."""
    payload = prepared.payload
    if isinstance(payload, PreparedSms):
        return _apply_sms(session, stations, prepared.item, payload)
    if isinstance(payload, StatusCallback):
        return _apply_status(session, prepared.item, payload)
    return _apply_meta(session, stations, prepared.item, payload)
