"""Test data that is valid by default (real-looking E.164 numbers, consistent stations).

Factories flush, so ids and server defaults exist when they return.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from worker import pii
from worker.models import Booking, Customer, Station, StationSender

_seq = itertools.count(1)


# Valid, assigned-looking US numbers (phonenumbers calls these valid): 415 San Francisco.
def phone(n: int | None = None) -> str:
    return f"+1415{2000000 + (n if n is not None else next(_seq)) % 8000000:07d}"


def station_number(n: int | None = None) -> str:
    return f"+1212{3000000 + (n if n is not None else next(_seq)) % 7000000:07d}"


def make_station(
    session: Session,
    *,
    code: str | None = None,
    timezone: str = "America/New_York",
    brand: str = "Hibachi Home",
    sms_number: str | None = None,
    messaging_service_sid: str | None = None,
) -> Station:
    n = next(_seq)
    station = Station(
        code=code or f"ST{n:04d}",
        name=f"Station {n}",
        timezone=timezone,
        brand_name=brand,
        help_text=f"{brand}: catering help at 555-0100. Msg frequency varies. "
        "Msg & data rates may apply. Reply STOP to opt out.",
        contact="support@example.test",
    )
    session.add(station)
    session.flush()
    sender = StationSender(
        station_id=station.id,
        channel="sms",
        address=sms_number or station_number(n),
        messaging_service_sid=messaging_service_sid,
    )
    session.add(sender)
    session.flush()
    return station


def make_customer(
    session: Session,
    station: Station,
    *,
    phone_e164: str | None = None,
    email: str | None = None,
    first_name: str = "Pat",
) -> Customer:
    number = phone_e164 or phone()
    customer = Customer(
        station_id=station.id,
        first_name=first_name,
        phone_encrypted=pii.encrypt(number, kind="phone"),
        phone_index=pii.blind_index(number, kind="phone"),
        email_encrypted=pii.encrypt(email, kind="email") if email else None,
        email_index=pii.blind_index(email.lower(), kind="email") if email else None,
    )
    session.add(customer)
    session.flush()
    return customer


def make_booking(
    session: Session, customer: Customer, *, days_from_now: int = 7, status: str = "confirmed", adults: int = 10
) -> Booking:
    booking = Booking(
        customer_id=customer.id,
        station_id=customer.station_id,
        date=datetime.now(UTC) + timedelta(days=days_from_now),
        status=status,
        party_adults=adults,
        deposit_due_cents=10000,
        total_due_cents=60000,
    )
    session.add(booking)
    session.flush()
    return booking


def new_id() -> str:
    return uuid.uuid4().hex
