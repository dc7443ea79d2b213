"""Sender addresses: the numbers and page ids a station sends from and receives on.

Inbound routing resolves a station from the address a message was sent *to*, so a sender
address is stored in exactly one canonical spelling (E.164 for SMS, digits for a short
code or a Meta id) and is owned by one station per channel (a unique constraint). Every
creation writes an audit row in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from compliance.errors import InvalidNumber
from compliance.phones import is_short_code, normalize
from worker import audit
from worker.audit import Actor
from worker.errors import ErrorKind
from worker.identity.stations import StationError, find_station
from worker.models import AuditAction, Station, StationSender
from worker.models.identity import CHANNELS

__all__ = [
    "SenderAddress",
    "create_sender",
    "list_senders",
    "normalize_sender_address",
    "validate_messaging_service_sid",
]

MESSAGING_SERVICE_SID_RE = re.compile(r"MG[0-9a-fA-F]{32}")
# Facebook page ids and Instagram account ids are numeric strings (15-17 digits today).
META_ID_RE = re.compile(r"[0-9]{5,64}")

# Default sending rates (segments per second) by number type
# (docs/compliance.md#throughput-and-segments):
# a US long code sends 1/s, toll-free 3/s by default, a short code 100+/s.
RATE_LONG_CODE = 1.0
RATE_TOLL_FREE = 3.0
RATE_SHORT_CODE = 100.0
# Meta publishes no per-second figure we know of; a modest default keeps bursts polite.
RATE_META = 10.0


@dataclass(frozen=True, slots=True)
class SenderAddress:
    """A sender address in its one stored spelling, and the default rate for its kind."""

    address: str
    kind: str  # "long_code", "toll_free", "short_code", "page", "instagram_account"
    default_rate: float


def validate_messaging_service_sid(sid: str) -> str:
    value = sid.strip()
    if not MESSAGING_SERVICE_SID_RE.fullmatch(value):
        raise StationError(f"messaging service SID {sid!r} is not valid: it is 'MG' followed by 32 hex characters")
    return value


def normalize_sender_address(channel: str, address: str) -> SenderAddress:
    """The canonical spelling of ``address`` on ``channel``; StationError if it is not one."""
    if channel not in CHANNELS:
        raise StationError(f"unknown channel {channel!r}: use one of {', '.join(CHANNELS)}")
    raw = address.strip()
    if channel == "sms":
        if is_short_code(raw):
            return SenderAddress(raw, "short_code", RATE_SHORT_CODE)
        try:
            e164 = normalize(raw)
        except InvalidNumber as exc:
            raise StationError(
                f"SMS sender address {address!r} is not a usable phone number ({exc}); "
                "give the Twilio number in E.164, e.g. +12125550123, or a 5-6 digit short code"
            ) from None
        number_type = phonenumbers.number_type(phonenumbers.parse(e164, None))
        if number_type == phonenumbers.PhoneNumberType.TOLL_FREE:
            return SenderAddress(e164, "toll_free", RATE_TOLL_FREE)
        return SenderAddress(e164, "long_code", RATE_LONG_CODE)
    if not META_ID_RE.fullmatch(raw):
        what = "Facebook page id" if channel == "facebook" else "Instagram account id"
        raise StationError(f"{channel} sender address {address!r} is not a {what}: it is a string of digits")
    return SenderAddress(raw, "page" if channel == "facebook" else "instagram_account", RATE_META)


def create_sender(
    session: Session,
    *,
    station_code: str,
    channel: str,
    address: str,
    messaging_service_sid: str | None = None,
    rate_per_second: float | None = None,
    actor: Actor,
) -> StationSender:
    """Insert a sender address for a station, plus its audit row; StationError if refused."""
    station = find_station(session, station_code)
    canonical = normalize_sender_address(channel, address)
    if messaging_service_sid is not None:
        if channel != "sms":
            raise StationError("--messaging-service-sid applies to the sms channel only")
        messaging_service_sid = validate_messaging_service_sid(messaging_service_sid)
    if rate_per_second is not None and not (0 < rate_per_second <= 1000):
        raise StationError("rate per second must be above 0 and at most 1000")
    owner = session.execute(
        select(Station.code)
        .join(StationSender, StationSender.station_id == Station.id)
        .where(StationSender.channel == channel, StationSender.address == canonical.address)
    ).scalar_one_or_none()
    if owner is not None:
        raise StationError(
            f"{channel} address {canonical.address} already belongs to station {owner!r}: "
            "one address routes to one station", kind=ErrorKind.CONFLICT)
    sender = StationSender(
        station_id=station.id,
        channel=channel,
        address=canonical.address,
        messaging_service_sid=messaging_service_sid,
        rate_per_second=rate_per_second if rate_per_second is not None else canonical.default_rate,
    )
    try:
        with session.begin_nested():
            session.add(sender)
            session.flush()
    except IntegrityError:
        raise StationError(
            f"{channel} address {canonical.address} is already registered",
            kind=ErrorKind.CONFLICT,
        ) from None
    audit.record(
        session,
        actor,
        action=AuditAction.CREATE,
        resource_type="station_sender",
        resource_id=sender.id,
        station_id=station.id,
        new_values={
            "station_code": station.code,
            "channel": channel,
            "address": canonical.address,
            "kind": canonical.kind,
            "messaging_service_sid": messaging_service_sid,
            "rate_per_second": sender.rate_per_second,
        },
    )
    return sender


def list_senders(session: Session, station_code: str | None = None) -> list[tuple[StationSender, str]]:
    """Senders with their station's code, by station then channel and address."""
    query = select(StationSender, Station.code).join(Station, Station.id == StationSender.station_id)
    if station_code is not None:
        station = find_station(session, station_code)
        query = query.where(StationSender.station_id == station.id)
    rows = session.execute(query.order_by(Station.code, StationSender.channel, StationSender.address)).all()
    return [(sender, code) for sender, code in rows]
