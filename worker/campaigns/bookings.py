"""Bookings from the command line, for demos and operators: the booking app normally writes them.

``msgworker booking add`` finds or creates the customer by number in the station and adds the
booking; ``complete`` and ``cancel`` change its status exactly as the booking app would, so the
review-request tick sees the same thing either way. Each change is audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from compliance.phones import normalize
from worker import audit, pii
from worker.audit import Actor
from worker.campaigns.errors import CampaignError
from worker.errors import ErrorKind
from worker.identity.stations import find_station
from worker.models import AuditAction, Booking, Customer
from worker.models.core import LIVE

__all__ = ["add_booking", "customer_for_number", "set_status"]

STATUSES = ("pending", "confirmed", "completed", "cancelled", "no_show")


def add_booking(
    session: Session, actor: Actor, *, station_code: str, phone: str, event_at: datetime, status: str = "confirmed",
    adults: int = 10, first_name: str | None = None,
) -> Booking:
    if status not in STATUSES:
        raise CampaignError(f"--status must be one of {', '.join(STATUSES)}", kind=ErrorKind.INVALID_INPUT,
                            field="status")
    if adults < 1:
        raise CampaignError("--adults must be at least 1", kind=ErrorKind.INVALID_INPUT, field="adults")
    station = find_station(session, station_code)
    e164 = normalize(phone)
    customer_id = customer_for_number(session, station.id, e164)
    if first_name:
        session.execute(update(Customer).where(Customer.id == customer_id).values(first_name=first_name.strip()))
    booking = Booking(customer_id=customer_id, station_id=station.id, date=event_at, status=status,
                      party_adults=adults)
    session.add(booking)
    session.flush()
    audit.record(session, actor, action=AuditAction.CREATE, resource_type="booking", resource_id=booking.id,
                 station_id=station.id, new_values={"status": status, "date": event_at.isoformat()})
    return booking


def customer_for_number(session: Session, station_id: uuid.UUID, e164: str) -> uuid.UUID:
    """The station's live customer with this number (added, as staff-entered, if there is none)."""
    index = pii.blind_index(e164, kind="phone")
    session.execute(
        insert(Customer)
        .values(station_id=station_id, phone_index=index, phone_encrypted=pii.encrypt(e164, kind="phone"),
                source="staff")
        .on_conflict_do_nothing(index_elements=["station_id", "phone_index"], index_where=LIVE)
    )
    return session.execute(
        select(Customer.id).where(Customer.station_id == station_id, Customer.phone_index == index,
                                  Customer.deleted_at.is_(None))
    ).scalar_one()


def set_status(session: Session, booking_id: uuid.UUID, status: str, actor: Actor) -> Booking:
    """Complete or cancel a booking; completing one twice is refused, naming when it was completed."""
    booking = session.get(Booking, booking_id, with_for_update=True)
    if booking is None or booking.deleted_at is not None:
        raise CampaignError(f"no booking {booking_id}", kind=ErrorKind.NOT_FOUND, field="id")
    if booking.status == status:
        raise CampaignError(f"booking {booking_id} is already {status} (since {booking.updated_at.isoformat()})",
                            kind=ErrorKind.CONFLICT)
    if booking.status in ("cancelled", "no_show") or (booking.status == "completed" and status == "cancelled"):
        raise CampaignError(f"booking {booking_id} is {booking.status}: it cannot become {status}",
                            kind=ErrorKind.CONFLICT)
    old = booking.status
    booking.status = status
    session.flush()
    session.refresh(booking)
    audit.record(session, actor, action=AuditAction.UPDATE, resource_type="booking", resource_id=booking.id,
                 station_id=booking.station_id, old_values={"status": old}, new_values={"status": status})
    return booking
