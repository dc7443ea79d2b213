"""The audit log (public.audit_logs), newest first, for SUPER_ADMIN and ADMIN.

Its rows never hold phone numbers or message text (worker/audit.py), so an admin reading the
log learns who did what, not to whom.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select, tuple_

from worker.models import AuditLog
from worker.web.admin.access import ADMINS, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, decode_cursor, page_of

router = APIRouter(tags=["audit"])


class AuditRowOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    actor: str
    user_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    station_id: uuid.UUID | None
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    reason: str | None


@router.get("/audit-log", operation_id="list_audit_log")
def list_audit_log(
    caller: Annotated[Access, Depends(access(*ADMINS))],
    resource_type: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    station_id: uuid.UUID | None = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[AuditRowOut]:
    after = decode_cursor("audit", cursor, 2)
    query = select(AuditLog).order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit + 1)
    if resource_type is not None:
        query = query.where(AuditLog.resource_type == resource_type)
    if station_id is not None:
        query = query.where(AuditLog.station_id == station_id)
    if after is not None:
        query = query.where(tuple_(AuditLog.created_at, AuditLog.id) < tuple_(*after))
    with caller.transaction() as session:
        rows = [
            AuditRowOut(id=r.id, created_at=r.created_at, actor=r.actor, user_id=r.user_id, action=r.action.value,
                        resource_type=r.resource_type, resource_id=r.resource_id, station_id=r.station_id,
                        old_values=r.old_values, new_values=r.new_values, reason=r.reason)
            for r in session.execute(query).scalars()
        ]
    items, next_cursor = page_of("audit", rows, limit, key=lambda r: (r.created_at, r.id))
    return Page(items=items, next_cursor=next_cursor)
