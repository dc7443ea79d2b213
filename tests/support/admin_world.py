"""Two stations' worth of committed data and a token per role, for the admin API's tests.

Everything goes through the real services (staff opt-out, review opening, the outbox) and is
committed, because the API opens its own transactions on its own connections; ``clean_db``
truncates it afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from tests import factories
from tests.support.campaigns import grant_marketing, pool_with_codes, run_tick
from worker import pii
from worker.audit import Actor
from worker.campaigns import definitions, lifecycle
from worker.campaigns.replies import InboundReply, handle_replies
from worker.campaigns.schedules import ScheduleInput
from worker.consent import review, staff
from worker.db import session_scope
from worker.identity import tokens
from worker.models import Message, MessageThread, OutboundMessage, Station, UserRole
from worker.outbound.held import HELD_REASON
from worker.outbox import enqueue

OPERATOR = Actor.cli("test-operator")


@dataclass
class Side:
    """One station's objects."""

    station_id: uuid.UUID
    code: str
    phone: str
    customer_id: uuid.UUID
    thread_id: uuid.UUID
    message_ids: list[uuid.UUID]
    review_id: uuid.UUID
    held_id: uuid.UUID
    send_id: uuid.UUID
    campaigns: Campaigns

    def ids(self) -> set[str]:
        """Every id of this side that a response could carry (and its redeemable coupon code)."""
        return {str(v) for v in (self.station_id, self.customer_id, self.thread_id, self.review_id, self.held_id,
                                 self.send_id, *self.message_ids, *self.campaigns.ids())}


@dataclass
class Campaigns:
    """One station's campaign objects, each in the state its operation needs."""

    draft_id: uuid.UUID  # a broadcast not yet started (start, preview, cancel)
    running_id: uuid.UUID  # the review-request campaign (pause)
    paused_id: uuid.UUID  # a broadcast started, then paused (resume)
    reviewer_id: uuid.UUID  # the customer who rated "could be better"
    feedback_id: uuid.UUID  # their escalated review
    coupon_code: str  # the service-recovery code texted to them: issued, redeemable once

    def ids(self) -> set[str]:
        return {str(v) for v in (self.draft_id, self.running_id, self.paused_id, self.reviewer_id, self.feedback_id,
                                 self.coupon_code)}


@dataclass
class World:
    a: Side
    b: Side
    secrets: dict[str, str] = field(default_factory=dict)  # token name -> bearer secret
    token_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}


# Token names: the four roles, and a station manager for each station.
ROLE_TOKENS = {
    "SUPER_ADMIN": (UserRole.SUPER_ADMIN, None),
    "ADMIN": (UserRole.ADMIN, None),
    "CUSTOMER_SUPPORT": (UserRole.CUSTOMER_SUPPORT, None),
    "STATION_MANAGER": (UserRole.STATION_MANAGER, "a"),
    "STATION_MANAGER_B": (UserRole.STATION_MANAGER, "b"),
}


def _side(tag: str) -> Side:
    with session_scope() as s:
        station = factories.make_station(s, code=f"ST{tag.upper()}{uuid.uuid4().hex[:6]}")
        phone = factories.phone()
        customer = factories.make_customer(s, station, phone_e164=phone)
        thread = MessageThread(customer_id=customer.id, channel="sms", station_id=station.id)
        s.add(thread)
        s.flush()
        messages = [
            Message(thread_id=thread.id, station_id=station.id, channel="sms", direction=direction,
                    provider_message_id="SM" + uuid.uuid4().hex, body=text)
            for direction, text in (("inbound", f"hello from {tag}"), ("outbound", f"hi {tag}, see you at 6"))
        ]
        s.add_all(messages)
        s.flush()
        staff.staff_opt_out(s, phone, actor=OPERATOR, station=station, purpose="marketing", note=f"setup {tag}")
        _, item = review.open_review(
            s, phone_e164=phone, station=station, scope_station_id=station.id, message_id=messages[0].id,
            provider_message_id=messages[0].provider_message_id, received_at=datetime.now(UTC),
            classification={"rule": "ambiguous_test", "matched": "cancel"}, evidence={"source": "sms_phrase"},
        )
        assert item is not None
        held = enqueue(s, station=station, to=phone, body=f"20% off at {tag}", purpose="marketing",
                       idempotency_key=f"held:{uuid.uuid4()}").message
        s.execute(update(OutboundMessage).where(OutboundMessage.id == held.id)
                  .values(status="blocked", gate_reason=HELD_REASON))
        sent = enqueue(s, station=station, to=phone, body=f"your chef at {tag}", purpose="transactional",
                       idempotency_key=f"send:{uuid.uuid4()}").message
        campaigns = _campaigns(s, station)
        return Side(station.id, station.code, phone, customer.id, thread.id, [m.id for m in messages], item.id,
                    held.id, sent.id, campaigns)


def _broadcast(session: Session, station: Station, name: str, now: datetime) -> uuid.UUID:
    return definitions.create_campaign(session, definitions.CampaignSpec(
        kind="broadcast", name=name, station_code=station.code, template="{brand}: grill season is here",
        schedule=ScheduleInput(at=now + timedelta(days=1))), OPERATOR, now=now).id


def _campaigns(session: Session, station: Station) -> Campaigns:
    """A draft, a paused broadcast, and a running review-request campaign whose customer replied "4": the review
    is escalated and a service-recovery code issued to them, through the services the tick and ingest use."""
    now = datetime.now(UTC)
    draft = _broadcast(session, station, "draft", now)
    paused = _broadcast(session, station, "paused", now)
    lifecycle.start(session, paused, OPERATOR, now=now)
    lifecycle.pause(session, paused, OPERATOR, now=now)
    number = factories.phone()
    reviewer = factories.make_customer(session, station, phone_e164=number)
    grant_marketing(session, number)
    booking = factories.make_booking(session, reviewer, days_from_now=0)
    pool_with_codes(session, 2, station=station, purpose="service_recovery")
    running = definitions.create_campaign(session, definitions.CampaignSpec(
        kind="review_request", name="reviews", station_code=station.code, schedule=ScheduleInput()), OPERATOR,
        now=now - timedelta(minutes=1))
    lifecycle.start(session, running.id, OPERATOR, now=now - timedelta(minutes=1))
    session.execute(text("UPDATE core.bookings SET status = 'completed', updated_at = now() WHERE id = :id"),
                    {"id": booking.id})
    run_tick(session, now)
    session.execute(text("UPDATE marketing.campaign_recipients SET due_at = now() WHERE campaign_id = :c"),
                    {"c": running.id})
    run_tick(session, now + timedelta(seconds=1))
    session.execute(text(  # what the send path records once Twilio accepted the request
        "UPDATE core.outbound_messages o SET status = 'sent', sent_at = :at, decided_at = :at "
        "FROM marketing.campaign_recipients r WHERE r.outbound_id = o.id AND r.campaign_id = :c"),
        {"at": now, "c": running.id})
    handle_replies(session, [InboundReply(
        station_id=station.id, phone_index=pii.blind_index(number, kind="phone"), message_id=uuid.uuid4(), body="4",
        received_at=now + timedelta(minutes=1), consent_acted=False)])
    feedback_id, code = session.execute(text(
        "SELECT rv.id, d.code FROM feedback.customer_reviews rv "
        "JOIN feedback.discount_coupons d ON d.review_id = rv.id WHERE rv.campaign_id = :c "
        "AND rv.status = 'escalated'"), {"c": running.id}).one()
    return Campaigns(draft, running.id, paused, reviewer.id, feedback_id, code)


def build_world() -> World:
    world = World(a=_side("a"), b=_side("b"))
    with session_scope() as s:
        for name, (role, side) in ROLE_TOKENS.items():
            station_ids = [getattr(world, side).station_id] if side else []
            issued = tokens.create_token(s, name=f"test-{name.lower()}", role=role, station_ids=station_ids,
                                         actor=OPERATOR)
            world.secrets[name] = issued.secret
            world.token_ids[name] = issued.info.id
    return world
