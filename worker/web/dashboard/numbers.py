"""A number's page: its consent timeline, state per scope, and every text sent or blocked, with why.

Pages name a number by its blind index (hex), never by the number: URLs end up in access
logs and browser history, and the index is a keyed HMAC that says nothing without the key
(the admin API keeps numbers out of URLs for the same reason). The number itself is read back
from a row the request can see.

A station manager reads a number only if it is a live customer of one of their stations (the
database returns that customer row or nothing): for anyone else's number the rows they could
see would say "no record", which is not the truth, so the page answers "not found" instead, as
the admin API does. Reading the timeline is the audited VIEW of ``consent_summary``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from compliance.phones import normalize
from worker import pii
from worker.consent import staff
from worker.errors import NotFound
from worker.models import Customer, OutboundMessage, Station
from worker.web.dashboard.sessions import Viewer

__all__ = ["NumberView", "TextRow", "index_of", "number_view", "phone_of"]

TEXTS_SHOWN = 200

# The first row the request can see that holds the number (encrypted).
_PHONE = """
SELECT enc FROM (
  SELECT phone_encrypted AS enc, 1 AS o FROM compliance.consent_state WHERE phone_index = :idx
  UNION ALL SELECT phone_encrypted, 2 FROM compliance.consent_events WHERE phone_index = :idx
  UNION ALL SELECT to_encrypted, 3 FROM core.outbound_messages WHERE to_index = :idx
  UNION ALL SELECT phone_encrypted, 4 FROM core.customers WHERE phone_index = :idx AND phone_encrypted IS NOT NULL
) found ORDER BY o LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class TextRow:
    id: uuid.UUID
    station_id: uuid.UUID
    purpose: str
    status: str
    gate_decision: str | None
    gate_reason: str | None
    created_at: datetime
    decided_at: datetime | None
    sent_at: datetime | None
    error_code: int | None
    campaign_id: uuid.UUID | None
    body: str | None  # None for a role that may not read message text


@dataclass(frozen=True, slots=True)
class NumberView:
    index_hex: str
    phone: str
    station: Station | None  # the manager's station the number is a customer of
    summary: dict[str, Any]
    texts: list[TextRow]


def index_of(phone: str) -> bytes:
    """The blind index of a number as typed (InvalidNumber if it is not one)."""
    return pii.blind_index(normalize(phone, require_valid=False), kind="phone")


def _manager_station(session: Session, viewer: Viewer, index: bytes) -> Station:
    found = session.execute(
        select(Station).join(Customer, Customer.station_id == Station.id)
        .where(Customer.phone_index == index, Customer.deleted_at.is_(None),
               Customer.station_id.in_(list(viewer.station_ids)))
        .order_by(Station.code).limit(1)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("no customer with that number at your stations", field="phone")
    return found


def phone_of(session: Session, viewer: Viewer, index: bytes) -> tuple[str, Station | None]:
    """The number behind ``index`` from a row the request can see (NotFound when there is none)."""
    station = None if viewer.sees_all_stations else _manager_station(session, viewer, index)
    enc = session.execute(text(_PHONE), {"idx": index}).scalar_one_or_none()
    if enc is None:
        raise NotFound("nothing is on record for that number: no consent event, no text, no customer", field="phone")
    return pii.decrypt(enc, kind="phone"), station


def number_view(session: Session, viewer: Viewer, index: bytes, *, with_text: bool) -> NumberView:
    phone, station = phone_of(session, viewer, index)
    summary = staff.consent_summary(session, phone, actor=viewer.actor, station=station)
    if not with_text:  # evidence quotes the customer (and names the number): BODY_ROLES only, as in the API
        for event in summary["events"]:
            event["evidence"] = None
    rows = session.execute(
        select(OutboundMessage).where(OutboundMessage.to_index == index)
        .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id).limit(TEXTS_SHOWN)
    ).scalars()
    texts = [
        TextRow(r.id, r.station_id, r.purpose, r.status, r.gate_decision, r.gate_reason, r.created_at, r.decided_at,
                r.sent_at, r.error_code, r.campaign_id, r.body if with_text else None)
        for r in rows
    ]
    return NumberView(index.hex(), phone, station, summary, texts)
