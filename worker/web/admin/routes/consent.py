"""A number's consent (state, timeline, open reviews) and staff opt-outs and opt-ins.

The same services as ``msgworker consent show|opt-out|opt-in`` (worker/consent/staff.py): each
change is a ledger event with the staff actor plus its audit row, in the request's one
transaction; nothing here touches consent_state. The number travels in the body, never in
the URL, so it stays out of access logs.

A STATION_MANAGER reads a number only at one of its stations, and only if the number is a
customer there: the database shows it that station's rows and the business-wide rows of its
customers' numbers (docs/admin-api.md), so for anyone else's number it would see "no record",
which is not the truth; it gets a 404 instead. Evidence (which can quote the customer's texts)
is shown to BODY_ROLES only.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from compliance.phones import normalize
from worker import pii
from worker.consent import staff
from worker.consent.ledger import RecordResult
from worker.errors import InvalidInput, NotFound
from worker.identity.tokens import Principal
from worker.models import Customer, Station, UserRole
from worker.web.admin.access import ADMINS, ALL_ROLES, Access, access
from worker.web.admin.schemas import BODY_ROLES, Note, Phone, Request

router = APIRouter(tags=["consent"])

STAFF_WRITERS = (*ADMINS, UserRole.CUSTOMER_SUPPORT)


class StateOut(BaseModel):
    scope: str
    opted_out: bool
    marketing_opted_out: bool
    opted_out_at: str | None
    opt_out_event_id: str | None
    marketing_consent: bool
    marketing_consent_event_id: str | None
    pending_review: bool
    last_event_seq: int | None


class EventOut(BaseModel):
    seq: int
    id: str
    kind: str
    purpose: str
    source: str
    scope: str
    occurred_at: str
    recorded_at: str
    idempotency_key: str | None
    evidence: dict[str, Any] | None  # null for a role that may not read it
    hash: str


class OpenReviewOut(BaseModel):
    id: str
    deadline_at: str
    status: str


class ConsentOut(BaseModel):
    phone: str
    station: str | None
    opted_out: bool
    marketing_opted_out: bool
    marketing_consent: bool
    pending_review: bool
    opt_out_event_ids: list[str]
    states: list[StateOut]
    open_reviews: list[OpenReviewOut]
    events: list[EventOut]


class LookupIn(Request):
    phone: Phone
    station_id: uuid.UUID | None = Field(default=None, description="one station's view; omitted: every scope")


class OptOutIn(Request):
    phone: Phone
    station_id: uuid.UUID | None = Field(default=None, description="this station only; omitted: business-wide")
    purpose: Literal["all", "marketing"] = "all"
    note: Note = None


class OptInIn(Request):
    phone: Phone
    purpose: Literal["marketing", "transactional", "all"]
    evidence: dict[str, Any] = Field(
        min_length=1,
        description="the consent's proof as a JSON document (for marketing: prior express written consent with "
        "its disclosure); `consented_at` (ISO-8601 with offset) dates the event",
    )
    station_id: uuid.UUID | None = None
    note: Note = None
    occurred_at: datetime | None = None


class EventRecorded(BaseModel):
    event_id: uuid.UUID
    seq: int
    kind: str
    purpose: str
    scope: str
    created: bool


def _station(session: Session, station_id: uuid.UUID | None) -> Station | None:
    if station_id is None:
        return None
    station = session.get(Station, station_id)
    if station is None or station.deleted_at is not None:
        raise NotFound(f"no station with id {station_id}", field="station_id")
    return station


def _manager_station(session: Session, principal: Principal, station_id: uuid.UUID | None, phone: str) -> Station:
    """A STATION_MANAGER's view: one of its stations, and a number that is a customer there."""
    if station_id is None:
        if len(principal.station_ids) != 1:
            raise InvalidInput("name the station (station_id): this token covers several", field="station_id")
        station_id = principal.station_ids[0]
    station = _station(session, station_id)
    assert station is not None
    index = pii.blind_index(normalize(phone, require_valid=False), kind="phone")
    customer = session.execute(
        select(Customer.id).where(Customer.station_id == station.id, Customer.phone_index == index,
                                  Customer.deleted_at.is_(None)).limit(1)
    ).first()
    if customer is None:
        raise NotFound("no customer with that number at this station", field="phone")
    return station


def _recorded(result: RecordResult) -> EventRecorded:
    e = result.event
    return EventRecorded(event_id=e.id, seq=e.seq, kind=e.kind, purpose=e.purpose, created=result.created,
                         scope=str(e.station_id) if e.station_id else "business")


@router.post("/consent/lookup", operation_id="lookup_consent")
def lookup_consent(body: LookupIn, caller: Annotated[Access, Depends(access(*ALL_ROLES))]) -> ConsentOut:
    """Everything on record for a number: effective state, state per scope, open reviews, the ledger timeline.

    Without a station: the most restrictive of every scope the token can see. An audited VIEW.
    """
    principal = caller.principal
    with caller.transaction() as session:
        if principal.sees_all_stations:
            station = _station(session, body.station_id)
        else:
            station = _manager_station(session, principal, body.station_id, body.phone)
        summary = staff.consent_summary(session, body.phone, actor=principal.actor, station=station)
    if principal.role not in BODY_ROLES:
        for event in summary["events"]:
            event["evidence"] = None
    return ConsentOut.model_validate(summary)


@router.post("/consent/opt-out", status_code=201, operation_id="staff_opt_out")
def staff_opt_out(body: OptOutIn, caller: Annotated[Access, Depends(access(*STAFF_WRITERS))]) -> EventRecorded:
    """Record a staff opt-out (business-wide, or one station): a ledger event and its audit row;
    the number's unsent texts are cancelled. No confirmation text is sent."""
    with caller.transaction() as session:
        result = staff.staff_opt_out(session, body.phone, actor=caller.principal.actor,
                                     station=_station(session, body.station_id), purpose=body.purpose, note=body.note)
        return _recorded(result)


@router.post("/consent/opt-in", status_code=201, operation_id="staff_opt_in")
def staff_opt_in(body: OptInIn, caller: Annotated[Access, Depends(access(*ADMINS))]) -> EventRecorded:
    """Record consent on evidence (marketing: ``marketing_consent``; otherwise ``opt_in``), which
    lifts an opt-out in its scope: a ledger event and its audit row."""
    if body.occurred_at is not None and body.occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at needs a UTC offset", field="occurred_at")
    evidence = staff.Evidence(name="api-evidence.json", data=json.dumps(body.evidence, sort_keys=True).encode())
    with caller.transaction() as session:
        result = staff.staff_opt_in(session, body.phone, purpose=body.purpose, evidence_file=evidence,
                                    actor=caller.principal.actor, station=_station(session, body.station_id),
                                    note=body.note, occurred_at=body.occurred_at)
        return _recorded(result)
