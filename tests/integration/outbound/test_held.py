"""Texts held for review (worker.outbound.held): a toll-free marketing text is held, listed, then
released with the recipient's state (and decided in that state's quiet hours) or cancelled."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from tests.integration.outbound.test_send import (
    add_consent,
    customer_with_booking,
    put,
    row,
    settings_with,
    setup_station,
)
from worker.audit import Actor
from worker.db import session_scope
from worker.models import AuditLog, Campaign, Station
from worker.outbound import held
from worker.outbound.release import release_due
from worker.outbound.send import send_one
from worker.provider.fake import FakeTwilio

NY = ZoneInfo("America/New_York")
_seq = itertools.count(1)


@pytest.fixture
def fake(clean_db: str, clean_redis: Any, fake_twilio: FakeTwilio) -> FakeTwilio:
    return fake_twilio


def toll_free() -> str:
    """A valid US toll-free number: phonenumbers places it nowhere, so the gate cannot either."""
    return f"+1888{2000000 + next(_seq):07d}"


def at_ny(hour: int) -> datetime:
    """Today at ``hour``:00 in New York (Connecticut's zone)."""
    return datetime.now(NY).replace(hour=hour, minute=0, second=0, microsecond=0)


def held_marketing(station_id: uuid.UUID, to: str, **kw: Any) -> uuid.UUID:
    """A marketing text with written consent on record, decided once: held as zone_unknown."""
    add_consent(None, to)
    mid = put(station_id, to, purpose="marketing", **kw)
    result = send_one(mid, now=at_ny(12), settings=settings_with())
    assert (result.status, result.reason) == ("blocked", "zone_unknown")
    return mid


def held_ids(station_code: str | None = None) -> list[uuid.UUID]:
    with session_scope() as s:
        return [h.id for h in held.list_held(s, station_code=station_code)]


def release(mid: uuid.UUID, state: str = "CT", by: str = "alice", note: str | None = None) -> held.ReviewResult:
    with session_scope() as s:
        return held.release(s, mid, state=state, actor=Actor.cli(by), note=note)


def cancel(mid: uuid.UUID, by: str = "bob", note: str | None = None) -> held.ReviewResult:
    with session_scope() as s:
        return held.cancel(s, mid, actor=Actor.cli(by), note=note)


def test_held_toll_free_marketing_is_listed_then_released_and_sent_at_noon(fake: FakeTwilio) -> None:
    """Held, listed (number masked, body length only), released as Connecticut, decided again at
    noon there: sent, and the basis says staff placed the recipient, who and when."""
    station_id, _ = setup_station()
    to = toll_free()
    body = "20% off this weekend: reply STOP to opt out"
    mid = held_marketing(station_id, to, body=body)
    assert fake.sent_to(to) == []

    with session_scope() as s:
        [listed] = held.list_held(s)
    assert (listed.id, listed.purpose, listed.campaign, listed.body_length) == (mid, "marketing", None, len(body))
    assert listed.to.endswith(to[-2:])
    assert to not in listed.to

    with capture_logs() as logs:
        result = release(mid, state="ct", note="customer says Hartford")
    assert (result.status, result.recipient_state) == ("pending", "CT")
    assert all(to not in str(event) and body not in str(event) for event in logs)
    assert held_ids() == []
    msg = row(mid)
    assert (msg.status, msg.recipient_state, msg.location_source) == ("pending", "CT", "staff")
    assert msg.reviewed_by == "alice"
    assert msg.review_note == "customer says Hartford"
    assert msg.reviewed_at is not None
    assert msg.not_before <= msg.reviewed_at
    with session_scope() as s:
        [audit] = s.execute(select(AuditLog).where(AuditLog.resource_id == str(mid))).scalars()
        assert (audit.actor, audit.reason) == ("cli:alice", "customer says Hartford")
        assert audit.new_values == {"status": "pending", "recipient_state": "CT", "location_source": "staff"}

    # Due now: the release tick hands it to a send task.
    with session_scope() as s:
        assert mid in release_due(s, settings=settings_with())
    sent = send_one(mid, now=at_ny(12), settings=settings_with())

    assert sent.status == "sent"
    assert len(fake.sent_to(to)) == 1
    basis = row(mid).gate_basis
    assert basis is not None
    assert (basis["outcome"], basis["states"], basis["zones"]) == ("allowed", ["CT"], ["America/New_York"])
    assert basis["location"] == [f"staff:CT by alice at {msg.reviewed_at.isoformat()}"]
    assert "quiet_hours" in basis["rules"]


def test_released_late_at_night_waits_for_the_states_next_lawful_minute(fake: FakeTwilio) -> None:
    """Released as Connecticut and decided at 23:00 there: deferred to 09:00 the next day (CT's
    window starts an hour after the federal one, docs/compliance.md#state-windows), not sent."""
    station_id, _ = setup_station()
    to = toll_free()
    mid = held_marketing(station_id, to)
    release(mid, state="CT")

    late = at_ny(23)
    result = send_one(mid, now=late, settings=settings_with())

    assert (result.status, result.reason) == ("deferred", "quiet_hours")
    msg = row(mid)
    assert msg.not_before == (late + timedelta(days=1)).replace(hour=9)
    assert msg.gate_basis is not None
    assert msg.gate_basis["location"][0].startswith("staff:CT by alice at ")
    with session_scope() as s:
        assert mid not in release_due(s, settings=settings_with())
    assert fake.sent_to(to) == []


def test_cancel_takes_a_held_text_out_for_good(fake: FakeTwilio) -> None:
    """Cancelled: status cancelled with its reason and reviewer, no longer listed, never sent."""
    station_id, _ = setup_station()
    to = toll_free()
    mid = held_marketing(station_id, to)

    result = cancel(mid, note="not our customer")

    assert (result.status, result.recipient_state) == ("cancelled", None)
    msg = row(mid)
    assert (msg.status, msg.gate_reason, msg.reviewed_by, msg.review_note) == (
        "cancelled", "review_cancelled", "bob", "not our customer"
    )
    assert msg.recipient_state is None
    assert msg.location_source is None
    assert held_ids() == []
    assert send_one(mid, now=at_ny(12), settings=settings_with()).status == "skipped"
    assert fake.sent_to(to) == []


def test_a_held_text_is_reviewed_once(fake: FakeTwilio) -> None:
    """A second release, or a cancel after a release, is refused and names the first review."""
    station_id, _ = setup_station()
    mid = held_marketing(station_id, toll_free())
    release(mid, state="CT", by="alice")

    for second in (lambda: release(mid, state="TX", by="carol"), lambda: cancel(mid, by="carol")):
        with pytest.raises(held.HeldError, match=r"already reviewed: released \(recipient in CT\) by alice"):
            second()
    msg = row(mid)
    assert (msg.status, msg.recipient_state, msg.reviewed_by) == ("pending", "CT", "alice")

    other = held_marketing(station_id, toll_free())
    cancel(other)
    with pytest.raises(held.HeldError, match="already reviewed: cancelled by bob"):
        release(other, state="CT")


def test_only_held_rows_can_be_released(fake: FakeTwilio) -> None:
    """A row never decided, a row blocked for another reason and an unknown id are clear errors;
    a bad state code leaves the held row untouched."""
    station_id, _ = setup_station()
    pending = put(station_id, toll_free(), purpose="marketing")
    no_consent = put(station_id, toll_free(), purpose="marketing")
    assert send_one(no_consent, now=at_ny(12), settings=settings_with()).reason == "no_marketing_consent"

    with pytest.raises(held.HeldError, match="is not held for review \\(status pending"):
        release(pending)
    with pytest.raises(held.HeldError, match="status blocked, reason no_marketing_consent"):
        cancel(no_consent)
    with pytest.raises(held.HeldError, match="no outbox message with id"):
        release(uuid.uuid4())

    mid = held_marketing(station_id, toll_free())
    for bad in ("ZZ", "Texas", ""):
        with pytest.raises(held.HeldError, match="is not a US state code"):
            release(mid, state=bad)
    with pytest.raises(held.HeldError, match="--by must name"):
        release(mid, by="  ")
    assert held_ids() == [mid]
    assert (row(pending).status, row(no_consent).gate_reason) == ("pending", "no_marketing_consent")


def test_held_list_by_station_with_campaign_names(fake: FakeTwilio) -> None:
    """--station narrows the list; campaign texts show their campaign; other stations' rows are not shown."""
    first_id, _ = setup_station()
    second_id, _ = setup_station()
    with session_scope() as s:
        campaign = Campaign(station_id=first_id, name="Summer coupon", kind="broadcast", template="x",
                            audience={"type": "all_customers"}, schedule={"type": "once"})
        s.add(campaign)
        s.flush()
        campaign_id = campaign.id
        first_code = s.execute(select(Station.code).where(Station.id == first_id)).scalar_one()
    in_first = held_marketing(first_id, toll_free(), campaign_id=campaign_id)
    in_second = held_marketing(second_id, toll_free())
    # A geographic number is placed by its area code, so it is never held.
    placed = put(first_id, customer_with_booking(first_id), purpose="marketing")
    send_one(placed, now=at_ny(12), settings=settings_with())

    assert held_ids() == [in_first, in_second]
    with session_scope() as s:
        [listed] = held.list_held(s, station_code=first_code.lower())
    assert (listed.id, listed.station, listed.campaign) == (in_first, first_code, "Summer coupon")
    with pytest.raises(held.HeldError, match="no station with code 'NOPE'"):
        held_ids("NOPE")
