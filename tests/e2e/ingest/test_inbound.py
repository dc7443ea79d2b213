"""Inbound end to end: the real receiver (uvicorn), real celery worker and beat, real Postgres and Redis.

Each test posts what Twilio or Meta would post, over HTTP, and then looks at the database
the way an operator would.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text

from tests.factories import make_station, phone, station_number
from tests.support import processes
from tests.support.processes import Proc, wait_for
from tests.support.webhooks import (
    META_PATH,
    META_VERIFY_TOKEN,
    SMS_PATH,
    STATUS_PATH,
    meta_message_body,
    new_sid,
    signed_form,
    signed_get,
    signed_meta,
    sms_pairs,
    status_pairs,
)
from worker import pii
from worker.db import session_scope
from worker.models import StationSender
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio
from worker.web.webhooks import EMPTY_TWIML

pytestmark = pytest.mark.e2e


def scalar(sql: str, **params: object) -> int:
    with session_scope() as session:
        return int(session.execute(text(sql), params).scalar_one())


def new_station_number() -> str:
    to = station_number()
    with session_scope() as session:
        make_station(session, sms_number=to)
    return to


def post_sms(
    base: str, *, sid: str, from_: str, to: str, body: str = "hello", host: str | None = None
) -> httpx.Response:
    raw, headers = signed_form(SMS_PATH, sms_pairs(sid=sid, from_=from_, to=to, body=body))
    if host is not None:
        headers["Host"] = host
    return httpx.post(base + SMS_PATH, content=raw, headers=headers, timeout=10)


def processed(sids: list[str]) -> bool:
    return scalar(
        "SELECT count(*) FROM core.webhook_inbox WHERE provider_event_id = ANY(:s) AND status <> 'pending'", s=sids
    ) == len(sids)


def test_signed_sms_becomes_one_customer_thread_and_message(receiver: str, worker_proc: Proc) -> None:
    """A signed webhook, seen by the app under another host than the public one: one customer, thread, message."""
    to = new_station_number()
    sender = phone()
    sid = new_sid()
    resp = post_sms(receiver, sid=sid, from_=sender, to=to, body="Do you cater on Sundays?", host="10.0.0.7:8080")
    assert resp.status_code == 200
    assert resp.content == EMPTY_TWIML
    wait_for(lambda: processed([sid]), timeout=30, what="inbox row processed", log=worker_proc.log_path)
    index = pii.blind_index(sender, kind="phone")
    assert scalar("SELECT count(*) FROM core.customers WHERE phone_index = :p", p=index) == 1
    assert scalar("SELECT count(*) FROM core.message_threads t JOIN core.customers c ON c.id = t.customer_id"
                  " WHERE c.phone_index = :p AND t.status = 'open'", p=index) == 1
    assert scalar("SELECT count(*) FROM core.messages WHERE provider_message_id = :s AND channel = 'sms'"
                  " AND body = 'Do you cater on Sundays?'", s=sid) == 1
    assert scalar("SELECT count(*) FROM core.webhook_inbox WHERE status = 'processed'") == 1
    # Posting it again after processing changes nothing.
    assert post_sms(receiver, sid=sid, from_=sender, to=to, body="Do you cater on Sundays?").status_code == 200
    time.sleep(1.0)
    assert scalar("SELECT count(*) FROM core.messages WHERE provider_message_id = :s", s=sid) == 1


def test_same_webhook_posted_five_times_concurrently_is_one_message(receiver: str, worker_proc: Proc) -> None:
    """Five concurrent copies of one webhook all get 200 and yield one inbox row and one message."""
    to = new_station_number()
    sid = new_sid()
    sender = phone()
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: post_sms(receiver, sid=sid, from_=sender, to=to), range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    wait_for(lambda: processed([sid]), timeout=30, what="inbox row processed", log=worker_proc.log_path)
    time.sleep(0.5)
    assert scalar("SELECT count(*) FROM core.webhook_inbox WHERE provider_event_id = :s", s=sid) == 1
    assert scalar("SELECT count(*) FROM core.messages WHERE provider_message_id = :s", s=sid) == 1


def test_wrong_signature_is_403_and_stores_nothing(receiver: str, worker_proc: Proc) -> None:
    """A forged webhook is refused with 403 and leaves no row anywhere."""
    raw, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=phone(), to=new_station_number()),
                               token="not-our-token")
    resp = httpx.post(receiver + SMS_PATH, content=raw, headers=headers, timeout=10)
    assert resp.status_code == 403
    assert scalar("SELECT count(*) FROM core.webhook_inbox") == 0
    assert scalar("SELECT count(*) FROM core.messages") == 0


def test_meta_handshake_and_signed_message(receiver: str, worker_proc: Proc) -> None:
    """Meta's GET handshake echoes the challenge; a signed POST becomes a facebook message; unsigned is 403."""
    hs = httpx.get(receiver + META_PATH, params={"hub.mode": "subscribe", "hub.verify_token": META_VERIFY_TOKEN,
                                                 "hub.challenge": "1158201444"}, timeout=10)
    assert (hs.status_code, hs.text) == (200, "1158201444")
    page = uuid.uuid4().hex[:15]
    with session_scope() as session:
        station = make_station(session)
        session.add(StationSender(station_id=station.id, channel="facebook", address=page))
    psid = uuid.uuid4().hex[:16]
    raw = meta_message_body(page_id=page, sender_id=psid, mid="m_" + psid, text="Hello from Messenger")
    unsigned = httpx.post(receiver + META_PATH, content=raw, headers={"Content-Type": "application/json"}, timeout=10)
    assert unsigned.status_code == 403
    assert scalar("SELECT count(*) FROM core.webhook_inbox") == 0
    assert httpx.post(receiver + META_PATH, content=raw, headers=signed_meta(raw), timeout=10).status_code == 200
    wait_for(lambda: scalar("SELECT count(*) FROM core.messages WHERE provider_message_id = :m", m="m_" + psid) == 1,
             timeout=30, what="facebook message", log=worker_proc.log_path)
    assert scalar("SELECT count(*) FROM core.message_threads WHERE channel = 'facebook' AND external_thread_id = :p",
                  p=psid) == 1


def test_get_and_rule_signed_webhooks_become_messages_like_a_post(receiver: str, worker_proc: Proc) -> None:
    """A GET webhook (fields in the query) and a POST signed by a Webhooks Rule are ingested like a classic POST;
    an unsigned GET is 403 and leaves nothing."""
    to = new_station_number()
    sender = phone()
    get_sid, rule_sid = new_sid(), new_sid()
    target, headers = signed_get(SMS_PATH, sms_pairs(sid=get_sid, from_=sender, to=to, body="Open on Sunday? 10% off"))
    unsigned = {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}
    assert httpx.get(receiver + target, headers=unsigned, timeout=10).status_code == 403
    assert scalar("SELECT count(*) FROM core.webhook_inbox") == 0
    resp = httpx.get(receiver + target, headers=headers, timeout=10)
    assert (resp.status_code, resp.content) == (200, EMPTY_TWIML)
    raw, rule = signed_form(SMS_PATH, sms_pairs(sid=rule_sid, from_=sender, to=to, body="And Monday?"), rule=True)
    assert httpx.post(receiver + SMS_PATH, content=raw, headers=rule, timeout=10).status_code == 200
    wait_for(lambda: processed([get_sid, rule_sid]), timeout=30, what="inbox rows processed", log=worker_proc.log_path)
    assert scalar("SELECT count(*) FROM core.webhook_inbox WHERE status = 'processed'") == 2
    index = pii.blind_index(sender, kind="phone")
    assert scalar("SELECT count(*) FROM core.messages m JOIN core.message_threads t ON t.id = m.thread_id"
                  " JOIN core.customers c ON c.id = t.customer_id WHERE c.phone_index = :p"
                  " AND ((m.provider_message_id = :g AND m.body = 'Open on Sunday? 10% off')"
                  " OR (m.provider_message_id = :r AND m.body = 'And Monday?'))",
                  p=index, g=get_sid, r=rule_sid) == 2


def test_status_callbacks_out_of_order_end_delivered(receiver: str, worker_proc: Proc) -> None:
    """delivered, then sent, then queued (Twilio does not order callbacks): the message ends delivered."""
    sid = new_sid()
    with session_scope() as session:
        station = make_station(session)
        row = enqueue(session, station_id=station.id, to=phone(), body="Booking confirmed", purpose="transactional",
                      idempotency_key=uuid.uuid4().hex).message
        # As the send path leaves a row Twilio accepted (the release tick only takes pending rows).
        row.provider_sid = sid
        row.status = "sent"
        row_id = row.id
    for status in ("delivered", "sent", "queued"):
        raw, headers = signed_form(STATUS_PATH, status_pairs(sid=sid, status=status))
        assert httpx.post(receiver + STATUS_PATH, content=raw, headers=headers, timeout=10).status_code == 200
    wait_for(lambda: scalar("SELECT count(*) FROM core.delivery_events WHERE provider_sid = :s", s=sid) == 3,
             timeout=30, what="three delivery events", log=worker_proc.log_path)
    with session_scope() as session:
        status, delivery = session.execute(
            text("SELECT status, delivery_status FROM core.outbound_messages WHERE id = :i"), {"i": row_id}
        ).one()
    assert (status, delivery) == ("delivered", "delivered")


def test_webhooks_stored_while_worker_is_down_are_all_processed_when_it_starts(
    receiver: str, clean_redis: object, fake_twilio: FakeTwilio, proc_dir: Path
) -> None:
    """With no worker running, webhooks are acknowledged and stored; a worker started later processes every one."""
    to = new_station_number()
    sids = [new_sid() for _ in range(25)]
    for sid in sids:
        assert post_sms(receiver, sid=sid, from_=phone(), to=to).status_code == 200
    assert scalar("SELECT count(*) FROM core.webhook_inbox WHERE status = 'pending'") == 25
    worker = processes.start_worker(proc_dir)
    try:
        wait_for(lambda: processed(sids), timeout=60, what="all rows processed", log=worker.log_path)
    finally:
        worker.stop()
    assert scalar("SELECT count(*) FROM core.messages WHERE provider_message_id = ANY(:s)", s=sids) == 25
    assert scalar("SELECT count(*) FROM core.webhook_inbox WHERE status = 'processed'") == 25


def test_receiver_never_500s_on_garbage(receiver: str) -> None:
    """Garbage to every endpoint gets a 4xx, never a 5xx, from the real receiver."""
    cases = [
        (SMS_PATH, b"\xff\xfe\x00garbage", {"Content-Type": "application/x-www-form-urlencoded",
                                            "X-Twilio-Signature": "x"}),
        (SMS_PATH, b"%%%%=%ZZ&&&=", {"X-Twilio-Signature": "abc"}),
        (STATUS_PATH, b"", {}),
        (META_PATH, b"{", {"X-Hub-Signature-256": "sha256=00"}),
        (SMS_PATH, urlencode({"a": "b"}).encode(), {"Content-Type": "multipart/form-data; boundary=x"}),
    ]
    for path, body, headers in cases:
        resp = httpx.post(receiver + path, content=body, headers=headers, timeout=10)
        assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert scalar("SELECT count(*) FROM core.webhook_inbox") == 0


def test_stop_confirmation_goes_out_at_commit_without_the_release_tick(
    receiver: str, worker_proc: Proc, fake_twilio: FakeTwilio
) -> None:
    """No beat runs, so no release tick: the opt-out confirmation is sent because the batch that
    recorded the STOP published its send task at commit. Exactly one reaches Twilio, and its row
    is decided and sent (issue 14 point 3: it used to wait for the next tick, seconds under load)."""
    to = new_station_number()
    sender = phone()
    assert post_sms(receiver, sid=new_sid(), from_=sender, to=to, body="STOP").status_code == 200
    wait_for(lambda: len(fake_twilio.sent_to(sender)) == 1, timeout=20, what="the confirmation at the fake Twilio",
             log=worker_proc.log_path)
    time.sleep(1.0)
    [created] = fake_twilio.sent_to(sender)
    index = pii.blind_index(sender, kind="phone")
    assert scalar("SELECT count(*) FROM compliance.consent_events WHERE phone_index = :p AND kind = 'opt_out'",
                  p=index) == 1
    with session_scope() as session:
        row = session.execute(text(
            "SELECT status, gate_decision, provider_sid, purpose FROM core.outbound_messages WHERE to_index = :p"
        ), {"p": index}).one()
    assert (row.status, row.gate_decision, row.purpose) == ("sent", "allowed", "compliance")
    assert row.provider_sid == created["sid"]
