"""``msgworker demo campaigns``: one campaign of each kind, end to end, against a built-in fake Twilio.

Like ``msgworker demo`` (worker/ops/demo.py, whose station, numbers and inbound helpers this
reuses), it runs in-process with the real code: campaigns created and started by the services
the CLI uses, the tick's steps (plan, expand, materialise) run in the order the beat tick runs
them, every text through the real send gate and send path, the reply through the real webhook
inbox and ingest. Two simulated clocks, as in the first demo: the review request is sent "at
noon in New York", the coupon campaign "at 22:30 in New York", so the quiet-hours deferral
shows whatever the real time is.

1. A review request: a booking added and completed, the request enrolled and sent, the
   customer replies "4": the review is escalated and a service-recovery code is texted.
2. A coupon campaign to 20 customers: 3 opted out, 4 without marketing consent, 5 in New York
   (22:30 there: quiet hours), 8 in Honolulu (17:30 there: sent). The status counts are printed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from compliance.phones import mask
from worker import pii
from worker.audit import Actor
from worker.campaigns import bookings, coupons, definitions, fanout, lifecycle, recipients, reviews
from worker.campaigns.schedules import ScheduleInput
from worker.consent.ledger import record_event
from worker.db import SessionScope
from worker.identity import senders, stations
from worker.models import OutboundMessage
from worker.ops.demo import DEMO_STATION, NEW_YORK, DemoFailure, FreshNumbers, _expect, _inbound, _station
from worker.outbound.send import send_one
from worker.provider.fake import FakeTwilio
from worker.settings import Settings, get_settings, set_settings

__all__ = ["run_campaign_demo"]

Out = Callable[[str], None]
ACTOR = Actor.cli("demo")


@contextmanager
def _fake_twilio() -> Iterator[tuple[FakeTwilio, Settings]]:
    base = get_settings()
    fake = FakeTwilio(base.secret("TWILIO_ACCOUNT_SID"), base.secret("TWILIO_AUTH_TOKEN")).start()
    settings = base.model_copy(update={"TWILIO_API_BASE_URL": fake.base_url, "OUTBOUND_RATE_LIMIT_ENABLED": False})
    set_settings(settings)
    try:
        yield fake, settings
    finally:
        set_settings(None)
        fake.stop()


def _consent(scope: SessionScope, number: str, kind: str = "marketing_consent") -> None:
    with scope() as session:
        record_event(session, phone_e164=number, kind=kind, purpose="marketing" if kind != "opt_out" else "all",
                     source="web_form" if kind != "opt_out" else "sms_keyword",
                     evidence={"form": "demo sign-up", "disclosure": "I agree to receive marketing texts (demo)"},
                     occurred_at=datetime.now(UTC))


def _tick(scope: SessionScope, now: datetime) -> None:
    """The beat tick's steps, in its order (tasks/campaigns.py), each in its own transaction."""
    with scope() as session:
        reviews.enrol_completed(session, now)
    with scope() as session:
        fanout.plan_due_runs(session, now)
    for step in (fanout.expand_chunk, lambda s, n, chunk: fanout.materialise_chunk(s, n, chunk=chunk).total):
        while True:
            with scope() as session:
                if not step(session, now, chunk=500):
                    break


def _send_campaign(scope: SessionScope, campaign_id: uuid.UUID, at: datetime, settings: Settings) -> None:
    with scope() as session:
        ids = list(session.execute(select(OutboundMessage.id).where(
            OutboundMessage.campaign_id == campaign_id, OutboundMessage.status.in_(("pending", "queued")))).scalars())
    for message_id in ids:
        send_one(message_id, now=at, settings=settings, scope=scope)


def _print_status(out: Out, scope: SessionScope, campaign_id: uuid.UUID) -> dict[str, int]:
    with scope() as session:
        counts = recipients.status_counts(session, campaign_id)
    out(f"  status   audience {counts.total}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.by_state().items())))
    for reason, n in sorted(counts.by_reason().items()):
        out(f"           {reason}: {n}")
    return counts.by_state()


def run_campaign_demo(out: Out, *, scope: SessionScope, seed: int | None = None) -> None:
    """Play both campaigns; raises DemoFailure on a step that does not behave."""
    fresh = FreshNumbers(random.Random(seed), scope)
    with _fake_twilio() as (fake, settings):
        out(f"fake Twilio listening on {fake.base_url}")
        _station_id, sender = _station(out, scope)
        noon = datetime.now(NEW_YORK).replace(hour=12, minute=0, second=0, microsecond=0)
        late = noon.replace(hour=22, minute=30)

        out("")
        out("== Review request: a completed booking, the request, a \"4\" that escalates ==")
        guest = fresh.new_york()
        _consent(scope, guest)
        tag = uuid.uuid4().hex[:6]
        with scope() as session:
            pool = coupons.create_pool(session, ACTOR, name=f"demo-recovery-{tag}", station_code=DEMO_STATION,
                                       source="generated", purpose="service_recovery", prefix="SRY", length=8)
            coupons.generate_codes(session, pool.id, 5, ACTOR)
            campaign = definitions.create_campaign(session, definitions.CampaignSpec(
                kind="review_request", name=f"demo reviews {tag}", station_code=DEMO_STATION,
                schedule=ScheduleInput(after=timedelta(seconds=1))), ACTOR, now=datetime.now(UTC))
            lifecycle.start(session, campaign.id, ACTOR, now=datetime.now(UTC))
            review_id = campaign.id
        with scope() as session:  # completed after the campaign started: the tick enrols it
            booking = bookings.add_booking(session, ACTOR, station_code=DEMO_STATION, phone=guest,
                                           event_at=datetime.now(UTC) - timedelta(hours=3), first_name="Pat")
            bookings.set_status(session, booking.id, "completed", ACTOR)
        out(f"  booking  {booking.id} completed for {mask(guest)}; review campaign {review_id} running")
        _tick(scope, datetime.now(UTC) + timedelta(seconds=2))
        _send_campaign(scope, review_id, noon, settings)
        request = fake.sent_to(guest)
        _expect(len(request) == 1, "the review request was not sent")
        out(f'  sent     "{request[0]["body"]}"')
        _inbound(out, scope, from_=guest, to=sender, body="4")
        with scope() as session:
            index = pii.blind_index(guest, kind="phone")
            ids = list(session.execute(select(OutboundMessage.id).where(
                OutboundMessage.to_index == index, OutboundMessage.status == "pending")).scalars())
        for message_id in ids:
            send_one(message_id, now=noon, settings=settings, scope=scope)
        with scope() as session:
            escalated = reviews.escalations(session, DEMO_STATION)
        mine = [e for e in escalated if e.phone == mask(guest)]
        _expect(bool(mine) and mine[-1].coupon is not None, "the \"4\" did not escalate with a recovery coupon")
        out(f"  review   escalated; recovery code {mine[-1].coupon}; texted: \"{fake.sent_to(guest)[-1]['body']}\"")
        _print_status(out, scope, review_id)
        with scope() as session:  # so the next run's booking is enrolled by its own campaign only
            lifecycle.cancel(session, review_id, ACTOR, now=datetime.now(UTC))

        out("")
        out("== Coupon campaign: 20 customers, sent at 22:30 New York time ==")
        groups = {"opted out": 3, "no consent": 4, "New York (quiet hours)": 5, "Honolulu": 8}
        with scope() as session:
            codes = coupons.create_pool(session, ACTOR, name=f"demo-winter-{tag}", station_code=None,
                                        source="generated", prefix="WIN", length=8)
            coupons.generate_codes(session, codes.id, 20, ACTOR)
            # A fresh station per run keeps this campaign's audience to these 20 customers.
            demo_code = f"DEMO{tag.upper()}"
            coupon_station = stations.create_station(
                session, code=demo_code, name="Demo coupons", timezone="America/New_York", brand="Hibachi Demo",
                help_text="Hibachi Demo: help at demo@example.test. Msg & data rates may apply. Reply STOP to opt out.",
                contact="demo@example.test", actor=ACTOR)
            senders.create_sender(session, station_code=demo_code, channel="sms", address=fresh.new_york(),
                                  actor=ACTOR)
        numbers: dict[str, list[str]] = {}
        for group, n in groups.items():
            numbers[group] = [(fresh.honolulu if group == "Honolulu" else fresh.new_york)() for _ in range(n)]
            for number in numbers[group]:
                with scope() as session:
                    bookings.customer_for_number(session, coupon_station.id, number)
                if group != "no consent":
                    _consent(scope, number)
                if group == "opted out":
                    _consent(scope, number, "opt_out")
        at = datetime.now(UTC) + timedelta(seconds=1)
        with scope() as session:
            coupon = definitions.create_campaign(session, definitions.CampaignSpec(
                kind="coupon", name=f"demo winter {tag}", station_code=demo_code, pool_id=codes.id,
                template="{brand}: {first_name}, 20% off your next party with {coupon_code}",
                schedule=ScheduleInput(at=at)), ACTOR, now=datetime.now(UTC))
            lifecycle.start(session, coupon.id, ACTOR, now=datetime.now(UTC))
            coupon_id = coupon.id
        _tick(scope, at + timedelta(seconds=1))
        _send_campaign(scope, coupon_id, late, settings)
        for group, listed in numbers.items():
            out(f"  {group:<24} {', '.join(mask(n) for n in listed[:3])}{' ...' if len(listed) > 3 else ''}")
        states = _print_status(out, scope, coupon_id)
        _expect(states.get("sent") == 8, f"expected the 8 Honolulu texts sent, got {states}")
        out("")
        out(f"done: {len(fake.messages)} texts reached the fake Twilio; the deferred ones go at 08:00 New York time "
            "when a worker runs.")
    if not fake.messages:
        raise DemoFailure("nothing was sent")
