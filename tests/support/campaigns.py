"""Campaign test data: an audience with recorded consent, pools with codes, one tick's steps run in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_customer, phone
from worker.audit import Actor
from worker.campaigns import coupons, fanout, recipients, reviews
from worker.consent.ledger import record_event
from worker.models import Station

ACTOR = Actor.cli("marketer")


def grant_marketing(session: Session, number: str, *, at: datetime | None = None) -> None:
    """Prior express written consent on record (business-wide), as a web form would record it."""
    record_event(session, phone_e164=number, kind="marketing_consent", purpose="marketing", source="web_form",
                 evidence={"disclosure": "test disclosure v1"}, occurred_at=at or datetime.now(UTC), station_id=None)


def opt_out(session: Session, number: str, *, at: datetime | None = None) -> None:
    record_event(session, phone_e164=number, kind="opt_out", purpose="all", source="sms_keyword",
                 evidence={"body": "STOP"}, occurred_at=at or datetime.now(UTC), station_id=None)


def audience(session: Session, station: Station, numbers: list[str] | int, *, consent: bool = True,
             names: list[str] | None = None) -> list[str]:
    """Customers of ``station`` (given numbers, or that many fresh ones), with marketing consent unless told."""
    chosen = numbers if isinstance(numbers, list) else [phone() for _ in range(numbers)]
    for i, number in enumerate(chosen):
        make_customer(session, station, phone_e164=number, first_name=names[i] if names else "Pat")
        if consent:
            grant_marketing(session, number)
    return chosen


def pool_with_codes(session: Session, count: int, *, station: Station | None = None, purpose: str = "campaign",
                    fallback: str | None = None) -> uuid.UUID:
    pool = coupons.create_pool(session, ACTOR, name=f"pool-{uuid.uuid4().hex[:6]}",
                               station_code=station.code if station else None, source="generated", purpose=purpose,
                               prefix="T", length=8, fallback_code=fallback)
    if count:
        coupons.generate_codes(session, pool.id, count, ACTOR)
    return pool.id


def run_tick(session: Session, now: datetime, *, chunk: int = 500) -> dict[str, int]:
    """The tick's steps, in its order, in the caller's session (tasks/campaigns.py runs each in its own)."""
    out = {"enrolled": reviews.enrol_completed(session, now)}
    out["cancelled"] = reviews.cancel_for_cancelled_bookings(session) + recipients.cancel_opted_out(session)
    out["runs"] = fanout.plan_due_runs(session, now)
    out["expanded"] = 0
    while n := fanout.expand_chunk(session, now, chunk=chunk):
        out["expanded"] += n
    out["materialised"] = 0
    while m := fanout.materialise_chunk(session, now, chunk=chunk).total:
        out["materialised"] += m
    out["completed"] = len(recipients.complete_finished(session))
    return out


def outbox_rows(session: Session, campaign_id: uuid.UUID) -> list[dict[str, object]]:
    return [dict(r) for r in session.execute(text(
        "SELECT id, idempotency_key, status, purpose, body, not_before, to_index FROM core.outbound_messages "
        "WHERE campaign_id = :c ORDER BY idempotency_key"), {"c": campaign_id}).mappings()]
