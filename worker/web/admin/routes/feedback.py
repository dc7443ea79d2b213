"""Feedback escalations, as ``msgworker feedback escalations``: reviews rated "could be better".

worker/campaigns/reviews.py's ``escalations`` in the request's transaction: a station manager
gets their stations' reviews only (the database's policy on ``feedback.customer_reviews``,
migration 0008). Numbers are masked by the service for everyone; the customer's reply is
message text, so only BODY_ROLES read it (as with threads), the others get the rating.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from worker.campaigns import reviews
from worker.web.admin.access import ALL_ROLES, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, paginate_in_memory
from worker.web.admin.schemas import BODY_ROLES

router = APIRouter(tags=["feedback"])

_NEVER = datetime.min.replace(tzinfo=UTC)  # sorts an escalation without a time first (none should lack one)


class EscalationOut(BaseModel):
    review_id: uuid.UUID
    station: str
    phone: str  # masked
    rating: str | None
    reply: str | None  # null for a role that may not read message text
    coupon: str | None  # the service-recovery code texted, if the pool had one
    escalated_at: datetime | None


@router.get("/feedback/escalations", operation_id="list_escalations")
def list_escalations(
    caller: Annotated[Access, Depends(access(*ALL_ROLES))],
    station_code: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[EscalationOut]:
    """Reviews rated "could be better", oldest first, with the service-recovery coupon, for a person to follow up."""
    with_text = caller.principal.role in BODY_ROLES
    with caller.transaction() as session:
        rows = [EscalationOut(review_id=e.review_id, station=e.station, phone=e.phone, rating=e.rating,
                              reply=e.reply if with_text else None, coupon=e.coupon, escalated_at=e.escalated_at)
                for e in reviews.escalations(session, station_code)]
    items, next_cursor = paginate_in_memory(
        "escalations", rows, cursor, limit, key=lambda e: (e.escalated_at or _NEVER, e.review_id), arity=2
    )
    return Page(items=items, next_cursor=next_cursor)
