"""The consent review queue (ambiguous messages) and resolving an item, as ``msgworker review``.

Resolving is worker/consent/review.py's ``resolve``: a ledger event (and, as an opt-out, the
opt-out event and its one confirmation text) plus the audit row, in the request's transaction.
The classification quotes the customer's words, so only BODY_ROLES see it; everyone who may
read the queue sees the rule that fired.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from worker.consent import review
from worker.models import UserRole
from worker.web.admin.access import ADMINS, ALL_ROLES, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, paginate_in_memory
from worker.web.admin.schemas import BODY_ROLES, Request

router = APIRouter(tags=["reviews"])


class ReviewItemOut(BaseModel):
    id: uuid.UUID
    station_id: uuid.UUID | None
    station_code: str | None
    status: str
    deadline_at: datetime
    created_at: datetime
    message_id: uuid.UUID | None
    rule: str | None
    classification: dict[str, Any] | None  # null for a role that may not read message text


class ResolveIn(Request):
    resolution: Literal["opt_out", "not_opt_out"]
    note: str = Field(min_length=1, max_length=2000, description="why: what the message meant")


class ResolvedOut(BaseModel):
    id: uuid.UUID
    status: str
    resolved_event_id: uuid.UUID
    opt_out_event_id: uuid.UUID | None
    confirmation_id: uuid.UUID | None


@router.get("/reviews", operation_id="list_reviews")
def list_reviews(
    caller: Annotated[Access, Depends(access(*ALL_ROLES))], cursor: CursorParam = None, limit: Limit = 50
) -> Page[ReviewItemOut]:
    """Open items, nearest deadline first."""
    with_text = caller.principal.role in BODY_ROLES
    with caller.transaction() as session:
        rows = [
            ReviewItemOut(id=item.id, station_id=item.station_id, station_code=station.code if station else None,
                          status=item.status, deadline_at=item.deadline_at, created_at=item.created_at,
                          message_id=item.message_id, rule=(item.classification or {}).get("rule"),
                          classification=item.classification if with_text else None)
            for item, station in review.list_open(session)
        ]
    items, next_cursor = paginate_in_memory(
        "reviews", rows, cursor, limit, key=lambda r: (r.deadline_at, r.created_at, r.id), arity=3
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post("/reviews/{item_id}/resolve", operation_id="resolve_review")
def resolve_review(
    item_id: uuid.UUID,
    body: ResolveIn,
    caller: Annotated[Access, Depends(access(*ADMINS, UserRole.CUSTOMER_SUPPORT))],
) -> ResolvedOut:
    """Resolve an open item as opt_out (recorded, confirmed once) or not_opt_out."""
    with caller.transaction() as session:
        done = review.resolve(session, item_id, resolution=body.resolution, actor=caller.principal.actor,
                              note=body.note)
        return ResolvedOut(id=done.item.id, status=done.item.status, resolved_event_id=done.resolved.event.id,
                           opt_out_event_id=done.opt_out.event.id if done.opt_out else None,
                           confirmation_id=done.confirmation.id if done.confirmation else None)
