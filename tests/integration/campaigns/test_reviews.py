"""Review requests on the real database: enrolment from completed bookings, local times, replies, escalation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_booking, make_customer, make_station
from tests.support.campaigns import ACTOR, grant_marketing, pool_with_codes, run_tick
from worker import pii
from worker.campaigns import bookings, definitions, lifecycle, recipients
from worker.campaigns.errors import CampaignError
from worker.campaigns.replies import InboundReply, handle_replies
from worker.campaigns.schedules import ScheduleInput
from worker.errors import ErrorKind
from worker.models import Booking, Campaign, CustomerReview

LA = ZoneInfo("America/Los_Angeles")
NUMBER = "+13105550142"  # Los Angeles


def review_campaign(session: Session, station_code: str, now: datetime) -> Campaign:
    campaign = definitions.create_campaign(session, definitions.CampaignSpec(
        kind="review_request", name="reviews", station_code=station_code, schedule=ScheduleInput()), ACTOR, now=now)
    lifecycle.start(session, campaign.id, ACTOR, now=now)
    return campaign


def send(session: Session, campaign_id: object, step: int, at: datetime) -> None:
    """What the send path would record once Twilio accepted the step's text."""
    session.execute(text(
        "UPDATE core.outbound_messages o SET status = 'sent', sent_at = :at, decided_at = :at "
        "FROM marketing.campaign_recipients r WHERE r.outbound_id = o.id AND r.campaign_id = :c AND r.step = :s"),
        {"at": at, "c": campaign_id, "s": step})


def outbox_not_before(session: Session, campaign_id: object, step: int) -> datetime | None:
    return session.execute(text(
        "SELECT o.not_before FROM core.outbound_messages o JOIN marketing.campaign_recipients r "
        "ON r.outbound_id = o.id WHERE r.campaign_id = :c AND r.step = :s"), {"c": campaign_id, "s": step}
    ).scalar_one_or_none()


def reply(session: Session, station_id: object, body: str, at: datetime, *, consent_acted: bool = False) -> int:
    return handle_replies(session, [InboundReply(
        station_id=station_id, phone_index=pii.blind_index(NUMBER, kind="phone"),  # type: ignore[arg-type]
        message_id=uuid.uuid4(), body=body, received_at=at, consent_acted=consent_acted)])


def test_a_review_request_and_its_reminder_fire_at_the_right_local_times_and_a_reply_cancels_the_reminder(
    db_session: Session,
) -> None:
    """Completed 20:00 LA Fri 6 Mar: request 11:00 LA Sat; reminder due 11:00 LA Tue (after DST); "2" cancels it."""
    with freeze_time("2026-03-06 20:00:00-08:00") as clock:
        now = datetime.now(UTC)
        station = make_station(db_session, timezone="America/Los_Angeles")
        customer = make_customer(db_session, station, phone_e164=NUMBER)
        booking = make_booking(db_session, customer, days_from_now=0)
        campaign = review_campaign(db_session, station.code, now - timedelta(minutes=5))
        bookings.set_status(db_session, booking.id, "completed", ACTOR)
        db_session.execute(text("UPDATE core.bookings SET updated_at = :t WHERE id = :id"),
                           {"t": now, "id": booking.id})
        assert run_tick(db_session, now)["enrolled"] == 1
        rows = dict(db_session.execute(text(
            "SELECT step, due_at FROM marketing.campaign_recipients WHERE campaign_id = :c"), {"c": campaign.id}).all())
        assert rows[1].astimezone(LA).replace(tzinfo=None) == datetime(2026, 3, 7, 11, 0)
        assert rows[2].astimezone(LA).replace(tzinfo=None) == datetime(2026, 3, 10, 11, 0)
        clock.move_to("2026-03-07 11:00:30-08:00")
        run_tick(db_session, datetime.now(UTC))
        assert outbox_not_before(db_session, campaign.id, 2) is None
        request_at = outbox_not_before(db_session, campaign.id, 1)
        assert request_at is not None
        send(db_session, campaign.id, 1, datetime.now(UTC))
        clock.move_to("2026-03-08 09:00:00-07:00")
        assert reply(db_session, station.id, "2 thanks!", datetime.now(UTC)) == 1
        clock.move_to("2026-03-10 11:00:30-07:00")
        run_tick(db_session, datetime.now(UTC))
    counts = recipients.status_counts(db_session, campaign.id)
    assert ("cancelled", "replied") in {(st, r) for s, st, r, _h, _n in counts.rows if s == 2}
    review = db_session.execute(text("SELECT rating, status FROM feedback.customer_reviews WHERE booking_id = :b"),
                                {"b": booking.id}).one()
    assert (review.rating, review.status) == ("good", "submitted")


def test_without_a_reply_the_reminder_goes_three_days_later_at_the_same_local_time(db_session: Session) -> None:
    """No reply: the reminder is queued at 11:00 LA three days after the request."""
    with freeze_time("2026-06-05 19:00:00-07:00") as clock:
        station = make_station(db_session, timezone="America/Los_Angeles")
        booking = make_booking(db_session, make_customer(db_session, station, phone_e164=NUMBER), days_from_now=0)
        campaign = review_campaign(db_session, station.code, datetime.now(UTC) - timedelta(minutes=1))
        bookings.set_status(db_session, booking.id, "completed", ACTOR)
        db_session.execute(text("UPDATE core.bookings SET updated_at = :t WHERE id = :id"),
                           {"t": datetime.now(UTC), "id": booking.id})
        run_tick(db_session, datetime.now(UTC))
        clock.move_to("2026-06-06 11:01:00-07:00")
        run_tick(db_session, datetime.now(UTC))
        send(db_session, campaign.id, 1, datetime.now(UTC))
        clock.move_to("2026-06-09 11:00:10-07:00")
        run_tick(db_session, datetime.now(UTC))
    assert recipients.status_counts(db_session, campaign.id).by_state() == {"sent": 1, "queued": 1}


def test_four_escalates_and_issues_a_service_recovery_coupon_stop_is_never_a_rating(db_session: Session) -> None:
    """A "4" escalates the review and texts a recovery code from the station's pool; a STOP reply sets no rating."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    customer = make_customer(db_session, station, phone_e164=NUMBER)
    grant_marketing(db_session, NUMBER)
    booking = make_booking(db_session, customer, days_from_now=0)
    pool_with_codes(db_session, 3, station=station, purpose="service_recovery")
    campaign = review_campaign(db_session, station.code, now - timedelta(minutes=1))
    db_session.execute(text("UPDATE core.bookings SET status = 'completed', updated_at = now() WHERE id = :id"),
                       {"id": booking.id})
    run_tick(db_session, now)
    db_session.execute(text("UPDATE marketing.campaign_recipients SET due_at = now() WHERE campaign_id = :c "
                            "AND step = 1"), {"c": campaign.id})
    run_tick(db_session, now + timedelta(seconds=1))
    send(db_session, campaign.id, 1, now)
    assert reply(db_session, station.id, "STOP", now + timedelta(minutes=1), consent_acted=True) == 1
    review = db_session.execute(text("SELECT rating, status FROM feedback.customer_reviews")).one()
    assert (review.rating, review.status) == (None, "pending")
    reply(db_session, station.id, "4", now + timedelta(minutes=2))
    review_row = db_session.execute(text("SELECT id, rating, status, reply_encrypted FROM feedback.customer_reviews")
                                    ).one()
    assert (review_row.rating, review_row.status) == ("could_be_better", "escalated")
    assert pii.decrypt(review_row.reply_encrypted, kind="review_reply") == "4"
    code = db_session.execute(text("SELECT code FROM feedback.discount_coupons WHERE review_id = :r"),
                              {"r": review_row.id}).scalar_one()
    body = db_session.execute(text("SELECT body FROM core.outbound_messages WHERE idempotency_key = :k"),
                              {"k": f"review:{review_row.id}:recovery"}).scalar_one()
    assert code in body
    assert "{review_link}" not in body
    reply(db_session, station.id, "1", now + timedelta(minutes=3))  # a reply to a closed request changes nothing
    assert db_session.execute(text("SELECT rating FROM feedback.customer_reviews")).scalar_one() == "could_be_better"


def test_a_booking_completed_twice_is_refused_and_enrolled_once(db_session: Session) -> None:
    """`booking complete` twice is refused naming when; the tick enrols the booking once however often it runs."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    booking = make_booking(db_session, make_customer(db_session, station), days_from_now=0)
    review_campaign(db_session, station.code, now - timedelta(minutes=1))
    bookings.set_status(db_session, booking.id, "completed", ACTOR)
    with pytest.raises(CampaignError, match=r"already completed \(since") as refused:
        bookings.set_status(db_session, booking.id, "completed", ACTOR)
    assert refused.value.kind is ErrorKind.CONFLICT
    assert run_tick(db_session, now + timedelta(seconds=1))["enrolled"] == 1
    assert run_tick(db_session, now + timedelta(seconds=2))["enrolled"] == 0
    assert db_session.query(CustomerReview).count() == 1


def test_a_cancelled_booking_cancels_its_pending_request_and_the_cooldown_skips_a_second_one(
    db_session: Session,
) -> None:
    """Cancelling the booking cancels its request; a second booking within 180 days is enrolled as skipped: cooldown."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    customer = make_customer(db_session, station)
    first, second = (make_booking(db_session, customer, days_from_now=0) for _ in range(2))
    campaign = review_campaign(db_session, station.code, now - timedelta(minutes=1))
    db_session.execute(text("UPDATE core.bookings SET status = 'completed', updated_at = now() WHERE id = :id"),
                       {"id": first.id})
    run_tick(db_session, now)
    db_session.execute(text("UPDATE core.bookings SET status = 'cancelled' WHERE id = :id"), {"id": first.id})
    db_session.execute(text("UPDATE core.bookings SET status = 'completed', updated_at = now() WHERE id = :id"),
                       {"id": second.id})
    run_tick(db_session, now + timedelta(seconds=5))
    reasons = recipients.status_counts(db_session, campaign.id).by_reason()
    assert reasons == {"cancelled:booking_cancelled": 2, "skipped:cooldown": 2}
    assert db_session.get(Booking, first.id) is not None
