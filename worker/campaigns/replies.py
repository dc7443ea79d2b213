"""Replies to review requests: any reply cancels the reminder; a clear one sets the rating.

The seam (docs/campaigns.md, "Replies"): ingest stores the message, runs the consent engine
(worker/consent/inbound.py) and then calls ``handle_replies`` in the same transaction. So
STOP always wins: the opt-out is recorded first, and a reply the consent classifier acted on
(STOP, START, HELP, an ambiguous revocation) is never read as a rating. Neither the consent
engine nor the receiver imports this module.

Per reply from a number with a review request (one query for a whole ingest batch):

- any reply cancels the request's follow-up steps not yet sent (the reminder);
- a reply to the open request (sent, within 14 days, not yet rated) is kept encrypted on the
  review row; if it reads clearly as one rating (compliance/ratings.py) that rating is set and
  the review ``submitted``; ``could_be_better`` makes it ``escalated`` (``msgworker feedback
  escalations``) and issues a service-recovery coupon from the station's pool, texted to the
  customer. The coupon answers the private rating, never a public review (16 CFR 465.4), and
  the recovery text never carries the public review link (docs/campaigns.md);
- an ambiguous reply is kept, unrated, for a person;
- a reply to a closed request (already rated, or past its window) changes nothing and is logged
  with its reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from compliance.ratings import parse_rating
from compliance.templates import render
from worker import pii
from worker.campaigns import coupons
from worker.outbox import CANCELLABLE, enqueue

__all__ = ["REVIEW_WINDOW", "InboundReply", "handle_replies"]

log = structlog.get_logger(__name__)

REVIEW_WINDOW = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class InboundReply:
    station_id: uuid.UUID
    phone_index: bytes
    message_id: uuid.UUID
    body: str | None
    received_at: datetime
    # The consent engine acted on it (a keyword, an opt-out...): never a rating.
    consent_acted: bool


_REVIEWS = text(
    """
    SELECT rv.id, rv.phone_index, rv.station_id, rv.campaign_id, rv.customer_id, rv.booking_id, rv.status,
           o.status AS request_status, o.sent_at
    FROM feedback.customer_reviews rv
    LEFT JOIN marketing.campaign_recipients r ON r.id = rv.request_recipient_id
    LEFT JOIN core.outbound_messages o ON o.id = r.outbound_id
    WHERE rv.phone_index = ANY(:indexes) AND rv.deleted_at IS NULL
      AND (rv.status = 'pending' OR rv.replied_at > :since)
    """
)
_CANCEL_FOLLOW_UPS = text(
    """
    WITH steps AS (
      UPDATE marketing.campaign_recipients r SET status = 'cancelled', reason = 'replied', updated_at = now()
      FROM marketing.campaign_steps s
      WHERE r.campaign_id = :campaign AND r.booking_id = :booking AND r.step > 1 AND r.status = 'pending'
        AND s.campaign_id = r.campaign_id AND s.step = r.step AND s.cancel_on_reply
      RETURNING r.id)
    UPDATE core.outbound_messages o SET status = 'cancelled', gate_reason = 'replied', updated_at = now()
    FROM marketing.campaign_recipients r JOIN marketing.campaign_steps s
      ON s.campaign_id = r.campaign_id AND s.step = r.step AND s.cancel_on_reply
    WHERE r.campaign_id = :campaign AND r.booking_id = :booking AND r.step > 1 AND r.status = 'queued'
      AND o.id = r.outbound_id AND o.status = ANY(:cancellable)
    """
)


def handle_replies(session: Session, replies: Sequence[InboundReply]) -> int:
    """Apply the replies that answer a review request; returns how many did (most: none, one query)."""
    if not replies:
        return 0
    since = min(r.received_at for r in replies) - REVIEW_WINDOW
    found = session.execute(_REVIEWS, {"indexes": list({r.phone_index for r in replies}), "since": since}).all()
    if not found:
        return 0
    by_number: dict[tuple[bytes, uuid.UUID], list[Row[Any]]] = {}
    for review in found:
        by_number.setdefault((bytes(review.phone_index), review.station_id), []).append(review)
    handled = 0
    for reply in sorted(replies, key=lambda r: r.received_at):
        for review in by_number.get((reply.phone_index, reply.station_id), []):
            _apply(session, reply, review)
            handled += 1
    return handled


def _apply(session: Session, reply: InboundReply, review: Row[Any]) -> None:
    if review.campaign_id is not None and review.booking_id is not None:
        session.execute(_CANCEL_FOLLOW_UPS, {"campaign": review.campaign_id, "booking": review.booking_id,
                                             "cancellable": list(CANCELLABLE)})
    current = session.execute(text("SELECT status FROM feedback.customer_reviews WHERE id = :id FOR UPDATE"),
                              {"id": review.id}).scalar_one()
    closed = _closed_reason(current, review, reply)
    if closed is not None:
        log.info("review_reply_ignored", review_id=str(review.id), reason=closed, message_id=str(reply.message_id))
        return
    rating = None if reply.consent_acted else parse_rating(reply.body or "")
    status = "pending" if rating is None else ("escalated" if rating == "could_be_better" else "submitted")
    session.execute(text(
        "UPDATE feedback.customer_reviews SET reply_encrypted = :reply, reply_message_id = :message, "
        "replied_at = :at, rating = CAST(:rating AS feedback.review_rating), "
        "status = CAST(:status AS feedback.review_status), "
        "escalated_at = CASE WHEN :status = 'escalated' THEN :at END, updated_at = now() WHERE id = :id"
    ), {"reply": pii.encrypt(reply.body or "", kind="review_reply"), "message": reply.message_id,
        "at": reply.received_at, "rating": rating, "status": status, "id": review.id})
    log.info("review_reply", review_id=str(review.id), rating=rating or "unrated", status=status)
    if status == "escalated":
        _recover(session, review)


def _closed_reason(current: str, review: Row[Any], reply: InboundReply) -> str | None:
    if current != "pending":
        return f"already_{current}"
    if review.request_status not in ("sent", "delivered") or review.sent_at is None:
        return "request_not_sent"
    if reply.received_at < review.sent_at:
        return "before_request"
    if reply.received_at - review.sent_at > REVIEW_WINDOW:
        return "window_passed"
    return None


_RECOVERY_POOL = text(
    """
    SELECT id FROM feedback.coupon_pools
    WHERE purpose = 'service_recovery' AND deleted_at IS NULL AND (station_id = :station OR station_id IS NULL)
    ORDER BY station_id NULLS LAST, created_at LIMIT 1
    """
)
_RECOVERY_CONTEXT = text(
    """
    SELECT c.recovery_template, cu.first_name, cu.phone_encrypted, st.brand_name, st.name
    FROM feedback.customer_reviews rv JOIN core.customers cu ON cu.id = rv.customer_id
    JOIN identity.stations st ON st.id = rv.station_id
    LEFT JOIN marketing.campaigns c ON c.id = rv.campaign_id
    WHERE rv.id = :id
    """
)


def _recover(session: Session, review: Row[Any]) -> None:
    """Issue the service-recovery coupon and text it (marketing: the gate decides as for any offer)."""
    pool_id = session.execute(_RECOVERY_POOL, {"station": review.station_id}).scalar_one_or_none()
    if pool_id is None:
        log.warning("service_recovery_no_pool", review_id=str(review.id), station_id=str(review.station_id))
        return
    [code] = coupons.claim(session, pool_id, [coupons.CodeWant(customer_id=review.customer_id,
                                                               station_id=review.station_id, review_id=review.id)])
    if code is None:
        log.warning("service_recovery_pool_empty", review_id=str(review.id), pool_id=str(pool_id))
        return
    ctx = session.execute(_RECOVERY_CONTEXT, {"id": review.id}).one()
    if not ctx.recovery_template or not ctx.phone_encrypted:
        return  # the coupon stays issued and is shown to staff (feedback escalations)
    body = render(ctx.recovery_template, {"first_name": ctx.first_name or "", "brand": ctx.brand_name,
                                          "station_name": ctx.name, "coupon_code": code[1], "review_link": "",
                                          "booking_date": ""})
    enqueue(session, station_id=review.station_id, to=pii.decrypt(ctx.phone_encrypted, kind="phone"), body=body,
            purpose="marketing", idempotency_key=f"review:{review.id}:recovery", campaign_id=review.campaign_id,
            customer_id=review.customer_id, created_by="campaign")
