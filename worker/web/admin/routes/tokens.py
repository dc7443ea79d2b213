"""Bearer tokens, managed by SUPER_ADMIN and ADMIN (worker/identity/tokens.py, as ``msgworker token``).

An ADMIN may not create or revoke a SUPER_ADMIN token (403 here; the database's policy on
identity.api_tokens refuses it as well). A new token's secret is in the creation response
only: it is never stored, listed or logged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from worker.identity import tokens
from worker.models import UserRole
from worker.web.admin.access import ADMINS, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, paginate_in_memory
from worker.web.admin.schemas import Request

router = APIRouter(tags=["tokens"])


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    role: UserRole
    station_ids: list[uuid.UUID]
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, info: tokens.TokenInfo, now: datetime) -> TokenOut:
        return cls(id=info.id, name=info.name, role=info.role, station_ids=list(info.station_ids),
                   state=info.state(now), created_by=info.created_by, created_at=info.created_at,
                   expires_at=info.expires_at, revoked_at=info.revoked_at)


class TokenIn(Request):
    name: str = Field(min_length=1, max_length=tokens.NAME_MAX)
    role: UserRole
    station_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    expires_in_days: int = Field(default=90, ge=0, le=3650, description="0: never expires")


class IssuedOut(TokenOut):
    token: str = Field(description="the bearer token: shown this once, never again")


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/tokens", operation_id="list_tokens")
def list_tokens(
    caller: Annotated[Access, Depends(access(*ADMINS))], cursor: CursorParam = None, limit: Limit = 50
) -> Page[TokenOut]:
    """Every token (never a secret), newest first; an audited VIEW."""
    now = _now()
    with caller.transaction() as session:
        rows = [TokenOut.of(i, now) for i in tokens.list_tokens(session, actor=caller.principal.actor)]
    items, next_cursor = paginate_in_memory(
        "tokens", rows, cursor, limit, key=lambda t: (-t.created_at.timestamp(), t.id), arity=2
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post("/tokens", status_code=201, operation_id="create_token")
def create_token(body: TokenIn, caller: Annotated[Access, Depends(access(*ADMINS))]) -> IssuedOut:
    """Issue a token; the response is the only place its secret ever appears."""
    with caller.transaction() as session:
        issued = tokens.create_token(
            session, name=body.name, role=body.role, station_ids=body.station_ids,
            expires_at=tokens.expiry_in_days(body.expires_in_days), actor=caller.principal.actor,
            creator_role=caller.principal.role,
        )
    return IssuedOut(**TokenOut.of(issued.info, _now()).model_dump(), token=issued.secret)


@router.post("/tokens/{token_id}/revoke", operation_id="revoke_token")
def revoke_token(token_id: uuid.UUID, caller: Annotated[Access, Depends(access(*ADMINS))]) -> TokenOut:
    """Revoke a token: its next request gets 401."""
    with caller.transaction() as session:
        info = tokens.revoke_token(session, token_id, actor=caller.principal.actor, caller_role=caller.principal.role)
    return TokenOut.of(info, _now())
