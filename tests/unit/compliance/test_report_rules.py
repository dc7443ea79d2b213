"""compliance.report_rules: detection, standing, honouring, confirmation and sends-after, from recorded rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from compliance.report_rules import (
    LedgerEvent,
    NoConfirmation,
    Outbound,
    Violation,
    confirmation,
    detection,
    honour,
    origin_of,
    received_station,
    seconds_text,
    sends_after,
    standing,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
STATION = uuid.uuid4()
OTHER = uuid.uuid4()
NY = "America/New_York"


def ev(seq: int, kind: str = "opt_out", *, purpose: str = "all", source: str = "sms_keyword",
       scope: uuid.UUID | None = None, minutes: float = 0, recorded_after: timedelta = timedelta(milliseconds=20),
       **evidence: Any) -> LedgerEvent:
    occurred = T0 + timedelta(minutes=minutes)
    return LedgerEvent(seq=seq, id=uuid.uuid4(), station_id=scope, kind=kind, purpose=purpose, source=source,
                       evidence=evidence, occurred_at=occurred, recorded_at=occurred + recorded_after,
                       idempotency_key=None, prev_hash=None, hash=b"\x00" * 32)


def out(*, decided: datetime | None, purpose: str = "marketing", station_id: uuid.UUID = STATION,
        decision: str | None = "allowed", sent: datetime | None = None, reply_to: uuid.UUID | None = None) -> Outbound:
    return Outbound(id=uuid.uuid4(), station_id=station_id, purpose=purpose, gate_decision=decision,
                    decided_at=decided, sent_at=sent, provider_sid="SM" + uuid.uuid4().hex if sent else None,
                    status="sent" if sent else "pending", in_reply_to_event_id=reply_to)


@pytest.mark.parametrize(
    ("source", "evidence", "method"),
    [
        ("sms_keyword", {"classification": {"rule": "exact_keyword", "language": "en"}}, "exact_keyword"),
        ("sms_phrase", {"classification": {"rule": "phrase", "language": "en"}}, "phrase"),
        ("sms_phrase", {"classification": {"rule": "phrase", "language": "es"}}, "spanish_phrase"),
        ("twilio_opt_out_type", {"opt_out_type": "STOP"}, "carrier_opt_out_type"),
        ("staff", {"by": "alice"}, "staff"),
        ("staff", {"review_item_id": "x", "resolved_by": "alice"}, "review_resolved"),
        ("review_deadline", {"review_item_id": "x"}, "review_deadline"),
        ("import", {"file_name": "a.csv"}, "import"),
    ],
)
def test_detection_method_comes_from_the_recorded_source(source: str, evidence: dict[str, Any], method: str) -> None:
    """Each recorded source (and the classifier's recorded language) maps to one detection method."""
    event = ev(1, source=source, **evidence)
    assert detection(event, event).method == method


def test_carrier_error_names_the_code_and_review_uses_the_opened_message() -> None:
    """A 21610 reads "error_21610"; a review resolution takes the message and verdict of its review_opened event."""
    carrier = ev(1, "carrier_opt_out", source="carrier_error", error_code=21610)
    assert detection(carrier, carrier).method == "error_21610"
    opened = ev(1, "review_opened", source="sms_phrase", received_station_id=str(STATION), raw_body="dont text me",
                classification={"rule": "review_phrase", "matched": "dont text me", "classifier_version": "v9"})
    resolved = ev(2, source="staff", review_item_id="i", opened_event_id=str(opened.id), resolved_by="bob")
    origin = origin_of(resolved, {opened.id: opened})
    assert origin is opened
    found = detection(resolved, origin)
    assert (found.method, found.matched_rule, found.classifier_version) == ("review_resolved", "review_phrase", "v9")
    assert received_station(resolved, origin, {}) == STATION


def test_received_station_order() -> None:
    """The station texted wins, then the event's scope, the 21610's station, an import's station code."""
    assert received_station(ev(1, received_station_id=str(STATION), station_id=str(OTHER)),
                            ev(1, received_station_id=str(STATION)), {}) == STATION
    carrier = ev(1, "carrier_opt_out", source="carrier_error", station_id=str(OTHER))
    assert received_station(carrier, carrier, {}) == OTHER
    imported = ev(1, source="import", station_code="nyc01")
    assert received_station(imported, imported, {"NYC01": STATION}) == STATION
    bad = ev(1, received_station_id="not-a-uuid")
    assert received_station(bad, bad, {}) is None


def test_standing_first_and_repeated_stop() -> None:
    """The first STOP is not repeated; a second STOP with no START between is; the prior consent is named."""
    consent = ev(1, "marketing_consent", purpose="marketing", source="web_form")
    first, second = ev(2, minutes=1), ev(3, minutes=2)
    history = [consent, first, second]
    s1 = standing(history, 1, STATION)
    assert (s1.already_out, s1.prior_consent, s1.lifted_at) == (False, consent, None)
    assert standing(history, 2, STATION).already_out is True


def test_standing_lifted_by_a_later_start_in_its_scope_only() -> None:
    """A business opt-out is lifted by a business START, not by a station-scoped one."""
    stop = ev(1)
    station_start = ev(2, "opt_in", scope=STATION, minutes=5)
    start = ev(3, "opt_in", minutes=10)
    result = standing([stop, station_start, start], 0, STATION)
    assert result.lifted_at == start.recorded_at


def test_station_scoped_stop_after_business_stop_is_repeated_at_that_station() -> None:
    """A station STOP while the business row is opted out confirms nothing new (covered already)."""
    business = ev(1)
    station = ev(2, scope=STATION, minutes=1)
    assert standing([business, station], 1, STATION).already_out is True


def test_marketing_only_stop_after_full_stop_is_repeated_and_full_after_marketing_is_not() -> None:
    """Purpose matters: marketing-only after a full opt-out is repeated; a full one after marketing-only is new."""
    full, marketing = ev(1), ev(2, purpose="marketing", minutes=1)
    assert standing([full, marketing], 1, None).already_out is True
    m, f = ev(1, purpose="marketing"), ev(2, minutes=1)
    assert standing([m, f], 1, None).already_out is False


def test_honour_friday_before_a_monday_holiday() -> None:
    """Received Friday 2026-01-16 (NY), effective Tuesday 01-20: MLK Day and the weekend do not count -> 1."""
    received = datetime(2026, 1, 16, 20, 0, tzinfo=UTC)
    event = LedgerEvent(1, uuid.uuid4(), None, "opt_out", "all", "staff", {}, received,
                        datetime(2026, 1, 20, 15, 0, tzinfo=UTC), None, None, b"")
    latency, days = honour(event, NY)
    assert days == 1
    assert latency == timedelta(days=3, hours=19)


def test_honour_december_24_late_evening_counts_in_the_station_zone() -> None:
    """23:30 on Dec 24 in New York is Dec 25 in UTC; effective Monday Dec 28: Christmas is skipped -> 1 day."""
    received = datetime(2026, 12, 25, 4, 30, tzinfo=UTC)  # 2026-12-24 23:30 New York
    event = LedgerEvent(1, uuid.uuid4(), None, "opt_out", "all", "staff", {}, received,
                        datetime(2026, 12, 28, 14, 0, tzinfo=UTC), None, None, b"")
    assert honour(event, NY)[1] == 1
    assert honour(event, "Asia/Tokyo")[1] == 1  # Dec 25 13:30 Tokyo -> Dec 28 23:00: only Monday counts


def test_confirmation_sent_on_time_late_repeated() -> None:
    """One confirmation inside 5 minutes is clean; later is late; two sent is repeated."""
    stop = ev(1)
    on_time = out(decided=stop.recorded_at, purpose="compliance", reply_to=stop.id,
                  sent=stop.occurred_at + timedelta(seconds=3))
    c = confirmation(stop, stop, "exact_keyword", [on_time], already_out=False, snapshot_at=T0 + timedelta(days=1))
    assert (c.row, c.sent_count, c.latency, c.violations) == (on_time, 1, timedelta(seconds=3), ())
    late = out(decided=stop.recorded_at, purpose="compliance", reply_to=stop.id,
               sent=stop.occurred_at + timedelta(minutes=6))
    assert confirmation(stop, stop, "exact_keyword", [late], already_out=False,
                        snapshot_at=T0 + timedelta(days=1)).violations == (Violation.CONFIRMATION_LATE,)
    both = confirmation(stop, stop, "exact_keyword", [on_time, late], already_out=False, snapshot_at=T0)
    assert (both.violations, both.row, both.sent_count) == ((Violation.CONFIRMATION_REPEATED,), on_time, 2)


@pytest.mark.parametrize(
    ("event", "already_out", "reason"),
    [
        (ev(1, "carrier_opt_out", source="carrier_error", error_code=21610), False, NoConfirmation.CARRIER_REFUSED),
        (ev(1, source="staff", by="alice"), False, NoConfirmation.STAFF),
        (ev(1, source="import"), False, NoConfirmation.IMPORTED),
        (ev(1), True, NoConfirmation.REPEATED),
        (ev(1, source="twilio_opt_out_type", opt_out_type="STOP"), False, NoConfirmation.PROVIDER_REPLIED),
        (ev(1), False, NoConfirmation.MISSING),
    ],
)
def test_reason_for_no_confirmation(event: LedgerEvent, already_out: bool, reason: NoConfirmation) -> None:
    """With nothing sent, the reason comes from the evidence; only a due one is a violation (missing)."""
    method = detection(event, event).method
    c = confirmation(event, event, method, [], already_out=already_out, snapshot_at=T0 + timedelta(hours=1))
    assert c.reason == reason
    assert c.violations == ((Violation.CONFIRMATION_MISSING,) if reason == NoConfirmation.MISSING else ())


def test_confirmation_due_but_inside_five_minutes_is_pending() -> None:
    """A confirmation still inside its five minutes at the snapshot is pending, not missing."""
    stop = ev(1)
    c = confirmation(stop, stop, "exact_keyword", [], already_out=False, snapshot_at=T0 + timedelta(minutes=2))
    assert (c.reason, c.violations) == (NoConfirmation.PENDING, ())


def test_review_confirmation_counts_from_the_decision() -> None:
    """A review decided days after receipt: its confirmation's latency starts at the decision."""
    decided = ev(1, source="review_deadline", recorded_after=timedelta(days=14), review_item_id="i")
    conf = out(decided=decided.recorded_at, purpose="compliance", reply_to=decided.id,
               sent=decided.recorded_at + timedelta(seconds=2))
    c = confirmation(decided, decided, "review_deadline", [conf], already_out=False,
                     snapshot_at=T0 + timedelta(days=20))
    assert (c.latency, c.violations) == (timedelta(seconds=2), ())


def test_sends_after_covers_scope_purpose_window_and_skips_confirmations() -> None:
    """Only allowed texts decided after effective-at, before the lift, in scope and purpose count; not confirmations."""
    stop = ev(1, scope=STATION)
    t = stop.recorded_at
    before = out(decided=t - timedelta(seconds=1))
    after = out(decided=t + timedelta(seconds=1))
    blocked = out(decided=t + timedelta(seconds=2), decision="blocked")
    elsewhere = out(decided=t + timedelta(seconds=3), station_id=OTHER)
    conf = out(decided=t + timedelta(seconds=1), purpose="compliance", reply_to=stop.id)
    after_lift = out(decided=t + timedelta(hours=2))
    found = sends_after(stop, [after_lift, conf, elsewhere, blocked, after, before],
                        lifted_at=t + timedelta(hours=1), opt_out_ids=frozenset({stop.id}))
    assert found == [after]
    marketing_stop = ev(2, purpose="marketing")
    transactional = out(decided=marketing_stop.recorded_at + timedelta(seconds=1), purpose="transactional")
    assert sends_after(marketing_stop, [transactional], lifted_at=None, opt_out_ids=frozenset()) == []


def test_seconds_text_is_exact() -> None:
    """Durations print as exact six-place decimal seconds, negative ones with a sign."""
    assert seconds_text(timedelta(seconds=1, microseconds=5)) == "1.000005"
    assert seconds_text(timedelta(microseconds=-1)) == "-0.000001"
    assert seconds_text(timedelta(days=1)) == "86400.000000"
