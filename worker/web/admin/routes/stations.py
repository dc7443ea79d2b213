"""Stations and their sender addresses: read by every role (a STATION_MANAGER sees its own), created by admins.

The same services as ``msgworker station|sender add|list`` (worker/identity/).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from worker.errors import NotFound
from worker.identity import senders, stations
from worker.models import Station, StationSender
from worker.web.admin.access import ADMINS, ALL_ROLES, Access, access
from worker.web.admin.pagination import CursorParam, Limit, Page, paginate_in_memory
from worker.web.admin.schemas import Request

router = APIRouter(tags=["stations"])


class StationOut(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    status: str
    timezone: str
    brand: str
    help_text: str | None
    contact: str | None
    senders: int
    created_at: datetime

    @classmethod
    def of(cls, s: Station, n: int) -> StationOut:
        return cls(id=s.id, code=s.code, name=s.name, status=s.status, timezone=s.timezone, brand=s.brand_name,
                   help_text=s.help_text, contact=s.contact, senders=n, created_at=s.created_at)


class StationIn(Request):
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64, description="IANA zone, e.g. America/New_York")
    brand: str = Field(min_length=1, max_length=200)
    help_text: str | None = Field(default=None, max_length=1600)
    contact: str | None = Field(default=None, max_length=200)


class SenderOut(BaseModel):
    id: uuid.UUID
    station_id: uuid.UUID
    station_code: str
    channel: str
    address: str
    messaging_service_sid: str | None
    rate_per_second: float
    active: bool

    @classmethod
    def of(cls, s: StationSender, code: str) -> SenderOut:
        return cls(id=s.id, station_id=s.station_id, station_code=code, channel=s.channel, address=s.address,
                   messaging_service_sid=s.messaging_service_sid, rate_per_second=s.rate_per_second,
                   active=s.is_active)


class SenderIn(Request):
    station_code: str = Field(min_length=1, max_length=32)
    channel: Literal["sms", "facebook", "instagram"]
    address: str = Field(min_length=1, max_length=64)
    messaging_service_sid: str | None = Field(default=None, max_length=34)
    rate_per_second: float | None = Field(default=None, gt=0, le=1000)


@router.get("/stations", operation_id="list_stations")
def list_stations(
    caller: Annotated[Access, Depends(access(*ALL_ROLES))], cursor: CursorParam = None, limit: Limit = 50
) -> Page[StationOut]:
    """Live stations by code, each with its number of active senders."""
    with caller.transaction() as session:
        rows = [StationOut.of(s, n) for s, n in stations.list_stations(session)]
    items, next_cursor = paginate_in_memory("stations", rows, cursor, limit, key=lambda s: (s.code,), arity=1)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/stations/{station_id}", operation_id="get_station")
def get_station(station_id: uuid.UUID, caller: Annotated[Access, Depends(access(*ALL_ROLES))]) -> StationOut:
    with caller.transaction() as session:
        station = session.get(Station, station_id)
        if station is None or station.deleted_at is not None:
            raise NotFound(f"no station with id {station_id}", field="station_id")
        count = sum(1 for s in station.senders if s.is_active)
        return StationOut.of(station, count)


@router.post("/stations", status_code=201, operation_id="create_station")
def create_station(body: StationIn, caller: Annotated[Access, Depends(access(*ADMINS))]) -> StationOut:
    """Create a station (audited), exactly as ``msgworker station add``."""
    with caller.transaction() as session:
        station = stations.create_station(
            session, code=body.code, name=body.name, timezone=body.timezone, brand=body.brand,
            help_text=body.help_text, contact=body.contact, actor=caller.principal.actor,
        )
        return StationOut.of(station, 0)


@router.get("/senders", operation_id="list_senders")
def list_senders(
    caller: Annotated[Access, Depends(access(*ALL_ROLES))],
    station_code: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[SenderOut]:
    """Sender addresses by station, channel and address."""
    with caller.transaction() as session:
        rows = [SenderOut.of(s, code) for s, code in senders.list_senders(session, station_code)]
    items, next_cursor = paginate_in_memory(
        "senders", rows, cursor, limit, key=lambda s: (s.station_code, s.channel, s.address), arity=3
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post("/senders", status_code=201, operation_id="create_sender")
def create_sender(body: SenderIn, caller: Annotated[Access, Depends(access(*ADMINS))]) -> SenderOut:
    """Register a sender address (audited), exactly as ``msgworker sender add``."""
    with caller.transaction() as session:
        sender = senders.create_sender(
            session, station_code=body.station_code, channel=body.channel, address=body.address,
            messaging_service_sid=body.messaging_service_sid, rate_per_second=body.rate_per_second,
            actor=caller.principal.actor,
        )
        station = session.get(Station, sender.station_id)
        assert station is not None
        return SenderOut.of(sender, station.code)
