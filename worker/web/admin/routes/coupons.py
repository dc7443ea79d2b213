"""Coupon redemption, as ``msgworker coupon redeem``: worker/campaigns/coupons.py's ``redeem``.

A code is redeemed once: a second redemption is a 409 naming when and by whom the first was;
a code never issued, voided or expired is a 409 too, and an unknown code (or one issued at
another station, which the database does not show a station manager) a 404. The redemption's
``redeemed_by`` is the token's name and its audit row names the token. Coupons are campaign
work: admins and the station's manager, not support (issue 12: no campaigns).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from worker.campaigns import coupons
from worker.web.admin.access import Access, access
from worker.web.admin.routes.campaigns import CAMPAIGN_ROLES
from worker.web.admin.schemas import Request

router = APIRouter(tags=["coupons"])


class RedeemIn(Request):
    # In the body, not the URL: an unredeemed code is worth money, and URLs end up in access logs.
    code: str = Field(min_length=1, max_length=64, description="the code as the customer gave it (any case)")


class RedeemedOut(BaseModel):
    id: uuid.UUID
    code: str
    status: str
    station_id: uuid.UUID | None
    redeemed_at: datetime | None
    redeemed_by: str | None


@router.post("/coupons/redeem", operation_id="redeem_coupon")
def redeem_coupon(body: RedeemIn, caller: Annotated[Access, Depends(access(*CAMPAIGN_ROLES))]) -> RedeemedOut:
    """Mark an issued code redeemed (once: a second time is a 409 naming the first)."""
    with caller.transaction() as session:
        row = coupons.redeem(session, body.code, caller.principal.actor, now=datetime.now(UTC))
        return RedeemedOut(id=row.id, code=row.code, status=row.status, station_id=row.station_id,
                           redeemed_at=row.redeemed_at, redeemed_by=row.redeemed_by)
