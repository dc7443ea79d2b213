"""Creating and editing campaigns: every refusal before anything is stored, every change audited.

A campaign is created as a ``draft`` (worker/campaigns/lifecycle.py starts it). Its templates
are checked here (compliance/templates.py), its schedule too (worker/campaigns/schedules.py),
and its purpose is decided from the templates, never chosen by the marketer. An edit bumps the
schedule version: texts already in the outbox stay as they are, rows not yet materialised are
rendered from the new template (their version is moved with it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from compliance.templates import TemplateError, TemplateUse, check, purpose_for, with_opt_out
from worker import audit
from worker.audit import Actor
from worker.campaigns import schedules
from worker.campaigns.errors import CampaignError
from worker.errors import ErrorKind
from worker.identity.stations import find_station, validate_timezone
from worker.models import AuditAction, Campaign, CampaignRecipient, CampaignStep, CouponPool

__all__ = [
    "DEFAULT_RECOVERY",
    "DEFAULT_REMINDER",
    "DEFAULT_REQUEST",
    "CampaignSpec",
    "create_campaign",
    "edit_templates",
    "get_campaign",
    "list_campaigns",
    "steps_of",
]

KINDS = ("review_request", "coupon", "broadcast")
DEFAULT_REQUEST = (
    "{brand}: thank you for celebrating with us, {first_name}! How was your event on {booking_date}? "
    "Reply 1 Great, 2 Good, 3 Okay or 4 Could be better."
)
DEFAULT_REMINDER = "{brand}: one quick question about your event: reply 1 Great, 2 Good, 3 Okay or 4 Could be better."
DEFAULT_RECOVERY = (
    "{brand}: we're sorry your event could have been better. Here is {coupon_code} for your next booking, "
    "and a manager will reach out."
)
REMINDER_AFTER = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    kind: str
    name: str
    station_code: str | None  # None: every station
    template: str | None = None  # review requests have a default
    schedule: schedules.ScheduleInput = field(default_factory=schedules.ScheduleInput)
    zone: str | None = None  # recurring schedules of an all-station campaign
    pool_id: uuid.UUID | None = None
    review_link: str | None = None
    reminder_template: str | None = None
    reminder: bool = True
    recovery_template: str | None = None
    missed_policy: str = "skip"
    missed_window: timedelta | None = None
    local_passed: str = "next_day"
    cooldown_days: int = 180


def _invalid(message: str, field_name: str) -> CampaignError:
    return CampaignError(message, kind=ErrorKind.INVALID_INPUT, field=field_name)


def _checked(template: str, use: TemplateUse, field_name: str) -> str:
    try:
        check(template, use)
    except TemplateError as exc:
        raise _invalid(f"{field_name}: {exc}", field_name) from None
    return template


def _pool(session: Session, pool_id: uuid.UUID | None, station_id: uuid.UUID | None) -> CouponPool | None:
    if pool_id is None:
        return None
    pool = session.get(CouponPool, pool_id)
    if pool is None or pool.deleted_at is not None:
        raise CampaignError(f"no coupon pool {pool_id} (see `msgworker coupon pool list`)", kind=ErrorKind.NOT_FOUND,
                            field="pool")
    if pool.purpose != "campaign":
        raise _invalid(f"pool {pool.name!r} is for service recovery, not campaigns", "pool")
    if pool.station_id is not None and pool.station_id != station_id:
        raise _invalid(f"pool {pool.name!r} belongs to another station", "pool")
    return pool


def _policies(spec: CampaignSpec) -> dict[str, Any]:
    if spec.missed_policy not in ("skip", "send_within"):
        raise _invalid("--missed must be skip or send_within", "missed")
    if (spec.missed_policy == "send_within") != (spec.missed_window is not None):
        raise _invalid("send_within needs its window (e.g. --missed send_within --missed-window 2h); skip takes none",
                       "missed")
    if spec.missed_window is not None and spec.missed_window <= timedelta(0):
        raise _invalid("--missed-window must be positive", "missed")
    if spec.local_passed not in ("next_day", "skip"):
        raise _invalid("--local-passed must be next_day or skip", "local_passed")
    if spec.cooldown_days < 0:
        raise _invalid("--cooldown-days must be 0 or more", "cooldown_days")
    return {
        "missed_policy": spec.missed_policy,
        "missed_window_seconds": int(spec.missed_window.total_seconds()) if spec.missed_window else None,
        "local_passed_policy": spec.local_passed,
        "cooldown_days": spec.cooldown_days,
    }


def create_campaign(session: Session, spec: CampaignSpec, actor: Actor, *, now: datetime) -> Campaign:
    """A draft campaign, checked whole (station, templates, schedule, pool, policies) and audited."""
    if spec.kind not in KINDS:
        raise _invalid(f"--kind must be one of {', '.join(KINDS)}", "kind")
    if not spec.name.strip() or len(spec.name) > 200:
        raise _invalid("--name must be 1..200 characters", "name")
    station = find_station(session, spec.station_code) if spec.station_code else None
    station_id = station.id if station else None
    zone_name = station.timezone if station else (validate_timezone(spec.zone) if spec.zone else "America/New_York")
    pool = _pool(session, spec.pool_id, station_id)
    if spec.kind == "coupon" and pool is None:
        raise _invalid("a coupon campaign needs --pool (its codes come from there)", "pool")
    use = TemplateUse(kind=spec.kind, has_pool=pool is not None, has_review_link=bool(spec.review_link))
    template = spec.template or (DEFAULT_REQUEST if spec.kind == "review_request" else None)
    if template is None:
        raise _invalid("--template is required", "template")
    _checked(template, use, "template")
    reminder = None
    if spec.kind == "review_request" and spec.reminder:
        reminder = _checked(spec.reminder_template or DEFAULT_REMINDER, use, "reminder_template")
    recovery = None
    if spec.kind == "review_request":
        recovery = _checked(spec.recovery_template or DEFAULT_RECOVERY, TemplateUse(kind="coupon", has_pool=True),
                            "recovery_template")
        if "{review_link}" in recovery:
            # 16 CFR 465 (docs/campaigns.md): the link goes to every rating or none, never only some.
            raise _invalid("the service-recovery text must not carry {review_link}: only unhappy customers get it",
                           "recovery_template")
    purpose = "marketing" if "marketing" in {purpose_for(spec.kind, t) for t in (template, reminder) if t} \
        else "transactional"
    campaign = Campaign(
        station_id=station_id,
        name=spec.name.strip(),
        kind=spec.kind,
        status="draft",
        template=with_opt_out(template, purpose),
        purpose=purpose,
        audience={"type": "completed_bookings" if spec.kind == "review_request" else "all_customers"},
        schedule=schedules.build(spec.kind, spec.schedule, ZoneInfo(zone_name), now),
        pool_id=pool.id if pool else None,
        review_link=spec.review_link,
        recovery_template=with_opt_out(recovery, "marketing") if recovery else None,
        created_by=actor.label,
        **_policies(spec),
    )
    session.add(campaign)
    session.flush()
    if reminder is not None:
        session.add(CampaignStep(campaign_id=campaign.id, step=2, template=with_opt_out(reminder, purpose),
                                 after_seconds=int(REMINDER_AFTER.total_seconds())))
    audit.record(session, actor, action=AuditAction.CREATE, resource_type="campaign", resource_id=campaign.id,
                 station_id=station_id, new_values=describe(campaign))
    session.flush()
    return campaign


def describe(campaign: Campaign) -> dict[str, Any]:
    """The campaign's definition as shown and audited (no customer data in it)."""
    return {
        "id": str(campaign.id),
        "name": campaign.name,
        "kind": campaign.kind,
        "status": campaign.status,
        "station_id": str(campaign.station_id) if campaign.station_id else None,
        "purpose": campaign.purpose,
        "template": campaign.template,
        "schedule": campaign.schedule,
        "schedule_version": campaign.schedule_version,
        "pool_id": str(campaign.pool_id) if campaign.pool_id else None,
        "missed_policy": campaign.missed_policy,
        "missed_window_seconds": campaign.missed_window_seconds,
        "local_passed_policy": campaign.local_passed_policy,
        "review_link": campaign.review_link,
    }


def get_campaign(session: Session, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign:
    stmt = select(Campaign).where(Campaign.id == campaign_id, Campaign.deleted_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    campaign = session.execute(stmt).scalar_one_or_none()
    if campaign is None:
        raise CampaignError(f"no campaign {campaign_id} (see `msgworker campaign list`)", kind=ErrorKind.NOT_FOUND,
                            field="id")
    return campaign


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.execute(
        select(Campaign).where(Campaign.deleted_at.is_(None)).order_by(Campaign.created_at.desc())
    ).scalars())


def steps_of(session: Session, campaign_id: uuid.UUID) -> dict[int, CampaignStep]:
    rows = session.execute(select(CampaignStep).where(CampaignStep.campaign_id == campaign_id)).scalars()
    return {s.step: s for s in rows}


def edit_templates(
    session: Session, campaign_id: uuid.UUID, actor: Actor, *, template: str | None = None,
    reminder_template: str | None = None,
) -> Campaign:
    """New template(s): the version is bumped, pending rows follow it, outbox rows stay (audited)."""
    campaign = get_campaign(session, campaign_id, lock=True)
    if campaign.status in ("completed", "cancelled"):
        raise CampaignError(f"campaign is {campaign.status}: nothing left to edit", kind=ErrorKind.CONFLICT)
    if template is None and reminder_template is None:
        raise _invalid("give --template and/or --reminder-template", "template")
    pool = session.get(CouponPool, campaign.pool_id) if campaign.pool_id else None
    use = TemplateUse(kind=campaign.kind, has_pool=pool is not None, has_review_link=bool(campaign.review_link))
    steps = steps_of(session, campaign.id)
    new_first = _checked(template, use, "template") if template is not None else campaign.template
    reminder_row = steps.get(2)
    if reminder_template is not None and reminder_row is None:
        raise _invalid("this campaign has no reminder step", "reminder_template")
    new_reminder = _checked(reminder_template, use, "reminder_template") if reminder_template is not None else (
        reminder_row.template if reminder_row else None)
    purposes = {purpose_for(campaign.kind, t) for t in (new_first, new_reminder) if t}
    purpose = "marketing" if "marketing" in purposes else "transactional"
    old = describe(campaign)
    campaign.template = with_opt_out(new_first, purpose)
    campaign.purpose = purpose
    if reminder_row is not None and new_reminder is not None:
        reminder_row.template = with_opt_out(new_reminder, purpose)
    campaign.schedule_version += 1
    session.flush()
    session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.status == "pending")
        .values(schedule_version=campaign.schedule_version, updated_at=text("now()"))
    )
    audit.record(session, actor, action=AuditAction.UPDATE, resource_type="campaign", resource_id=campaign.id,
                 station_id=campaign.station_id, old_values=old, new_values=describe(campaign),
                 reason="template edited")
    return campaign
