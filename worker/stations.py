"""Stations and their sender addresses: operator set-up, validated before anything is stored.

Inbound routing resolves a station from the address a message was sent *to*, so a sender
address is stored in exactly one canonical spelling (E.164 for SMS, digits for a short
code or a Meta id) and is owned by one station per channel (a unique constraint). Bad input
is refused with a StationError whose message an operator can act on; every creation writes
an audit row in the same transaction.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from compliance.errors import InvalidNumber
from compliance.phones import is_short_code, normalize
from worker import audit
from worker.models import AuditAction, Station, StationSender
from worker.models.identity import CHANNELS

__all__ = [
    "SenderAddress",
    "StationError",
    "create_sender",
    "create_station",
    "help_text_warnings",
    "list_senders",
    "list_stations",
    "normalize_sender_address",
    "validate_code",
    "validate_messaging_service_sid",
    "validate_timezone",
]

CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
MESSAGING_SERVICE_SID_RE = re.compile(r"MG[0-9a-fA-F]{32}")
# Facebook page ids and Instagram account ids are numeric strings (15-17 digits today).
META_ID_RE = re.compile(r"[0-9]{5,64}")

# Default sending rates (segments per second) by number type, COMPLIANCE.md §2 "Throughput":
# a US long code sends 1/s, toll-free 3/s by default, a short code 100+/s.
RATE_LONG_CODE = 1.0
RATE_TOLL_FREE = 3.0
RATE_SHORT_CODE = 100.0
# Meta has no per-second figure in COMPLIANCE.md; a modest default keeps bursts polite.
RATE_META = 10.0


class StationError(ValueError):
    """Raised when operator input for a station or sender cannot be stored (message says why)."""


@dataclass(frozen=True, slots=True)
class SenderAddress:
    """A sender address in its one stored spelling, and the default rate for its kind."""

    address: str
    kind: str  # "long_code", "toll_free", "short_code", "page", "instagram_account"
    default_rate: float


def validate_code(code: str) -> str:
    value = code.strip()
    if not CODE_RE.fullmatch(value):
        raise StationError(
            f"station code {code!r} is not valid: use 1-32 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


def validate_timezone(tz: str) -> str:
    """An IANA zone name that this machine's zone database knows (quiet hours depend on it)."""
    value = tz.strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = ""
        close = difflib.get_close_matches(value, zoneinfo.available_timezones(), n=1, cutoff=0.6)
        if not close:
            lowered = {z.lower(): z for z in zoneinfo.available_timezones()}
            close = [lowered[value.lower()]] if value.lower() in lowered else []
        if close:
            hint = f" (did you mean {close[0]}?)"
        raise StationError(f"unknown time zone {tz!r}{hint}: use an IANA name such as America/New_York") from None
    return value


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


def _station_values(station: Station) -> dict[str, Any]:
    return {
        "code": station.code,
        "name": station.name,
        "timezone": station.timezone,
        "brand_name": station.brand_name,
        "help_text": station.help_text,
        "contact": station.contact,
    }


def create_station(
    session: Session,
    *,
    code: str,
    name: str,
    timezone: str,
    brand: str,
    help_text: str | None = None,
    contact: str | None = None,
    actor: str,
) -> Station:
    """Insert a station and its audit row; StationError for bad input or a taken code."""
    code = validate_code(code)
    timezone = validate_timezone(timezone)
    name, brand = name.strip(), brand.strip()
    if not name or len(name) > 200:
        raise StationError("station name must be 1-200 characters")
    if not brand or len(brand) > 200:
        raise StationError("brand must be 1-200 characters (it appears in HELP and opt-out replies)")
    if help_text is not None and not help_text.strip():
        raise StationError("help text, when given, must not be empty")
    if session.scalar(select(Station.id).where(func.lower(Station.code) == code.lower())) is not None:
        raise StationError(f"a station with code {code!r} already exists (codes are unique, ignoring case)")
    station = Station(
        code=code,
        name=name,
        timezone=timezone,
        brand_name=brand,
        help_text=help_text.strip() if help_text else None,
        contact=contact.strip() if contact else None,
    )
    try:
        with session.begin_nested():
            session.add(station)
            session.flush()
    except IntegrityError:  # a concurrent add of the same code won the race
        raise StationError(f"a station with code {code!r} already exists") from None
    audit.record(
        session,
        actor=actor,
        action=AuditAction.CREATE,
        resource_type="station",
        resource_id=station.id,
        station_id=station.id,
        new_values=_station_values(station),
    )
    return station


def help_text_warnings(brand: str, help_text: str | None) -> list[str]:
    """CTIA wants the HELP reply to name the brand and say how to opt out; warn, do not refuse."""
    if help_text is None:
        return ["no --help-text: HELP replies use the built-in text with the brand name"]
    warnings = []
    if brand.strip().lower() not in help_text.lower():
        warnings.append("help text does not name the brand (CTIA: the HELP reply identifies the sender)")
    if "stop" not in help_text.lower():
        warnings.append("help text does not say how to opt out (CTIA: include 'Reply STOP to opt out')")
    return warnings


def list_stations(session: Session) -> list[tuple[Station, int]]:
    """Live stations by code, each with its number of active senders."""
    senders = (
        select(StationSender.station_id, func.count().label("n"))
        .where(StationSender.is_active.is_(True))
        .group_by(StationSender.station_id)
        .subquery()
    )
    rows = session.execute(
        select(Station, func.coalesce(senders.c.n, 0))
        .outerjoin(senders, senders.c.station_id == Station.id)
        .where(Station.deleted_at.is_(None))
        .order_by(Station.code)
    ).all()
    return [(station, int(n)) for station, n in rows]


def _find_station(session: Session, code: str) -> Station:
    station = session.scalar(
        select(Station).where(func.lower(Station.code) == code.strip().lower(), Station.deleted_at.is_(None))
    )
    if station is None:
        raise StationError(f"no station with code {code!r}: create it with `msgworker station add` first")
    return station


def create_sender(
    session: Session,
    *,
    station_code: str,
    channel: str,
    address: str,
    messaging_service_sid: str | None = None,
    rate_per_second: float | None = None,
    actor: str,
) -> StationSender:
    """Insert a sender address for a station, plus its audit row; StationError if refused."""
    station = _find_station(session, station_code)
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
            "one address routes to one station"
        )
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
        raise StationError(f"{channel} address {canonical.address} is already registered") from None
    audit.record(
        session,
        actor=actor,
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
        station = _find_station(session, station_code)
        query = query.where(StationSender.station_id == station.id)
    rows = session.execute(query.order_by(Station.code, StationSender.channel, StationSender.address)).all()
    return [(sender, code) for sender, code in rows]
