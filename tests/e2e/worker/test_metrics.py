"""Metrics after a scripted day (issue 14 point 5): the real receiver, a celery worker with two prefork children,
beat and the fake Twilio; both /metrics endpoints are scraped and must show exactly what the day did."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.factories import make_booking, make_customer, make_station, phone, station_number
from tests.support import processes
from tests.support.processes import free_port, wait_for
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs
from worker import pii
from worker.db import session_scope
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    body = httpx.get(url, timeout=10).raise_for_status().text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def labels(**kv: str) -> frozenset[tuple[str, str]]:
    return frozenset(kv.items())


def nonzero(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {k: v for k, v in series(samples, name).items() if v}


def scalar(sql: str, **params: object) -> object:
    with session_scope() as s:
        return s.execute(text(sql), params).scalar_one()


def post_sms(base: str, from_: str, to: str, body: str) -> httpx.Response:
    raw, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=from_, to=to, body=body))
    return httpx.post(base + SMS_PATH, content=raw, headers=headers, timeout=10)


def settle(check: Callable[[], object], what: str, log: Path) -> None:
    """Counters are written right after their transaction commits: poll the scrape, never sleep."""
    last: list[object] = []

    def ok() -> bool:
        try:
            check()
        except AssertionError as exc:
            last[:] = [exc]
            return False
        return True

    try:
        wait_for(ok, timeout=20, interval=0.2, what=what, log=log)
    except TimeoutError:
        check()  # raise the assertion itself, with its diff
        raise


def test_a_scripted_day_is_counted_exactly(
    clean_db: str, clean_redis: redis.Redis, proc_dir: Path, fake_twilio: FakeTwilio
) -> None:
    """Question, STOP and its confirmation, a marketing text blocked, START and its confirmation, two
    transactional texts (one refused by Twilio with 21211), a forged and an oversized webhook: the receiver
    and the worker (two pool children, one multiprocess directory) report exactly those counts, and the
    worker's database gauges the rows left waiting."""
    worker_port = free_port()
    worker = processes.start_worker(
        proc_dir, env={"WORKER_METRICS_PORT": str(worker_port), "OUTBOUND_RATE_LIMIT_ENABLED": "false"}
    )
    beat = processes.start_beat(proc_dir)
    receiver, base = processes.start_receiver(proc_dir)
    log = worker.log_path
    try:
        to = station_number()
        pat, sam = phone(), phone()
        with session_scope() as s:
            station = make_station(s, sms_number=to)
            make_booking(s, make_customer(s, station, phone_e164=sam))
        station_id = station.id
        fake_twilio.fail_number(sam, error_code=21211)

        def processed() -> int:
            return int(scalar("SELECT count(*) FROM core.webhook_inbox WHERE status = 'processed'"))  # type: ignore[call-overload]

        def status_of(message_id: uuid.UUID) -> str:
            return str(scalar("SELECT status FROM core.outbound_messages WHERE id = :id", id=message_id))

        assert post_sms(base, pat, to, "Hi! What time does the chef arrive on Saturday?").status_code == 200
        wait_for(lambda: processed() == 1, timeout=30, what="the question ingested", log=log)
        assert post_sms(base, pat, to, "STOP").status_code == 200
        wait_for(lambda: len(fake_twilio.sent_to(pat)) == 1, timeout=30, what="the opt-out confirmation", log=log)
        with session_scope() as s:
            promo = enqueue(s, station_id=station_id, to=pat, body="20% off this weekend", purpose="marketing",
                            idempotency_key=f"metrics-promo-{uuid.uuid4().hex}").message.id
        wait_for(lambda: status_of(promo) == "blocked", timeout=30, what="marketing blocked", log=log)
        assert post_sms(base, pat, to, "START").status_code == 200
        wait_for(lambda: len(fake_twilio.sent_to(pat)) == 2, timeout=30, what="the opt-in confirmation", log=log)
        with session_scope() as s:
            enqueue(s, station_id=station_id, to=pat, body="Your chef arrives at 6pm", purpose="transactional",
                    idempotency_key=f"metrics-tx-{uuid.uuid4().hex}")
            refused = enqueue(s, station_id=station_id, to=sam, body="Your deposit receipt", purpose="transactional",
                              idempotency_key=f"metrics-refused-{uuid.uuid4().hex}").message.id
        wait_for(lambda: len(fake_twilio.sent_to(pat)) == 3, timeout=30, what="the transactional text", log=log)
        wait_for(lambda: status_of(refused) == "failed", timeout=30, what="21211 recorded", log=log)

        forged, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=pat, to=to, body="hi"))
        headers["X-Twilio-Signature"] = "forged"
        assert httpx.post(base + SMS_PATH, content=forged, headers=headers, timeout=10).status_code == 403
        big, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_=pat, to=to, body="x" * 70_000))
        assert httpx.post(base + SMS_PATH, content=big, headers=headers, timeout=10).status_code == 413

        # Left waiting for the gauges: a text due in an hour and an open review item.
        with session_scope() as s:
            enqueue(s, station_id=station_id, to=pat, body="See you tomorrow", purpose="transactional",
                    idempotency_key=f"metrics-later-{uuid.uuid4().hex}",
                    not_before=datetime.now(UTC) + timedelta(hours=1))
            s.execute(
                text("INSERT INTO compliance.review_items (phone_index, phone_encrypted, classification, deadline_at) "
                     "VALUES (:idx, :enc, '{}', now() + interval '10 days')"),
                {"idx": pii.blind_index(pat, kind="phone"), "enc": pii.encrypt(pat, kind="phone")},
            )

        def receiver_counts() -> None:
            got = scrape(f"{base}/metrics")
            assert nonzero(got, "msgworker_webhooks_total") == {
                labels(provider="twilio_sms", outcome="stored"): 3,
                labels(provider="twilio_sms", outcome="403"): 1,
                labels(provider="twilio_sms", outcome="413"): 1,
            }

        def worker_counts() -> None:
            got = scrape(f"http://127.0.0.1:{worker_port}/metrics")
            assert nonzero(got, "msgworker_consent_events_total") == {
                labels(kind="opt_out", source="sms_keyword"): 1,
                labels(kind="opt_in", source="sms_keyword"): 1,
            }
            assert nonzero(got, "msgworker_send_decisions_total") == {
                labels(outcome="allowed", reason="none", purpose="compliance"): 2,
                labels(outcome="blocked", reason="opted_out", purpose="marketing"): 1,
                labels(outcome="allowed", reason="none", purpose="transactional"): 2,
            }
            assert series(got, "msgworker_sends_allowed_while_opted_out_total") == {
                labels(kind="confirmation"): 1,
                labels(kind="repeat_confirmation"): 0,
                labels(kind="other"): 0,
            }
            assert nonzero(got, "msgworker_twilio_errors_total") == {labels(code="21211"): 1}
            assert series(got, "msgworker_reconciled_rows_total") == {labels(result="found"): 0,
                                                                     labels(result="absent"): 0}
            assert got[("msgworker_opt_out_honour_seconds_count", frozenset())] == 1
            assert 0 < got[("msgworker_opt_out_honour_seconds_sum", frozenset())] < 30
            assert got[("msgworker_opt_out_confirmation_seconds_count", frozenset())] == 1
            assert 0 < got[("msgworker_opt_out_confirmation_seconds_sum", frozenset())] < 30
            assert got.get(("msgworker_rate_limit_wait_seconds_count", frozenset()), 0) == 0
            # The database gauges, read at this scrape.
            assert got[("msgworker_database_gauges_up", frozenset())] == 1
            assert got[("msgworker_inbox_pending_rows", frozenset())] == 0
            assert got[("msgworker_inbox_oldest_pending_age_seconds", frozenset())] == 0
            assert series(got, "msgworker_outbox_rows") == {
                labels(status="pending"): 1, labels(status="queued"): 0, labels(status="sending"): 0,
                labels(status="deferred"): 0, labels(status="unknown"): 0,
            }
            assert got[("msgworker_confirmation_oldest_unsent_age_seconds", frozenset())] == 0
            assert series(got, "msgworker_review_items") == {labels(state="due"): 1, labels(state="overdue"): 0}

        settle(receiver_counts, "the receiver's counts", receiver.log_path)
        settle(worker_counts, "the worker's counts", log)
        # The counters are the pool children's: the worker ran tasks in more than its main process.
        assert "metrics_endpoint_listening" in worker.log()
    finally:
        receiver.stop()
        beat.stop()
        worker.stop()
