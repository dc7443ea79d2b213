"""Review requests: completed bookings enrolled by the tick, cancelled bookings withdrawn, escalations listed.

The booking app only writes ``core.bookings``; nothing calls the worker. The tick (every few
seconds) finds bookings that reached ``completed`` after the campaign started and enrols each
once: a review row (one per booking, unique) and the recipient rows of the request and its
reminder (one per step and booking, unique). The request is due after the campaign's delay
(default: the next day at 11:00 on the recipient's clock) and the reminder three days later at
the same local time; the reminder waits for the request to have been sent, and any reply
cancels it (worker/campaigns/replies.py).

A number that had a review request in the cooldown (180 days by default) is enrolled as
``skipped: cooldown``; a booking another review campaign already covers as
``skipped: already_requested``. A booking cancelled (or marked no-show) before its request went
cancels its pending rows and any of its texts still waiting in the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from compliance.campaign_schedule import at_local, same_wall_clock_later
from compliance.phones import mask
from compliance.recipient import locate
from compliance.us_states import state_from_address
from worker import pii
from worker.campaigns import schedules
from worker.campaigns.definitions import steps_of
from worker.models import Campaign, CampaignStep
from worker.outbox import CANCELLABLE

__all__ = ["Escalation", "cancel_for_cancelled_bookings", "enrol_completed", "escalations", "request_zone"]

log = structlog.get_logger(__name__)

_RUNNING = text(
    "SELECT id FROM marketing.campaigns WHERE kind = 'review_request' AND status = 'running' AND deleted_at IS NULL"
)
_COMPLETED = text(
    """
    SELECT b.id, b.customer_id, b.station_id, b.updated_at, cu.phone_index, cu.phone_encrypted, cu.address_encrypted,
           st.timezone
    FROM core.bookings b JOIN core.customers cu ON cu.id = b.customer_id
    JOIN identity.stations st ON st.id = b.station_id
    WHERE b.status = 'completed' AND b.deleted_at IS NULL AND b.updated_at >= :since
      AND (CAST(:station AS uuid) IS NULL OR b.station_id = CAST(:station AS uuid))
      AND NOT EXISTS (SELECT 1 FROM marketing.campaign_recipients r WHERE r.campaign_id = :campaign
                      AND r.booking_id = b.id)
    ORDER BY b.updated_at LIMIT :limit
    """
)
_INSERT_STEP = text(
    """
    INSERT INTO marketing.campaign_recipients
      (campaign_id, step, run_key, customer_id, station_id, booking_id, to_index, schedule_version, due_at, status,
       reason)
    VALUES (:campaign, :step, :run_key, :customer, :station, :booking, :to_index, :version, :due, :status, :reason)
    ON CONFLICT DO NOTHING RETURNING id
    """
)
_INSERT_REVIEW = text(
    """
    INSERT INTO feedback.customer_reviews (station_id, booking_id, customer_id, campaign_id, phone_index,
                                           request_recipient_id)
    VALUES (:station, :booking, :customer, :campaign, :to_index, :recipient)
    ON CONFLICT (booking_id) WHERE booking_id IS NOT NULL AND deleted_at IS NULL DO NOTHING RETURNING id
    """
)
_IN_COOLDOWN = text(
    "SELECT EXISTS (SELECT 1 FROM feedback.customer_reviews WHERE phone_index = :to_index AND deleted_at IS NULL "
    "AND created_at > :since)"
)


def request_zone(e164: str | None, address_encrypted: str | None, station_zone: str) -> tuple[str, ...]:
    """The zones a review request's local time is read in: the number's (and address's), else the station's."""
    if e164 is None:
        return (station_zone,)
    address = pii.decrypt(address_encrypted, kind="address") if address_encrypted else None
    location = locate(e164, state_from_address(address))
    return location.zones if location.known else (station_zone,)


def _latest_zone(due: datetime, zones: tuple[str, ...]) -> ZoneInfo:
    """The candidate zone whose clock fixed the due time (a reminder keeps that wall-clock time)."""
    for name in zones:
        local = due.astimezone(ZoneInfo(name))
        if at_local(local.date(), local.time().replace(tzinfo=None), ZoneInfo(name)) == due:
            return ZoneInfo(name)
    return ZoneInfo(zones[0])


def enrol_completed(session: Session, now: datetime, *, limit: int = 200) -> int:
    """Enrol bookings completed since each running review campaign started; returns how many."""
    enrolled = 0
    for campaign_id in list(session.execute(_RUNNING).scalars()):
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.started_at is not None
        follow_ups = steps_of(session, campaign.id)
        bookings = session.execute(_COMPLETED, {"since": campaign.started_at, "station": campaign.station_id,
                                                "campaign": campaign.id, "limit": limit}).all()
        for b in bookings:
            if _enrol(session, campaign, follow_ups, b, now):
                enrolled += 1
    return enrolled


def _enrol(
    session: Session, campaign: Campaign, follow_ups: dict[int, CampaignStep], row: Row[Any], now: datetime
) -> bool:
    e164 = pii.decrypt(row.phone_encrypted, kind="phone") if row.phone_encrypted else None
    zones = request_zone(e164, row.address_encrypted, row.timezone)
    due = schedules.relative_due(campaign.schedule, row.updated_at, zones)
    status, reason = "pending", None
    if row.phone_index is None:
        status, reason = "skipped", "no_phone"
    elif campaign.cooldown_days and session.execute(_IN_COOLDOWN, {
        "to_index": row.phone_index, "since": now - timedelta(days=campaign.cooldown_days)
    }).scalar_one():
        status, reason = "skipped", "cooldown"
    common = {"campaign": campaign.id, "run_key": row.id.hex, "customer": row.customer_id,
              "station": row.station_id, "booking": row.id, "to_index": row.phone_index,
              "version": campaign.schedule_version}
    first = session.execute(_INSERT_STEP, {**common, "step": 1, "due": due, "status": status,
                                           "reason": reason}).scalar_one_or_none()
    if first is None:
        return False  # another tick enrolled it first
    if status == "pending":
        review = session.execute(_INSERT_REVIEW, {**common, "recipient": first}).scalar_one_or_none()
        if review is None:
            status, reason = "skipped", "already_requested"
            session.execute(text("UPDATE marketing.campaign_recipients SET status = 'skipped', "
                                 "reason = 'already_requested' WHERE id = :id"), {"id": first})
    later_due = due
    for step in sorted(follow_ups):
        after = follow_ups[step].after_seconds
        later_due = same_wall_clock_later(later_due, max(1, after // 86400), _latest_zone(later_due, zones)) \
            if after % 86400 == 0 else later_due + timedelta(seconds=after)
        session.execute(_INSERT_STEP, {**common, "step": step, "due": later_due,
                                       "status": "pending" if status == "pending" else "skipped",
                                       "reason": None if status == "pending" else reason})
    log.info("review_request_enrolled", campaign_id=str(campaign.id), booking_id=str(row.id),
             outcome=reason or "pending", due_at=due.isoformat())
    return True


_CANCEL_ROWS = text(
    """
    UPDATE marketing.campaign_recipients r SET status = 'cancelled', reason = 'booking_cancelled', updated_at = now()
    FROM core.bookings b
    WHERE r.booking_id = b.id AND r.status = 'pending' AND (b.status IN ('cancelled', 'no_show') OR b.deleted_at
          IS NOT NULL)
    RETURNING r.booking_id
    """
)
_CANCEL_OUTBOX = text(
    """
    UPDATE core.outbound_messages o SET status = 'cancelled', gate_reason = 'booking_cancelled', updated_at = now()
    FROM marketing.campaign_recipients r JOIN core.bookings b ON b.id = r.booking_id
    WHERE o.id = r.outbound_id AND r.status = 'queued' AND o.status = ANY(:cancellable)
      AND (b.status IN ('cancelled', 'no_show') OR b.deleted_at IS NOT NULL)
    """
)


def cancel_for_cancelled_bookings(session: Session) -> int:
    """Withdraw review requests whose booking was cancelled; returns the rows cancelled."""
    bookings = set(session.execute(_CANCEL_ROWS).scalars())
    session.execute(_CANCEL_OUTBOX, {"cancellable": list(CANCELLABLE)})
    if bookings:
        session.execute(text("UPDATE feedback.customer_reviews SET status = 'archived', updated_at = now() "
                             "WHERE booking_id = ANY(:ids) AND status = 'pending'"), {"ids": list(bookings)})
        log.info("review_requests_cancelled", bookings=len(bookings))
    return len(bookings)


@dataclass(frozen=True, slots=True)
class Escalation:
    review_id: uuid.UUID
    station: str
    phone: str
    rating: str | None
    reply: str | None
    coupon: str | None
    escalated_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"review_id": str(self.review_id), "station": self.station, "phone": self.phone,
                "rating": self.rating, "reply": self.reply, "coupon": self.coupon,
                "escalated_at": self.escalated_at.isoformat() if self.escalated_at else None}


def escalations(session: Session, station_code: str | None = None) -> list[Escalation]:
    """Reviews rated "could be better", oldest first, with the reply and the recovery coupon."""
    rows = session.execute(text(
        """
        SELECT rv.id, st.code, cu.phone_encrypted, rv.rating, rv.reply_encrypted, d.code, rv.escalated_at
        FROM feedback.customer_reviews rv JOIN identity.stations st ON st.id = rv.station_id
        JOIN core.customers cu ON cu.id = rv.customer_id
        LEFT JOIN feedback.discount_coupons d ON d.review_id = rv.id
        WHERE rv.status = 'escalated' AND rv.deleted_at IS NULL
          AND (CAST(:station AS text) IS NULL OR lower(st.code) = lower(CAST(:station AS text)))
        ORDER BY rv.escalated_at
        """
    ), {"station": station_code}).all()
    return [Escalation(
        review_id=r[0], station=r[1],
        phone=mask(pii.decrypt(r[2], kind="phone")) if r[2] else "-",
        rating=str(r[3].value if hasattr(r[3], "value") else r[3]) if r[3] else None,
        reply=pii.decrypt(r[4], kind="review_reply") if r[4] else None, coupon=r[5], escalated_at=r[6],
    ) for r in rows]
