"""Texts: held for review (list, release, cancel, as ``msgworker send held|release``) and a staff send.

A send goes through worker/outbound/staff_send.py, the CLI's way in (worker.outbox.enqueue plus
its audit row); the gate decides at send time as for every text. It is idempotent on the
client's key, scoped to the station (``api:<station id>:<key>``): a retry returns the first
row, and the same key for a different text is a 409. The station is not looked up first: the
insert itself names it, and the outbox's row-level security refuses another station's id
(WITH CHECK), which the API answers 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from compliance.phones import mask
from worker import pii
from worker.errors import Conflict, InvalidInput, NotFound
from worker.models import OutboundMessage, UserRole
from worker.outbound import held
from worker.outbound.staff_send import queue_staff_text
from worker.phone import as_number
from worker.web.admin.access import ADMINS, ALL_ROLES, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, paginate_in_memory
from worker.web.admin.schemas import Note, Phone, Request

router = APIRouter(tags=["outbound"])

# Held texts are campaign and marketing texts: the admins' and the station's, not support's.
HELD_ROLES = (*ADMINS, UserRole.STATION_MANAGER)
SENDERS = (*ADMINS, UserRole.STATION_MANAGER)


class HeldOut(BaseModel):
    id: uuid.UUID
    station: str
    to: str  # masked
    purpose: str
    campaign: str | None
    created_at: datetime
    decided_at: datetime | None
    body_length: int


class ReleaseIn(Request):
    state: str = Field(min_length=2, max_length=2, description="USPS code of the state the recipient is in, e.g. TX")
    note: Note = None


class CancelIn(Request):
    note: Note = None


class ReviewedOut(BaseModel):
    id: uuid.UUID
    status: str
    not_before: datetime
    reviewed_at: datetime
    recipient_state: str | None


class SendIn(Request):
    station_id: uuid.UUID
    to: Phone
    body: str = Field(min_length=1, max_length=1600)
    purpose: Literal["transactional", "marketing"]
    client_key: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
                            description="the same key (per station) twice is one text")
    not_before: datetime | None = None


class SendOut(BaseModel):
    id: uuid.UUID
    station_id: uuid.UUID
    to: str  # masked
    purpose: str
    status: str
    not_before: datetime
    gate_decision: str | None
    gate_reason: str | None
    created: bool

    @classmethod
    def of(cls, m: OutboundMessage, *, created: bool) -> SendOut:
        return cls(id=m.id, station_id=m.station_id, to=mask(pii.decrypt(m.to_encrypted, kind="phone")),
                   purpose=m.purpose, status=m.status, not_before=m.not_before, gate_decision=m.gate_decision,
                   gate_reason=m.gate_reason, created=created)


@router.get("/held", operation_id="list_held")
def list_held(
    caller: Annotated[Access, Depends(access(*HELD_ROLES))],
    station_code: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[HeldOut]:
    """Texts the gate held because it could not place the recipient (zone_unknown), oldest first."""
    with caller.transaction() as session:
        rows = [HeldOut(**h.to_json()) for h in held.list_held(session, station_code=station_code)]
    items, next_cursor = paginate_in_memory("held", rows, cursor, limit, key=lambda h: (h.created_at, h.id), arity=2)
    return Page(items=items, next_cursor=next_cursor)


def _reviewed(r: held.ReviewResult) -> ReviewedOut:
    return ReviewedOut(id=r.id, status=r.status, not_before=r.not_before, reviewed_at=r.reviewed_at,
                       recipient_state=r.recipient_state)


@router.post("/held/{message_id}/release", operation_id="release_held")
def release_held(
    message_id: uuid.UUID, body: ReleaseIn, caller: Annotated[Access, Depends(access(*HELD_ROLES))]
) -> ReviewedOut:
    """Put a held text back in the outbox with the recipient's state; the gate decides again there."""
    with caller.transaction() as session:
        return _reviewed(held.release(session, message_id, state=body.state, actor=caller.principal.actor,
                                      note=body.note))


@router.post("/held/{message_id}/cancel", operation_id="cancel_held")
def cancel_held(
    message_id: uuid.UUID, body: CancelIn, caller: Annotated[Access, Depends(access(*HELD_ROLES))]
) -> ReviewedOut:
    """Cancel a held text: it will never be sent."""
    with caller.transaction() as session:
        return _reviewed(held.cancel(session, message_id, actor=caller.principal.actor, note=body.note))


@router.post("/sends", status_code=201, operation_id="create_send",
             responses={200: {"model": SendOut, "description": "The key was used before: the first text, unchanged."}})
def create_send(body: SendIn, response: Response, caller: Annotated[Access, Depends(access(*SENDERS))]) -> SendOut:
    """Queue one text through the outbox (201), or return the one queued earlier with this key (200)."""
    if body.not_before is not None and body.not_before.tzinfo is None:
        raise InvalidInput("not_before needs a UTC offset", field="not_before")
    key = f"api:{body.station_id}:{body.client_key}"
    refusal = NotFound(f"no station with id {body.station_id}", field="station_id")
    with caller.transaction(refusal=refusal) as session:
        result = queue_staff_text(session, actor=caller.principal.actor, station=body.station_id, to=body.to,
                                  body=body.body, purpose=body.purpose, idempotency_key=key,
                                  not_before=body.not_before)
        msg = result.message
        if not result.created and (
            msg.body != body.body or msg.purpose != body.purpose or msg.to_index != as_number(body.to).index
        ):
            raise Conflict("client_key was already used for a different text", field="client_key")
        if not result.created:
            response.status_code = 200
        return SendOut.of(msg, created=result.created)


@router.get("/sends/{message_id}", operation_id="get_send")
def get_send(message_id: uuid.UUID, caller: Annotated[Access, Depends(access(*ALL_ROLES))]) -> SendOut:
    """An outbox row: where the gate and the provider have got with it."""
    with caller.transaction() as session:
        msg = session.get(OutboundMessage, message_id)
        if msg is None:
            raise NotFound(f"no text with id {message_id}", field="message_id")
        return SendOut.of(msg, created=False)
