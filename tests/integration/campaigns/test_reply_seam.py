"""Replies through the real ingest drain: the consent engine first, then the review-request reply handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import text

from tests.factories import make_booking, make_customer, make_station
from tests.support.campaigns import ACTOR, grant_marketing, pool_with_codes, run_tick
from tests.support.webhooks import new_sid, sms_pairs
from worker import pii
from worker.campaigns import definitions, lifecycle
from worker.campaigns.schedules import ScheduleInput
from worker.db import SessionScope
from worker.ingest.drain import drain
from worker.models import WebhookInbox

NUMBERS = ["+13105550101", "+13105550102", "+13105550103"]


def store_sms(scope: SessionScope, *, from_: str, to: str, body: str) -> None:
    """The inbox row the receiver would store."""
    sid = new_sid()
    with scope() as session:
        session.add(WebhookInbox(provider="twilio_sms", provider_event_id=sid,
                                 content_type="application/x-www-form-urlencoded",
                                 payload_encrypted=pii.encrypt(urlencode(sms_pairs(sid=sid, from_=from_, to=to,
                                                                                   body=body)), kind="inbox")))


def test_ingest_runs_consent_then_the_reply_handler_so_stop_beats_a_rating(db_scope: SessionScope) -> None:
    """Through the drain: "4" escalates (recovery code), "2 thanks!" rates, "stop texting me, 4" opts out, unrated."""
    now = datetime.now(UTC)
    with db_scope() as s:
        station = make_station(s)
        to = s.execute(text("SELECT address FROM identity.station_senders WHERE station_id = :s"),
                       {"s": station.id}).scalar_one()
        for number in NUMBERS:
            grant_marketing(s, number)
            make_booking(s, make_customer(s, station, phone_e164=number), days_from_now=0)
        pool_with_codes(s, 2, station=station, purpose="service_recovery")
        campaign = definitions.create_campaign(s, definitions.CampaignSpec(
            kind="review_request", name="reviews", station_code=station.code,
            schedule=ScheduleInput(after=timedelta(seconds=1))), ACTOR, now=now - timedelta(minutes=1))
        lifecycle.start(s, campaign.id, ACTOR, now=now - timedelta(minutes=1))
        s.execute(text("UPDATE core.bookings SET status = 'completed', updated_at = now() WHERE station_id = :s"),
                  {"s": station.id})
        run_tick(s, now)
        run_tick(s, now + timedelta(seconds=5))
        s.execute(text("UPDATE core.outbound_messages SET status = 'sent', sent_at = now() - interval '1 minute' "
                       "WHERE campaign_id = :c"), {"c": campaign.id})
    for number, body in zip(NUMBERS, ["4", "2 thanks!", "stop texting me, 4"], strict=True):
        store_sms(db_scope, from_=number, to=to, body=body)
    drain(batch_size=10, max_seconds=10, scope=db_scope)
    with db_scope() as s:
        reviews = {pii.decrypt(r.reply_encrypted, kind="review_reply"): (r.rating, r.status) for r in s.execute(text(
            "SELECT reply_encrypted, rating, status FROM feedback.customer_reviews WHERE reply_encrypted IS NOT NULL"))}
        reminders = s.execute(text("SELECT count(*) FROM marketing.campaign_recipients WHERE campaign_id = :c "
                                   "AND step = 2 AND status = 'cancelled'"), {"c": campaign.id}).scalar_one()
        recovery = s.execute(text("SELECT count(*) FROM core.outbound_messages WHERE idempotency_key LIKE 'review:%'")
                             ).scalar_one()
        opted_out = s.execute(text("SELECT opted_out FROM compliance.consent_state WHERE phone_index = :i"),
                              {"i": pii.blind_index(NUMBERS[2], kind="phone")}).scalar_one()
    assert reviews == {"4": ("could_be_better", "escalated"), "2 thanks!": ("good", "submitted"),
                       "stop texting me, 4": (None, "pending")}
    assert reminders == 3
    assert recovery == 1
    assert opted_out is True
