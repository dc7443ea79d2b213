"""Conversation threads and their messages, for the staff tools' inbox views.

Read-only; no CLI counterpart, so the queries live here. Lists are keyset pages (threads:
newest activity first; messages: conversation order). Which rows a request reaches is the
database's row-level security; what it shows of them is the role's: message text and the
customer's full number for BODY_ROLES (a full number shown is an audited VIEW), lengths and a
masked number for a STATION_MANAGER (docs/admin-api.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.orm import Session

from compliance.phones import mask
from worker import audit, pii
from worker.errors import NotFound
from worker.models import AuditAction, Customer, Message, MessageThread
from worker.web.admin.access import ALL_ROLES, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, decode_cursor, page_of
from worker.web.admin.schemas import BODY_ROLES

router = APIRouter(tags=["threads"])


class ThreadOut(BaseModel):
    id: uuid.UUID
    station_id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    status: str
    customer_phone: str | None  # masked in lists
    last_message_at: datetime
    created_at: datetime


class MessageOut(BaseModel):
    id: uuid.UUID
    direction: str
    channel: str
    created_at: datetime
    sent_at: datetime | None
    body: str | None  # null for a role that may not read message text
    body_length: int
    num_segments: int | None


def _phone(encrypted: str | None, *, full: bool) -> str | None:
    if encrypted is None:
        return None
    number = pii.decrypt(encrypted, kind="phone")
    return number if full else mask(number)


def _thread_out(t: MessageThread, phone_encrypted: str | None, *, full: bool) -> ThreadOut:
    return ThreadOut(id=t.id, station_id=t.station_id, customer_id=t.customer_id, channel=t.channel, status=t.status,
                     customer_phone=_phone(phone_encrypted, full=full), last_message_at=t.last_message_at,
                     created_at=t.created_at)


def _visible_thread(session: Session, thread_id: uuid.UUID) -> tuple[MessageThread, str | None]:
    row = session.execute(
        select(MessageThread, Customer.phone_encrypted)
        .join(Customer, Customer.id == MessageThread.customer_id, isouter=True)
        .where(MessageThread.id == thread_id, MessageThread.deleted_at.is_(None))
    ).one_or_none()
    if row is None:
        raise NotFound(f"no thread with id {thread_id}", field="thread_id")
    return row[0], row[1]


@router.get("/threads", operation_id="list_threads")
def list_threads(
    caller: Annotated[Access, Depends(access(*ALL_ROLES))],
    station_id: uuid.UUID | None = None,
    status: Annotated[Literal["open", "closed", "escalated", "archived"] | None, Query()] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[ThreadOut]:
    """Threads by latest activity, newest first (customer numbers masked)."""
    after = decode_cursor("threads", cursor, 2)
    query = (
        select(MessageThread, Customer.phone_encrypted)
        .join(Customer, Customer.id == MessageThread.customer_id, isouter=True)
        .where(MessageThread.deleted_at.is_(None))
        .order_by(MessageThread.last_message_at.desc(), MessageThread.id.desc())
        .limit(limit + 1)
    )
    if station_id is not None:
        query = query.where(MessageThread.station_id == station_id)
    if status is not None:
        query = query.where(MessageThread.status == status)
    if after is not None:
        query = query.where(tuple_(MessageThread.last_message_at, MessageThread.id) < tuple_(*after))
    with caller.transaction() as session:
        rows = [_thread_out(t, phone, full=False) for t, phone in session.execute(query)]
    items, next_cursor = page_of("threads", rows, limit, key=lambda t: (t.last_message_at, t.id))
    return Page(items=items, next_cursor=next_cursor)


@router.get("/threads/{thread_id}", operation_id="get_thread")
def get_thread(thread_id: uuid.UUID, caller: Annotated[Access, Depends(access(*ALL_ROLES))]) -> ThreadOut:
    """One thread; the customer's full number for roles that read conversations (an audited VIEW)."""
    full = caller.principal.role in BODY_ROLES
    with caller.transaction() as session:
        thread, phone = _visible_thread(session, thread_id)
        if full and phone is not None:
            audit.record(session, caller.principal.actor, action=AuditAction.VIEW, resource_type="message_thread",
                         resource_id=thread.id, station_id=thread.station_id)
        return _thread_out(thread, phone, full=full)


@router.get("/threads/{thread_id}/messages", operation_id="list_thread_messages")
def list_thread_messages(
    thread_id: uuid.UUID,
    caller: Annotated[Access, Depends(access(*ALL_ROLES))],
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[MessageOut]:
    """A thread's messages in conversation order; text only for roles that read conversations."""
    after = decode_cursor("messages", cursor, 2)
    with_body = caller.principal.role in BODY_ROLES
    query = (
        select(Message)
        .where(Message.thread_id == thread_id, Message.deleted_at.is_(None))
        .order_by(Message.created_at, Message.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(
            or_(Message.created_at > after[0], and_(Message.created_at == after[0], Message.id > after[1]))
        )
    with caller.transaction() as session:
        _visible_thread(session, thread_id)
        rows = [
            MessageOut(id=m.id, direction=m.direction, channel=m.channel, created_at=m.created_at, sent_at=m.sent_at,
                       body=m.body if with_body else None, body_length=len(m.body or ""),
                       num_segments=m.num_segments)
            for m in session.execute(query).scalars()
        ]
    items, next_cursor = page_of("messages", rows, limit, key=lambda m: (m.created_at, m.id))
    return Page(items=items, next_cursor=next_cursor)
