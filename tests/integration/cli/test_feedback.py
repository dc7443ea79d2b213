"""`msgworker feedback escalations` in-process against the real database: what staff see, and only that."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from typer.testing import CliRunner

from compliance.phones import mask
from tests.factories import make_booking, make_customer, make_station
from tests.support.campaigns import ACTOR, grant_marketing, pool_with_codes, run_tick
from tests.support.cli import run
from worker import pii
from worker.campaigns import definitions, lifecycle
from worker.campaigns.replies import InboundReply, handle_replies
from worker.campaigns.schedules import ScheduleInput
from worker.db import session_scope
from worker.models import Station


def _reviewed(station: Station, number: str, body: str, now: datetime) -> None:
    """A completed booking, its review request queued and sent, then ``body`` as the customer's reply."""
    with session_scope() as s:
        customer = make_customer(s, station, phone_e164=number)
        grant_marketing(s, number)
        booking = make_booking(s, customer, days_from_now=0)
        s.execute(text("UPDATE core.bookings SET status = 'completed', updated_at = now() WHERE id = :id"),
                  {"id": booking.id})
        run_tick(s, now)
        s.execute(text("UPDATE marketing.campaign_recipients SET due_at = now() WHERE customer_id = :c AND step = 1"),
                  {"c": customer.id})
        run_tick(s, now + timedelta(seconds=1))
        # What the send path records once Twilio accepted the request.
        s.execute(text(
            "UPDATE core.outbound_messages o SET status = 'sent', sent_at = :at, decided_at = :at "
            "FROM marketing.campaign_recipients r WHERE r.outbound_id = o.id AND r.customer_id = :c AND r.step = 1"),
            {"at": now, "c": customer.id})
        handle_replies(s, [InboundReply(
            station_id=station.id, phone_index=pii.blind_index(number, kind="phone"), message_id=uuid.uuid4(),
            body=body, received_at=now + timedelta(minutes=1), consent_acted=False)])


def test_escalations_list_could_be_better_reviews_with_reply_and_coupon_and_mask_the_number(cli: CliRunner) -> None:
    """Two escalations (one with a recovery code, one whose station has no pool) and a "good" review that is
    not listed; --station filters, --json carries the same rows, the number is masked in both."""
    now = datetime.now(UTC)
    with session_scope() as s:
        with_pool, without_pool, quiet = make_station(s), make_station(s), make_station(s)
        pool_with_codes(s, 2, station=with_pool, purpose="service_recovery")
        for station in (with_pool, without_pool):
            campaign = definitions.create_campaign(s, definitions.CampaignSpec(
                kind="review_request", name="reviews", station_code=station.code, schedule=ScheduleInput()),
                ACTOR, now=now - timedelta(minutes=1))
            lifecycle.start(s, campaign.id, ACTOR, now=now - timedelta(minutes=1))
        s.expunge_all()
    _reviewed(with_pool, "+13105550142", "4 the rice was cold", now)
    _reviewed(with_pool, "+13105550143", "2", now)
    _reviewed(without_pool, "+13105550144", "could be better", now)
    with session_scope() as s:
        issued = s.execute(text("SELECT code FROM feedback.discount_coupons WHERE review_id IS NOT NULL")).scalars()
        [recovery] = list(issued)

    code, out = run(cli, "feedback", "escalations")
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 4  # two escalations, each with its reply line
    assert with_pool.code in lines[0]
    assert f"coupon {recovery}" in lines[0]
    assert lines[1].strip() == "reply: '4 the rice was cold'"
    assert without_pool.code in lines[2]
    assert "coupon none (no service-recovery pool or it is empty)" in lines[2]
    assert "+13105550142" not in out
    assert "+13105550144" not in out
    assert "0143" not in out  # the "good" review is not an escalation

    code, out = run(cli, "feedback", "escalations", "--station", quiet.code)
    assert code == 0, out
    assert out.strip() == "no escalated reviews"

    code, out = run(cli, "feedback", "escalations", "--station", without_pool.code, "--json")
    assert code == 0, out
    [row] = json.loads(out)
    assert row["station"] == without_pool.code
    assert row["rating"] == "could_be_better"
    assert row["reply"] == "could be better"
    assert row["coupon"] is None
    assert row["phone"] == mask("+13105550144")
    assert row["phone"] != "+13105550144"
