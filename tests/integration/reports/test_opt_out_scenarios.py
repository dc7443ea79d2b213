"""The opt-out audit report on real PostgreSQL: seeded scenarios through the real consent and send services.

Data is created by the services themselves (inbound handling, the send path against the fake
Twilio, staff opt-outs, the review deadline). Where a scenario needs a time in the past the
services' own clock is frozen (freezegun), and only where the database's clock decides (a
gate decision's ``decided_at``, a ``sent_at``) is a row updated directly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select, text

from tests.factories import make_booking, make_customer, make_station, phone
from tests.support.consent import make_inbound
from tests.support.reports import events_of, export
from worker import pii
from worker.audit import Actor
from worker.consent import review
from worker.consent.inbound import handle_inbound
from worker.consent.staff import staff_opt_out
from worker.db import session_scope
from worker.models import Customer, OutboundMessage, ReviewItem, Station
from worker.outbound.send import send_batch
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio
from worker.settings import get_settings

TODAY = datetime.now(UTC).date()


@pytest.fixture
def fake(clean_redis: Any, fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


def _settings() -> Any:
    return get_settings().model_copy(update={"OUTBOUND_RATE_LIMIT_ENABLED": False})


def _station(code: str | None = None, timezone: str = "America/New_York") -> tuple[uuid.UUID, str, str]:
    """(station id, its code, its SMS number)."""
    with session_scope() as s:
        st = make_station(s, code=code, timezone=timezone)
        return st.id, st.code, st.senders[0].address


def _inbound(station_id: uuid.UUID, number: str, body: str, **kwargs: Any) -> uuid.UUID:
    """Store an inbound SMS as ingest would and run the consent engine; the message id."""
    with session_scope() as s:
        station = s.get(Station, station_id)
        assert station is not None
        customer = s.execute(select(Customer).where(Customer.station_id == station_id, Customer.phone_index ==
                                                    pii.blind_index(number, kind="phone"))).scalar_one_or_none()
        customer = customer or make_customer(s, station, phone_e164=number)
        msg = make_inbound(s, station, customer, body, **kwargs)
        handle_inbound(s, msg)
        return msg.message_id


def _replies_to(event_id: uuid.UUID) -> list[OutboundMessage]:
    with session_scope() as s:
        return list(s.execute(select(OutboundMessage).where(OutboundMessage.in_reply_to_event_id == event_id))
                    .scalars())


def _send(ids: list[uuid.UUID]) -> None:
    results = send_batch(ids, settings=_settings())
    assert [r.status for r in results] == ["sent"] * len(ids), results


def _no_violations(row: dict[str, str]) -> None:
    assert row["violations"] == "", row


def test_stop_and_its_confirmation(clean_db: str, fake: FakeTwilio, tmp_path: Path) -> None:
    """A STOP: one row with its evidence, effective at its commit, and its one confirmation sent within 5 minutes."""
    station_id, code, sms_number = _station()
    number = phone()
    message_id = _inbound(station_id, number, "STOP")
    (event,) = events_of(number)
    (confirm,) = _replies_to(event.id)
    _send([confirm.id])
    report = export(tmp_path, TODAY, TODAY)
    row = report.row(event.id)
    with session_scope() as s:
        sent = s.get(OutboundMessage, confirm.id)
        stored_at = s.execute(text("SELECT created_at FROM core.messages WHERE id = :i"), {"i": message_id}).scalar()
    assert sent is not None
    assert sent.sent_at is not None
    assert stored_at is not None
    assert (row["seq"], row["event_hash"], row["prev_hash"]) == (str(event.seq), event.hash.hex(), "")
    assert (row["station"], row["channel"], row["sender"], row["body"]) == (code, "sms", sms_number, "STOP")
    assert row["phone"] == "+*********" + number[-2:]
    assert row["phone_index"] == event.phone_index.hex()
    assert row["provider_message_sid"] == event.evidence["provider_message_id"]
    assert row["received_at"] == event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert row["stored_at"] == stored_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert row["effective_at"] == event.recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (row["detection_method"], row["matched_rule"], row["matched_text"]) == ("exact_keyword",
                                                                                   "exact_keyword", "stop")
    assert row["classifier_version"] == event.evidence["classification"]["classifier_version"]
    assert float(row["honour_latency_s"]) == pytest.approx((event.recorded_at - event.occurred_at).total_seconds())
    assert row["business_days_to_effective"] == "0"
    assert (row["confirmation_outbox_id"], row["confirmation_provider_sid"]) == (str(confirm.id), sent.provider_sid)
    assert row["confirmation_sent_at"] == sent.sent_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert 0 <= float(row["confirmation_latency_s"]) < 300
    assert (row["confirmations_sent"], row["no_confirmation_reason"]) == ("1", "")
    assert (row["scope"], row["purpose"], row["sends_after"]) == ("business", "all", "0")
    assert row["prior_consent_event_id"] == ""
    _no_violations(row)
    assert report.summary["violations"]["verdict"].startswith("No violations")
    assert report.summary["figures"]["confirmations_sent"] == 1
    assert report.chain["status"] == "ok"


def test_repeated_stop_sends_nothing_and_says_why(clean_db: str, tmp_path: Path) -> None:
    """A second STOP is its own row, recorded as evidence, with no confirmation because it repeats."""
    station_id, _, _ = _station()
    number = phone()
    _inbound(station_id, number, "STOP")
    _inbound(station_id, number, "stop")
    first, second = events_of(number)
    assert len(_replies_to(first.id)) == 1
    assert _replies_to(second.id) == []
    report = export(tmp_path, TODAY, TODAY)
    row = report.row(second.id)
    assert (row["confirmations_sent"], row["no_confirmation_reason"]) == ("0", "repeated_opt_out")
    assert row["prev_hash"] == first.hash.hex()
    _no_violations(row)


def test_advanced_opt_out_stop_has_no_confirmation_of_ours(clean_db: str, tmp_path: Path) -> None:
    """Twilio's Advanced Opt-Out replied (OptOutType=STOP): no confirmation of ours, and the report says so."""
    station_id, _, _ = _station()
    number = phone()
    _inbound(station_id, number, "STOP", opt_out_type="STOP")
    (event,) = events_of(number)
    assert _replies_to(event.id) == []
    row = export(tmp_path, TODAY, TODAY).row(event.id)
    assert (row["detection_method"], row["matched_rule"]) == ("carrier_opt_out_type", "OptOutType=STOP")
    assert row["no_confirmation_reason"] == "provider_replied"
    _no_violations(row)


def test_carrier_21610_from_the_send_path(clean_db: str, fake: FakeTwilio, tmp_path: Path) -> None:
    """A send refused with 21610 records a carrier opt-out: method error_21610, no confirmation (Twilio refuses)."""
    station_id, code, _ = _station()
    number = phone()
    with session_scope() as s:
        station = s.get(Station, station_id)
        assert station is not None
        make_booking(s, make_customer(s, station, phone_e164=number))
        outbound_id = enqueue(s, station_id=station_id, to=number, body="Your chef arrives at 6pm",
                              purpose="transactional", idempotency_key=f"t-{uuid.uuid4()}").message.id
    fake.fail_number(number, error_code=21610)
    (result,) = send_batch([outbound_id], settings=_settings())
    assert result.error_code == 21610
    (event,) = events_of(number)
    row = export(tmp_path, TODAY, TODAY).row(event.id)
    assert (row["kind"], row["detection_method"], row["station"]) == ("carrier_opt_out", "error_21610", code)
    assert row["provider_message_sid"] == f"outbound:{outbound_id}"
    assert row["no_confirmation_reason"] == "carrier_refused"
    assert row["sends_after"] == "0"  # the refused send was decided before the opt-out existed
    _no_violations(row)


def test_review_becomes_an_opt_out_at_its_deadline(clean_db: str, tmp_path: Path) -> None:
    """An ambiguous text unresolved for 10 business days becomes an opt-out: 10 days, not late, decided by the rule."""
    station_id, _, _ = _station()
    number = phone()
    with freeze_time("2025-11-21 20:00:00"):
        _inbound(station_id, number, "Dont text me at work")
    with session_scope() as s:
        item = s.execute(select(ReviewItem).where(ReviewItem.status == "open")).scalar_one()
        deadline, item_id = item.deadline_at, item.id
    with freeze_time(deadline + timedelta(minutes=4)), session_scope() as s:
        assert review.expire_item(s, item_id) is not None
    opened, opt_out, _resolved = events_of(number)
    (confirm,) = _replies_to(opt_out.id)
    # The database's clock decides sent_at; the confirmation went out 3 s after the (frozen) decision.
    with session_scope() as s:
        s.execute(text("UPDATE core.outbound_messages SET status = 'sent', gate_decision = 'allowed', "
                       "decided_at = :d, sent_at = :t, provider_sid = :sid WHERE id = :i"),
                  {"d": opt_out.recorded_at + timedelta(seconds=1), "t": opt_out.recorded_at + timedelta(seconds=3),
                   "sid": "SM" + uuid.uuid4().hex, "i": confirm.id})
    row = export(tmp_path, date(2025, 11, 1), date(2025, 11, 30)).row(opt_out.id)
    assert row["detection_method"] == "review_deadline"
    assert row["business_days_to_effective"] == "10"
    assert row["body"] == "Dont text me at work"
    assert row["matched_rule"] == opened.evidence["classification"]["rule"]
    assert (row["review_decided_by"], row["review_decided_at"]) == ("system:review_deadline", row["effective_at"])
    assert row["confirmation_latency_s"] == "3.000000"
    _no_violations(row)


def test_staff_opt_out(clean_db: str, tmp_path: Path) -> None:
    """A staff opt-out names the station, the method staff, and no confirmation (the person did not text)."""
    station_id, code, _ = _station()
    number = phone()
    with session_scope() as s:
        station = s.get(Station, station_id)
        staff_opt_out(s, number, actor=Actor.cli("carol"), station=station, note="called the office")
    (event,) = events_of(number)
    row = export(tmp_path, TODAY, TODAY).row(event.id)
    assert (row["detection_method"], row["station"], row["scope"]) == ("staff", code, code)
    assert (row["no_confirmation_reason"], row["channel"], row["body"]) == ("staff_opt_out", "", "")
    _no_violations(row)


def test_a_send_one_second_after_an_opt_out_is_a_violation_and_the_confirmation_is_not(
    clean_db: str, fake: FakeTwilio, tmp_path: Path
) -> None:
    """A text decided 1 s after the opt-out took effect is reported (count and id); its confirmation is not."""
    station_id, _, _ = _station()
    number = phone()
    _inbound(station_id, number, "STOP")
    (event,) = events_of(number)
    (confirm,) = _replies_to(event.id)
    _send([confirm.id])
    with session_scope() as s:
        promo = enqueue(s, station_id=station_id, to=number, body="20% off", purpose="marketing",
                        idempotency_key=f"m-{uuid.uuid4()}", not_before=datetime.now(UTC) + timedelta(days=1))
        promo_id = promo.message.id
    with session_scope() as s:  # a decision the gate would never make: seeded
        s.execute(text("UPDATE core.outbound_messages SET status = 'sent', gate_decision = 'allowed', "
                       "decided_at = :d, sent_at = :d, provider_sid = :sid WHERE id = :i"),
                  {"d": event.recorded_at + timedelta(seconds=1), "sid": "SM" + uuid.uuid4().hex, "i": promo_id})
    report = export(tmp_path, TODAY, TODAY)
    row = report.row(event.id)
    assert (row["sends_after"], row["first_send_after_id"]) == ("1", str(promo_id))
    assert row["violations"] == "sent_after_opt_out"
    assert (row["confirmation_outbox_id"], row["confirmations_sent"]) == (str(confirm.id), "1")
    violations = report.summary["violations"]
    assert violations["counts"] == {"sent_after_opt_out": 1}
    assert [v["event_id"] for v in violations["listed"]] == [str(event.id)]
    assert not violations["verdict"].startswith("No violations")


@pytest.mark.parametrize(
    ("recorded", "days", "late"),
    [("2026-01-20 15:00:00", "1", False), ("2026-02-03 15:00:00", "11", True)],
)
def test_friday_before_a_monday_holiday(clean_db: str, tmp_path: Path, recorded: str, days: str, late: bool) -> None:
    """Received Friday 2026-01-16 (NY), MLK Day Monday: Tuesday is 1 business day; 11 business days is late."""
    _station()
    number = phone()
    with freeze_time(recorded), session_scope() as s:
        staff_opt_out(s, number, actor=Actor.cli("dan"), note="phoned on Friday",
                      occurred_at=datetime(2026, 1, 16, 20, 0, tzinfo=UTC))
    (event,) = events_of(number)
    row = export(tmp_path, date(2026, 1, 16), date(2026, 1, 16)).row(event.id)
    assert row["business_days_to_effective"] == days
    assert row["violations"] == ("honoured_late" if late else "")


def test_december_24(clean_db: str, tmp_path: Path) -> None:
    """Dec 24 in New York: Christmas does not count (Wed 16:00 -> Mon Dec 29 is 2 business days), and a STOP
    at 23:30 New York time is on Dec 25 in UTC, where the per-day figures put it."""
    station_id, _, _ = _station(timezone="America/New_York")
    staff_number, stop_number = phone(), phone()
    with freeze_time("2025-12-29 15:00:00"), session_scope() as s:
        staff_opt_out(s, staff_number, actor=Actor.cli("erin"), occurred_at=datetime(2025, 12, 24, 21, 0, tzinfo=UTC))
    late_evening = datetime(2025, 12, 25, 4, 30, tzinfo=UTC)  # 2025-12-24 23:30 in New York
    with freeze_time(late_evening + timedelta(milliseconds=40)):
        _inbound(station_id, stop_number, "STOP", received_at=late_evening)
    report = export(tmp_path, date(2025, 12, 24), date(2025, 12, 25))
    (staff_event,) = events_of(staff_number)
    (stop_event,) = events_of(stop_number)
    assert report.row(staff_event.id)["business_days_to_effective"] == "2"
    stop_row = report.row(stop_event.id)
    assert (stop_row["business_days_to_effective"], stop_row["honour_latency_s"]) == ("0", "0.040000")
    assert report.summary["figures"]["per_day"] == [["2025-12-24", 1], ["2025-12-25", 1]]
