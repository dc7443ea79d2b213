"""Campaigns: create, list, show, preview, start, pause, resume, cancel and follow, as ``msgworker campaign``.

Every operation calls worker/campaigns/ exactly as the CLI does (definitions.create_campaign,
preview.preview, lifecycle.start|pause|resume|cancel, recipients.status_counts), inside the
request's transaction as ``msgworker_api``: the database shows a station manager only their
stations' campaigns (another station's is a 404) and refuses them an all-station campaign
(migration 0008's WITH CHECK). Support has no campaigns (issue 12), so it is not in the roles.
Each change writes the service's one audit row with the token as the actor.

A start answers with the campaign and its progress (recipients by state, always summing to
the audience), the numbers ``GET /campaigns/{id}/status`` keeps giving while it runs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from worker.campaigns import definitions, lifecycle, recipients
from worker.campaigns.preview import preview
from worker.campaigns.schedules import ScheduleInput
from worker.errors import InvalidInput
from worker.models import Campaign, UserRole
from worker.web.admin.access import ADMINS, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, paginate_in_memory
from worker.web.admin.schemas import Request

router = APIRouter(tags=["campaigns"])

# Campaigns are the admins' and the station's (issue 12): customer support has none.
CAMPAIGN_ROLES = (*ADMINS, UserRole.STATION_MANAGER)

HHMM = r"^\d{1,2}:\d{2}$"


class CampaignIn(Request):
    """What ``msgworker campaign create`` takes; the service checks it whole (422 naming the field)."""

    kind: Literal["review_request", "coupon", "broadcast"]
    name: str = Field(min_length=1, max_length=200)
    station_code: str | None = Field(default=None, min_length=1, max_length=32,
                                     description="the station's campaign; omitted: every station (admins only)")
    template: str | None = Field(default=None, min_length=1, max_length=1600,
                                 description="{first_name} {brand} {station_name} {coupon_code} {review_link} "
                                 "{booking_date}")
    at: datetime | None = Field(default=None, description="once at this time (with a UTC offset); with rrule, the "
                                "first occurrence")
    rrule: str | None = Field(default=None, min_length=1, max_length=500, description="RFC 5545, e.g. FREQ=WEEKLY")
    local_time: str | None = Field(default=None, pattern=HHMM, description="HH:MM on each recipient's clock (with on)")
    on: date | None = None
    next_day_at: str | None = Field(default=None, pattern=HHMM, description="review requests: next day at HH:MM")
    after_seconds: int | None = Field(default=None, ge=1, le=90 * 86400, description="review requests: this long "
                                      "after completion")
    zone: str | None = Field(default=None, min_length=1, max_length=64, description="IANA zone of an all-station "
                             "rrule")
    pool_id: uuid.UUID | None = None
    review_link: str | None = Field(default=None, min_length=1, max_length=500)
    reminder_template: str | None = Field(default=None, min_length=1, max_length=1600)
    reminder: bool = True
    recovery_template: str | None = Field(default=None, min_length=1, max_length=1600)
    missed: Literal["skip", "send_within"] = "skip"
    missed_window_seconds: int | None = Field(default=None, ge=1, le=30 * 86400)
    local_passed: Literal["next_day", "skip"] = "next_day"
    cooldown_days: int = Field(default=180, ge=0, le=3650)

    def spec(self) -> definitions.CampaignSpec:
        if self.at is not None and self.at.tzinfo is None:
            raise InvalidInput("at needs a UTC offset, e.g. 2026-12-11T10:00:00-05:00", field="at")
        return definitions.CampaignSpec(
            kind=self.kind, name=self.name, station_code=self.station_code, template=self.template,
            schedule=ScheduleInput(
                at=self.at, rrule=self.rrule, local_time=self.local_time, on=self.on, next_day_at=self.next_day_at,
                after=timedelta(seconds=self.after_seconds) if self.after_seconds is not None else None,
            ),
            zone=self.zone, pool_id=self.pool_id, review_link=self.review_link,
            reminder_template=self.reminder_template, reminder=self.reminder,
            recovery_template=self.recovery_template, missed_policy=self.missed,
            missed_window=timedelta(seconds=self.missed_window_seconds) if self.missed_window_seconds else None,
            local_passed=self.local_passed, cooldown_days=self.cooldown_days,
        )


class StepCount(BaseModel):
    step: int
    state: str
    reason: str | None
    held_for_review: bool
    count: int


class ProgressOut(BaseModel):
    """Recipients by state: they always sum to ``audience``."""

    audience: int
    states: dict[str, int]
    reasons: dict[str, int]
    decided: int
    sent: int
    by_step: list[StepCount]

    @classmethod
    def of(cls, counts: recipients.StatusCounts) -> ProgressOut:
        return cls(audience=counts.total, states=counts.by_state(), reasons=counts.by_reason(),
                   decided=counts.decided, sent=counts.sent,
                   by_step=[StepCount(step=s, state=st, reason=r, held_for_review=h, count=n)
                            for s, st, r, h, n in counts.rows])


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    status: str
    station_id: uuid.UUID | None
    purpose: str
    template: str
    schedule: dict[str, Any]
    schedule_version: int
    pool_id: uuid.UUID | None
    missed_policy: str
    missed_window_seconds: int | None
    local_passed_policy: str
    review_link: str | None
    next_run_at: datetime | None
    created_at: datetime
    progress: ProgressOut | None = None  # with the campaign alone and after each change; not in lists

    @classmethod
    def of(cls, campaign: Campaign, counts: recipients.StatusCounts | None = None) -> CampaignOut:
        return cls(**definitions.describe(campaign), next_run_at=campaign.next_run_at,
                   created_at=campaign.created_at, progress=ProgressOut.of(counts) if counts is not None else None)


class StatusOut(ProgressOut):
    id: uuid.UUID
    status: str


class PreviewOut(BaseModel):
    """The gate's dry run over the audience at the planned send time; nothing is written."""

    campaign_id: uuid.UUID
    planned_at: datetime | None
    audience: int
    outcomes: dict[str, int]
    samples: dict[str, list[str]]  # masked numbers
    deferred: dict[str, datetime] | None
    segments: int
    encoding: str
    longest_text: int
    pool_available: int | None
    pool_short_by: int


@router.get("/campaigns", operation_id="list_campaigns")
def list_campaigns(
    caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))], cursor: CursorParam = None, limit: Limit = 50
) -> Page[CampaignOut]:
    """Campaigns the token can see, oldest first (progress: ``GET /campaigns/{id}/status``)."""
    with caller.transaction() as session:
        rows = [CampaignOut.of(c) for c in definitions.list_campaigns(session)]
    items, next_cursor = paginate_in_memory("campaigns", rows, cursor, limit, key=lambda c: (c.created_at, c.id),
                                            arity=2)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/campaigns", status_code=201, operation_id="create_campaign")
def create_campaign(body: CampaignIn, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]) -> CampaignOut:
    """Create a draft campaign (checked whole: station, placeholders, schedule, pool); start it with ``/start``."""
    spec = body.spec()
    with caller.transaction() as session:
        return CampaignOut.of(definitions.create_campaign(session, spec, caller.principal.actor, now=datetime.now(UTC)))


@router.get("/campaigns/{campaign_id}", operation_id="get_campaign")
def get_campaign(campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]) -> CampaignOut:
    """The campaign's definition and its recipients by state."""
    with caller.transaction() as session:
        campaign = definitions.get_campaign(session, campaign_id)
        return CampaignOut.of(campaign, recipients.status_counts(session, campaign_id))


@router.get("/campaigns/{campaign_id}/status", operation_id="campaign_status")
def campaign_status(
    campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]
) -> StatusOut:
    """Recipients by state (they always sum to the audience), by step and reason: poll it to follow a run."""
    with caller.transaction() as session:
        campaign = definitions.get_campaign(session, campaign_id)
        progress = ProgressOut.of(recipients.status_counts(session, campaign_id))
        return StatusOut(id=campaign.id, status=campaign.status, **progress.model_dump())


@router.get("/campaigns/{campaign_id}/preview", operation_id="preview_campaign")
def preview_campaign(
    campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]
) -> PreviewOut:
    """Dry run of the send gate over the audience at the planned send time, by outcome (writes nothing)."""
    with caller.transaction() as session:
        result = preview(session, campaign_id, now=datetime.now(UTC))
        return PreviewOut(**result.to_json())


def _change(action: str, campaign_id: uuid.UUID, caller: Access) -> CampaignOut:
    change = {"start": lifecycle.start, "pause": lifecycle.pause, "resume": lifecycle.resume,
              "cancel": lifecycle.cancel}[action]
    with caller.transaction() as session:
        campaign = change(session, campaign_id, caller.principal.actor, now=datetime.now(UTC))
        session.flush()
        return CampaignOut.of(campaign, recipients.status_counts(session, campaign_id))


@router.post("/campaigns/{campaign_id}/start", operation_id="start_campaign")
def start_campaign(campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]) -> CampaignOut:
    """Start a draft (409 otherwise, or while its coupon pool holds fewer codes than its audience): scheduled
    for its first run, or running for review requests; follow it with ``/status``."""
    return _change("start", campaign_id, caller)


@router.post("/campaigns/{campaign_id}/pause", operation_id="pause_campaign")
def pause_campaign(campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]) -> CampaignOut:
    """Stop queueing; its texts still waiting in the outbox are held there until resume (409 unless running)."""
    return _change("pause", campaign_id, caller)


@router.post("/campaigns/{campaign_id}/resume", operation_id="resume_campaign")
def resume_campaign(
    campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]
) -> CampaignOut:
    """Go on where it stopped: held texts are decided again now; nothing is sent twice (409 unless paused)."""
    return _change("resume", campaign_id, caller)


@router.post("/campaigns/{campaign_id}/cancel", operation_id="cancel_campaign")
def cancel_campaign(
    campaign_id: uuid.UUID, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]
) -> CampaignOut:
    """Cancel every text not yet sent, in the outbox too (409 once completed or cancelled)."""
    return _change("cancel", campaign_id, caller)
