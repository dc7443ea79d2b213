"""Ingest of stored inbox rows into customers, threads, messages and delivery events (real database).

Rows are written the way the receiver writes them (encrypted raw body) and processed by the
same ``process_items`` the drain runs, inside the test's rolled-back transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_station, phone, station_number
from tests.support.webhooks import meta_message_body, new_sid, sms_pairs, status_pairs
from worker import pii
from worker.ingest.drain import RowResult, load_items, process_items
from worker.models import (
    ConsentEvent,
    Customer,
    DeliveryEvent,
    Message,
    MessageThread,
    OutboundMessage,
    StationSender,
    UndeliverableNumber,
    WebhookInbox,
)
from worker.outbound.delivery import apply_pending_events
from worker.outbox import enqueue

FORM = "application/x-www-form-urlencoded"


def add_inbox(session: Session, provider: str, raw: str, *, event_id: str | None = None,
              content_type: str = FORM) -> uuid.UUID:
    row = WebhookInbox(
        provider=provider,
        provider_event_id=event_id or ("sha256:" + hashlib.sha256(raw.encode()).hexdigest()),
        content_type=content_type,
        payload_encrypted=pii.encrypt(raw, kind="inbox"),
    )
    session.add(row)
    session.flush()
    return row.id


def add_sms(session: Session, *, from_: str, to: str, body: str = "hello", sid: str | None = None,
            extra: tuple[tuple[str, str], ...] = ()) -> uuid.UUID:
    sid = sid or new_sid()
    return add_inbox(session, "twilio_sms", urlencode(sms_pairs(sid=sid, from_=from_, to=to, body=body, extra=extra)),
                     event_id=sid)


def run(session: Session, *ids: uuid.UUID) -> dict[uuid.UUID, RowResult]:
    results = process_items(session, load_items(session, list(ids)))
    session.flush()
    return {r.inbox_id: r for r in results}


def inbox(session: Session, inbox_id: uuid.UUID) -> WebhookInbox:
    session.expire_all()
    return session.execute(select(WebhookInbox).where(WebhookInbox.id == inbox_id)).scalar_one()


def count(session: Session, model: type[object], *where: object) -> int:
    return len(session.execute(select(model).where(*where)).scalars().all())  # type: ignore[arg-type]


def test_first_sms_from_new_number_makes_customer_thread_and_message(db_session: Session) -> None:
    """An unknown number becomes a customer stub with one open thread and the message, and the row is processed."""
    to = station_number()
    station = make_station(db_session, sms_number=to)
    sender = phone()
    sid = new_sid("MM")
    extra = (("MediaUrl0", "https://api.twilio.com/m/ME1"), ("MediaContentType0", "image/png"),
             ("OptOutType", "HELP"), ("MessagingServiceSid", "MG" + "c" * 32))
    row_id = add_sms(db_session, from_=sender, to=to, body="Hi, table for 12?", sid=sid, extra=extra)
    results = run(db_session, row_id)
    assert results[row_id].outcome == "processed"

    [customer] = db_session.execute(select(Customer).where(Customer.station_id == station.id)).scalars().all()
    assert customer.source == "sms_inbound"
    assert customer.phone_index == pii.blind_index(sender, kind="phone")
    assert pii.decrypt(str(customer.phone_encrypted), kind="phone") == sender
    [thread] = db_session.execute(select(MessageThread).where(MessageThread.customer_id == customer.id)).scalars().all()
    assert (thread.channel, thread.status, thread.station_id) == ("sms", "open", station.id)
    [message] = db_session.execute(select(Message).where(Message.thread_id == thread.id)).scalars().all()
    assert (message.channel, message.direction, message.provider_message_id) == ("sms", "inbound", sid)
    assert message.body == "Hi, table for 12?"
    assert message.media == [{"url": "https://api.twilio.com/m/ME1", "content_type": "image/png"}]
    assert message.num_segments == 1
    assert message.meta is not None
    assert message.meta["FromCity"] == "SAN FRANCISCO"
    assert message.meta["OptOutType"] == "HELP"
    assert sender not in json.dumps(message.meta)
    assert message.inbox_id == row_id
    row = inbox(db_session, row_id)
    assert row.status == "processed"
    assert row.processed_at is not None
    assert row.last_error is None
    assert thread.last_message_at == row.received_at


def test_processing_a_row_twice_has_no_second_effect(db_session: Session) -> None:
    """Re-running a processed row (redelivery, operator retry) adds no message, customer, thread or consent event."""
    to = station_number()
    make_station(db_session, sms_number=to)
    sender = phone()
    row_id = add_sms(db_session, from_=sender, to=to, body="STOP")
    run(db_session, row_id)
    index = pii.blind_index(sender, kind="phone")
    before = (
        count(db_session, Customer, Customer.phone_index == index),
        count(db_session, MessageThread),
        count(db_session, Message),
        count(db_session, ConsentEvent, ConsentEvent.phone_index == index),
    )
    assert before[3] >= 1  # the consent engine recorded the STOP
    db_session.execute(text("UPDATE core.webhook_inbox SET status = 'pending' WHERE id = :id"), {"id": row_id})
    assert run(db_session, row_id)[row_id].outcome == "processed"
    after = (
        count(db_session, Customer, Customer.phone_index == index),
        count(db_session, MessageThread),
        count(db_session, Message),
        count(db_session, ConsentEvent, ConsentEvent.phone_index == index),
    )
    assert after == before


def test_processed_rows_are_not_picked_up_again(db_session: Session) -> None:
    """load_items only returns pending rows, so a processed row is never re-applied by a drain."""
    to = station_number()
    make_station(db_session, sms_number=to)
    row_id = add_sms(db_session, from_=phone(), to=to)
    run(db_session, row_id)
    assert load_items(db_session, [row_id]) == []


def test_same_number_reuses_customer_and_open_thread(db_session: Session) -> None:
    """Later messages from a known number land in the same customer and thread; last_message_at only moves forward."""
    to = station_number()
    station = make_station(db_session, sms_number=to)
    sender = phone()
    existing = make_customer(db_session, station, phone_e164=sender)
    first = add_sms(db_session, from_=sender, to=to, body="one")
    second = add_sms(db_session, from_=sender, to=to, body="two")
    run(db_session, first, second)
    assert count(db_session, Customer, Customer.station_id == station.id) == 1
    threads = db_session.execute(select(MessageThread).where(MessageThread.customer_id == existing.id)).scalars().all()
    assert len(threads) == 1
    assert count(db_session, Message, Message.thread_id == threads[0].id) == 2
    assert threads[0].last_message_at == max(inbox(db_session, first).received_at,
                                             inbox(db_session, second).received_at)


def test_closed_thread_gets_a_new_open_thread(db_session: Session) -> None:
    """A message after the thread was closed opens a new thread for the same customer."""
    to = station_number()
    station = make_station(db_session, sms_number=to)
    sender = phone()
    customer = make_customer(db_session, station, phone_e164=sender)
    closed = MessageThread(customer_id=customer.id, channel="sms", station_id=station.id, status="closed")
    db_session.add(closed)
    db_session.flush()
    run(db_session, add_sms(db_session, from_=sender, to=to))
    statuses = sorted(t.status for t in db_session.execute(
        select(MessageThread).where(MessageThread.customer_id == customer.id)).scalars())
    assert statuses == ["closed", "open"]


def test_same_number_in_two_stations_is_two_customers(db_session: Session) -> None:
    """Customers are per station: one phone texting two stations makes two customers."""
    to_a, to_b = station_number(), station_number()
    make_station(db_session, sms_number=to_a)
    make_station(db_session, sms_number=to_b)
    sender = phone()
    run(db_session, add_sms(db_session, from_=sender, to=to_a), add_sms(db_session, from_=sender, to=to_b))
    assert count(db_session, Customer, Customer.phone_index == pii.blind_index(sender, kind="phone")) == 2


def test_station_resolved_by_messaging_service_when_to_is_not_a_sender(db_session: Session) -> None:
    """A To number in the station's Messaging Service (not listed itself) resolves through the service sid."""
    service = "MG" + uuid.uuid4().hex
    station = make_station(db_session, messaging_service_sid=service)
    row_id = add_sms(db_session, from_=phone(), to=station_number(), extra=(("MessagingServiceSid", service),))
    assert run(db_session, row_id)[row_id].outcome == "processed"
    assert count(db_session, Message, Message.station_id == station.id) == 1


def test_unknown_station_fails_the_row_with_a_masked_reason(db_session: Session) -> None:
    """A To number no station owns fails the row with a readable reason that does not spell the number."""
    to = station_number()
    sender = phone()
    row_id = add_sms(db_session, from_=sender, to=to)
    result = run(db_session, row_id)[row_id]
    assert result.outcome == "failed"
    row = inbox(db_session, row_id)
    assert row.status == "failed"
    assert row.last_error is not None
    assert "no station has the SMS number" in row.last_error
    assert to not in row.last_error
    assert to[-2:] in row.last_error
    assert count(db_session, Customer, Customer.phone_index == pii.blind_index(sender, kind="phone")) == 0


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        pytest.param([("MessageSid", "SM1"), ("From", "not a number"), ("To", "+12125550100")], "From is not a phone",
                     id="bad-from"),
        pytest.param([("MessageSid", "SM2"), ("From", "+14155550123"), ("To", "12")], "To is not a phone", id="bad-to"),
        pytest.param([("From", "+14155550123"), ("To", "+12125550100")], "MessageSid is missing", id="no-sid"),
        pytest.param([("MessageSid", "SM3"), ("From", "+14155550123"), ("To", "+12125550100"), ("Body", "a\x00")],
                     "NUL", id="nul-body"),
    ],
)
def test_malformed_sms_rows_fail_with_reason(db_session: Session, pairs: list[tuple[str, str]], reason: str) -> None:
    """Unparseable numbers and missing fields mark the row failed with a reason naming the problem."""
    row_id = add_inbox(db_session, "twilio_sms", urlencode(pairs))
    assert run(db_session, row_id)[row_id].outcome == "failed"
    row = inbox(db_session, row_id)
    assert row.status == "failed"
    assert row.last_error is not None
    assert reason in row.last_error


def test_undecryptable_payload_fails_the_row(db_session: Session) -> None:
    """A payload that does not decrypt (wrong key, corruption) fails with a reason instead of crashing the batch."""
    row = WebhookInbox(provider="twilio_sms", provider_event_id=new_sid(), payload_encrypted="v1.zz.AAAA")
    db_session.add(row)
    db_session.flush()
    assert run(db_session, row.id)[row.id].outcome == "failed"
    assert "cannot be decrypted" in str(inbox(db_session, row.id).last_error)


def test_one_bad_row_does_not_roll_back_its_neighbours(db_session: Session) -> None:
    """In one batch, the good rows commit their messages and the bad row alone is failed."""
    to = station_number()
    make_station(db_session, sms_number=to)
    good1 = add_sms(db_session, from_=phone(), to=to)
    bad = add_sms(db_session, from_=phone(), to=station_number())  # unknown station
    good2 = add_sms(db_session, from_=phone(), to=to)
    results = run(db_session, good1, bad, good2)
    assert {k: v.outcome for k, v in results.items()} == {good1: "processed", bad: "failed", good2: "processed"}
    assert count(db_session, Message, Message.inbox_id.in_([good1, good2])) == 2


def test_lock_timeout_leaves_row_pending_for_retry(db_session: Session) -> None:
    """A transient database error (lock timeout) keeps the row pending with the error; other rows proceed."""
    from worker.db import engine

    to = station_number()
    make_station(db_session, sms_number=to)
    blocked_sender = phone()
    blocked = add_sms(db_session, from_=blocked_sender, to=to)
    free = add_sms(db_session, from_=phone(), to=to)
    key = int.from_bytes(pii.blind_index(blocked_sender, kind="phone")[:4], "big", signed=True)
    with engine().connect() as other:
        other.execute(text("SELECT pg_advisory_lock(1, :k)"), {"k": key})  # the number lock, held elsewhere
        try:
            db_session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            results = run(db_session, blocked, free)
        finally:
            other.execute(text("SELECT pg_advisory_unlock(1, :k)"), {"k": key})
            other.commit()
    assert results[blocked].outcome == "retry"
    assert results[free].outcome == "processed"
    row = inbox(db_session, blocked)
    assert row.status == "pending"
    assert row.last_error is not None
    assert row.last_error.startswith("transient")


def _meta_station(session: Session, channel: str, page_id: str) -> uuid.UUID:
    station = make_station(session)
    session.add(StationSender(station_id=station.id, channel=channel, address=page_id))
    session.flush()
    return station.id


def test_meta_messages_become_social_threads(db_session: Session) -> None:
    """A Messenger message makes a phone-less customer stub and a facebook thread keyed by the PSID, reused later."""
    page = uuid.uuid4().hex[:15]
    station_id = _meta_station(db_session, "facebook", page)
    psid = uuid.uuid4().hex[:16]
    first = add_inbox(db_session, "meta", meta_message_body(page_id=page, sender_id=psid, mid="m1" + psid).decode(),
                      content_type="application/json")
    second = add_inbox(db_session, "meta", meta_message_body(page_id=page, sender_id=psid, mid="m2" + psid,
                                                             text="again").decode(), content_type="application/json")
    results = run(db_session, first, second)
    assert {r.outcome for r in results.values()} == {"processed"}
    [thread] = db_session.execute(
        select(MessageThread).where(MessageThread.external_thread_id == psid)).scalars().all()
    assert (thread.channel, thread.station_id, thread.status) == ("facebook", station_id, "open")
    customer = db_session.get(Customer, thread.customer_id)
    assert customer is not None
    assert customer.source == "facebook"
    assert customer.phone_index is None
    bodies = sorted(m.body or "" for m in db_session.execute(
        select(Message).where(Message.thread_id == thread.id)).scalars())
    assert bodies == ["again", "hi"]


def test_instagram_echo_is_skipped_and_unknown_page_fails_but_keeps_good_events(db_session: Session) -> None:
    """Echoes are skipped; an event for an unknown account fails the row while the good event stays stored."""
    account = uuid.uuid4().hex[:12]
    _meta_station(db_session, "instagram", account)
    user = uuid.uuid4().hex[:12]
    echo = {"sender": {"id": account}, "recipient": {"id": user}, "timestamp": 1,
            "message": {"mid": "echo" + user, "text": "ours", "is_echo": True}}
    body = json.loads(meta_message_body(page_id=account, sender_id=user, mid="ig" + user, obj="instagram",
                                        extra_events=[echo]))
    body["entry"].append({"id": "unknown-account", "time": 1, "messaging": [
        {"sender": {"id": user}, "recipient": {"id": "unknown-account"}, "timestamp": 2,
         "message": {"mid": "lost" + user, "text": "x"}}]})
    row_id = add_inbox(db_session, "meta", json.dumps(body), content_type="application/json")
    result = run(db_session, row_id)[row_id]
    assert result.outcome == "failed"
    assert "no station has instagram page/account id unknown-account" in str(result.reason)
    assert "1 message(s) stored" in str(result.reason)
    mids = {m.provider_message_id for m in db_session.execute(
        select(Message).where(Message.channel == "instagram", Message.inbox_id == row_id)).scalars()}
    assert mids == {"ig" + user}


def test_meta_unsupported_object_fails(db_session: Session) -> None:
    """A notification for another product (e.g. WhatsApp) fails the row with the object named."""
    row_id = add_inbox(db_session, "meta", '{"object": "whatsapp_business_account", "entry": []}')
    assert run(db_session, row_id)[row_id].outcome == "failed"
    assert "unsupported object 'whatsapp_business_account'" in str(inbox(db_session, row_id).last_error)


def _outbound(session: Session, *, sid: str | None, to: str | None = None) -> OutboundMessage:
    station = make_station(session)
    result = enqueue(session, station_id=station.id, to=to or phone(), body="Your booking is confirmed",
                     purpose="transactional", idempotency_key=uuid.uuid4().hex)
    message = result.message
    if sid is not None:
        message.provider_sid = sid
        message.status = "sent"
    session.flush()
    return message


def add_status(session: Session, sid: str, status: str, error_code: int | None = None) -> uuid.UUID:
    return add_inbox(session, "twilio_status", urlencode(status_pairs(sid=sid, status=status, error_code=error_code)),
                     event_id=f"{sid}:{status}")


def test_status_callbacks_out_of_order_end_delivered(db_session: Session) -> None:
    """delivered arriving before queued and sent leaves the row delivered; every callback is kept as an event."""
    sid = new_sid()
    outbound = _outbound(db_session, sid=sid)
    ids = [add_status(db_session, sid, s) for s in ("delivered", "sent", "queued")]
    for row_id in ids:  # one at a time, in arrival order
        assert run(db_session, row_id)[row_id].outcome == "processed"
    db_session.refresh(outbound)
    assert (outbound.delivery_status, outbound.status) == ("delivered", "delivered")
    events = db_session.execute(select(DeliveryEvent).where(DeliveryEvent.provider_sid == sid)).scalars().all()
    assert sorted(e.status for e in events) == ["delivered", "queued", "sent"]
    assert {e.outbound_id for e in events} == {outbound.id}
    assert all("From" not in (e.raw or {}) and "To" not in (e.raw or {}) for e in events)


def test_duplicate_callback_is_one_event(db_session: Session) -> None:
    """The same (MessageSid, MessageStatus) twice is one delivery event."""
    sid = new_sid()
    _outbound(db_session, sid=sid)
    first = add_status(db_session, sid, "sent")
    # A second copy with another inbox identity (e.g. posted to a second receiver URL).
    second = add_inbox(db_session, "twilio_status", urlencode(status_pairs(sid=sid, status="sent")),
                       event_id=f"{sid}:sent:copy")
    results = run(db_session, first, second)
    assert {r.outcome for r in results.values()} == {"processed"}
    assert count(db_session, DeliveryEvent, DeliveryEvent.provider_sid == sid) == 1


def test_undelivered_with_30006_marks_the_number(db_session: Session) -> None:
    """ErrorCode 30006 on an undelivered callback sets the row's error code and records the number undeliverable."""
    sid = new_sid()
    outbound = _outbound(db_session, sid=sid)
    row_id = add_status(db_session, sid, "undelivered", 30006)
    run(db_session, row_id)
    db_session.refresh(outbound)
    assert (outbound.delivery_status, outbound.status, outbound.error_code) == ("undelivered", "undelivered", 30006)
    marked = db_session.get(UndeliverableNumber, outbound.to_index)
    assert marked is not None
    assert marked.error_code == 30006
    assert marked.outbound_id == outbound.id


def test_undelivered_with_30003_does_not_mark_the_number(db_session: Session) -> None:
    """30003 (handset off) is temporary: the row records it, the number is not marked."""
    sid = new_sid()
    outbound = _outbound(db_session, sid=sid)
    run(db_session, add_status(db_session, sid, "undelivered", 30003))
    db_session.refresh(outbound)
    assert outbound.error_code == 30003
    assert db_session.get(UndeliverableNumber, outbound.to_index) is None


def test_callback_before_sid_is_stored_then_applied_by_the_send_path(db_session: Session) -> None:
    """A callback that beats the send path's commit is kept with no outbound row, then applied when the sid is set."""
    sid = new_sid()
    outbound = _outbound(db_session, sid=None)
    row_id = add_status(db_session, sid, "delivered")
    result = run(db_session, row_id)[row_id]
    assert result.outcome == "processed"
    assert "kept for the send path" in str(result.reason)
    [event] = db_session.execute(select(DeliveryEvent).where(DeliveryEvent.provider_sid == sid)).scalars().all()
    assert event.outbound_id is None
    outbound.provider_sid = sid
    outbound.status = "sent"
    assert apply_pending_events(db_session, outbound) == 1
    db_session.refresh(event)
    assert event.outbound_id == outbound.id
    assert (outbound.delivery_status, outbound.status) == ("delivered", "delivered")
    assert apply_pending_events(db_session, outbound) == 0


def test_callback_for_unknown_outbound_status_leaves_blocked_rows_alone(db_session: Session) -> None:
    """A row the send path has not handed off (e.g. blocked) does not change its coarse status on a callback."""
    sid = new_sid()
    outbound = _outbound(db_session, sid=sid)
    outbound.status = "blocked"
    db_session.flush()
    run(db_session, add_status(db_session, sid, "delivered"))
    db_session.refresh(outbound)
    assert (outbound.delivery_status, outbound.status) == ("delivered", "blocked")


def _count_calls(monkeypatch: pytest.MonkeyPatch, target: Callable[..., Any]) -> list[tuple[Any, ...]]:
    """Record each call of ``target`` made through any project module's name for it; the real function still runs."""
    calls: list[tuple[Any, ...]] = []

    @functools.wraps(target)
    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return target(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in ("worker", "compliance", "tasks"):
            for attr, value in list(vars(module).items()):
                if value is target:
                    monkeypatch.setattr(module, attr, counting)
    return calls


def _count_phone_calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """Record the phone values a KeyRing method (blind_index, encrypt) is called with; the real method still runs."""
    calls: list[str] = []
    real = getattr(pii.KeyRing, method)

    def counting(ring: pii.KeyRing, value: str, *, kind: str) -> Any:
        if kind == "phone":
            calls.append(value)
        return real(ring, value, kind=kind)

    monkeypatch.setattr(pii.KeyRing, method, counting)
    return calls


@pytest.mark.parametrize(("sender", "parses"), [
    (f"+1415{uuid.uuid4().int % 8_000_000 + 2_000_000:07d}", 0),  # Twilio's E.164 for a US number: the shortcut
    (f"+447911{uuid.uuid4().int % 1_000_000:06d}", 1),  # a UK mobile: one libphonenumber parse
])
def test_an_inbound_stop_is_parsed_indexed_encrypted_and_classified_once(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, sender: str, parses: int
) -> None:
    """A STOP through ingest, consent, ledger and outbox parses, indexes, encrypts and classifies once."""
    from compliance.consent_intake import decide
    from compliance.keywords import classify
    from compliance.phones import normalize

    to = station_number()
    make_station(db_session, sms_number=to)
    row_id = add_sms(db_session, from_=sender, to=to, body="STOP")
    normalized = _count_calls(monkeypatch, normalize)
    classified = _count_calls(monkeypatch, classify)
    decided = _count_calls(monkeypatch, decide)
    indexed = _count_phone_calls(monkeypatch, "blind_index")
    encrypted = _count_phone_calls(monkeypatch, "encrypt")

    assert run(db_session, row_id)[row_id].outcome == "processed"

    index = pii.blind_index(sender, kind="phone")
    [event] = db_session.execute(select(ConsentEvent).where(ConsentEvent.phone_index == index)).scalars().all()
    assert event.kind == "opt_out"
    replies = select(OutboundMessage).where(OutboundMessage.in_reply_to_event_id == event.id)
    [confirmation] = db_session.execute(replies.where(OutboundMessage.to_index == index)).scalars().all()
    assert pii.decrypt(confirmation.to_encrypted, kind="phone") == sender
    assert indexed.pop() == sender  # this test's own blind index, above
    assert set(indexed) | set(encrypted) == {sender}
    counts = {"parsed": len(normalized), "indexed": len(indexed), "encrypted": len(encrypted),
              "classified": len(classified), "decided": len(decided)}
    assert counts == {"parsed": parses, "indexed": 1, "encrypted": 1, "classified": 1, "decided": 1}
