"""Start, pause, resume and cancel: each takes effect at the next tick, each is audited.

- start: a draft becomes ``scheduled`` (its first fire time set) or, for review requests,
  ``running`` (bookings completed from now on are enrolled). A campaign whose texts carry a
  coupon does not start while its pool holds fewer codes than its audience, unless the pool
  has a fallback code.
- pause: no new rows are materialised, and the campaign's texts still waiting in the outbox
  (pending, deferred, or queued for a send task that has not claimed them) are held there:
  their not-before moves to ``HELD_UNTIL``, so the release tick leaves them alone and a send
  task that comes late finds them no longer sendable. Nothing is cancelled or re-created.
- resume: held texts are due again now (the gate decides them afresh) and rows that fell due
  during the pause go now: a pause is never counted as a missed run.
- cancel: every row not yet sent is cancelled, in the outbox too (pending, deferred, queued).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.campaigns import schedules
from worker.campaigns.audience import audience_size
from worker.campaigns.definitions import describe, get_campaign, steps_of
from worker.campaigns.errors import CampaignError
from worker.errors import ErrorKind
from worker.models import AuditAction, Campaign, CouponPool, DiscountCoupon
from worker.outbox import CANCELLABLE

__all__ = ["HELD_UNTIL", "cancel", "pause", "resume", "start"]

# A paused campaign's outbox rows wait until this (a time no release tick reaches).
HELD_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)

_HOLD = text(
    "UPDATE core.outbound_messages SET status = 'pending', not_before = :held, updated_at = now() "
    "WHERE campaign_id = :campaign AND status IN ('pending', 'deferred', 'queued')"
)
_UNHOLD = text(
    "UPDATE core.outbound_messages SET not_before = now(), updated_at = now() "
    "WHERE campaign_id = :campaign AND status = 'pending' AND not_before = :held"
)
_CANCEL_OUTBOX = text(
    "UPDATE core.outbound_messages SET status = 'cancelled', gate_reason = 'campaign_cancelled', updated_at = now() "
    "WHERE campaign_id = :campaign AND status = ANY(:cancellable)"
)
_CANCEL_ROWS = text(
    "UPDATE marketing.campaign_recipients SET status = 'cancelled', reason = 'campaign_cancelled', updated_at = now() "
    "WHERE campaign_id = :campaign AND status = 'pending'"
)
_DUE_NOW = text(
    "UPDATE marketing.campaign_recipients SET due_at = now(), updated_at = now() "
    "WHERE campaign_id = :campaign AND status = 'pending' AND due_at < now()"
)


def _conflict(campaign: Campaign, action: str) -> CampaignError:
    return CampaignError(f"campaign {campaign.id} is {campaign.status}: cannot {action} it", kind=ErrorKind.CONFLICT)


def _uses_coupon(session: Session, campaign: Campaign) -> bool:
    return "{coupon_code}" in campaign.template or any(
        "{coupon_code}" in s.template for s in steps_of(session, campaign.id).values())


def _check_pool(session: Session, campaign: Campaign) -> None:
    if campaign.pool_id is None or campaign.kind == "review_request" or not _uses_coupon(session, campaign):
        return
    pool = session.get(CouponPool, campaign.pool_id)
    assert pool is not None
    if pool.fallback_code:
        return
    available = session.execute(
        select(func.count()).select_from(DiscountCoupon)
        .where(DiscountCoupon.pool_id == pool.id, DiscountCoupon.status == "available")
    ).scalar_one()
    needed = audience_size(session, campaign.station_id)
    if available < needed:
        raise CampaignError(
            f"pool {pool.name!r} has {available} codes for an audience of {needed}: add codes "
            "(`msgworker coupon generate|import`) or give the pool a fallback code",
            kind=ErrorKind.CONFLICT, field="pool",
        )


def _audited(session: Session, campaign: Campaign, actor: Actor, old: dict[str, object], reason: str) -> None:
    audit.record(session, actor, action=AuditAction.UPDATE, resource_type="campaign", resource_id=campaign.id,
                 station_id=campaign.station_id, old_values={"status": old["status"]},
                 new_values={"status": campaign.status}, reason=reason)


def start(session: Session, campaign_id: uuid.UUID, actor: Actor, *, now: datetime) -> Campaign:
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != "draft":
        raise _conflict(campaign, "start")
    _check_pool(session, campaign)
    old = describe(campaign)
    if campaign.kind == "review_request":
        campaign.status, campaign.next_run_at = "running", None
    else:
        campaign.status, campaign.next_run_at = "scheduled", schedules.first_fire(campaign.schedule, now)
    campaign.started_at = now
    _audited(session, campaign, actor, old, "started")
    return campaign


def pause(session: Session, campaign_id: uuid.UUID, actor: Actor, *, now: datetime) -> Campaign:
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status not in ("scheduled", "running"):
        raise _conflict(campaign, "pause")
    old = describe(campaign)
    campaign.status, campaign.paused_at = "paused", now
    session.execute(_HOLD, {"campaign": campaign.id, "held": HELD_UNTIL})
    _audited(session, campaign, actor, old, "paused")
    return campaign


def resume(session: Session, campaign_id: uuid.UUID, actor: Actor, *, now: datetime) -> Campaign:
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status != "paused":
        raise _conflict(campaign, "resume")
    old = describe(campaign)
    has_runs = session.execute(
        text("SELECT EXISTS (SELECT 1 FROM marketing.campaign_runs WHERE campaign_id = :c)"), {"c": campaign.id}
    ).scalar_one()
    campaign.status = "running" if has_runs or campaign.kind == "review_request" else "scheduled"
    campaign.paused_at = None
    if campaign.next_run_at is not None and campaign.next_run_at < now:
        campaign.next_run_at = now
    session.execute(_DUE_NOW, {"campaign": campaign.id})
    session.execute(_UNHOLD, {"campaign": campaign.id, "held": HELD_UNTIL})
    _audited(session, campaign, actor, old, "resumed")
    return campaign


def cancel(session: Session, campaign_id: uuid.UUID, actor: Actor, *, now: datetime) -> Campaign:
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status in ("completed", "cancelled"):
        raise _conflict(campaign, "cancel")
    old = describe(campaign)
    campaign.status, campaign.cancelled_at, campaign.next_run_at = "cancelled", now, None
    session.execute(_CANCEL_ROWS, {"campaign": campaign.id})
    session.execute(_CANCEL_OUTBOX, {"campaign": campaign.id, "cancellable": list(CANCELLABLE)})
    _audited(session, campaign, actor, old, "cancelled")
    return campaign
