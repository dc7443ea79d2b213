"""Delivery status of an outbound message as a monotone state machine over Twilio callbacks.

Twilio does not guarantee the order of status callbacks (docs/compliance.md#status-callbacks):
``sent`` can arrive after ``delivered``. So each callback only moves the status
forward by rank and never back; a late ``sent`` is kept as evidence (a delivery event row)
but changes nothing.

Ranks follow Twilio's lifecycle: (accepted|scheduled|queued) -> sending -> sent ->
(delivered|undelivered|failed|partially_delivered) -> read. ``canceled`` only applies
before the message was handed to a carrier and is terminal.

Between the terminal outcomes of one rank, ``delivered`` wins: a handset receipt is proof
of delivery, whatever an earlier carrier report said. Otherwise the first outcome stays.

Pure: no I/O. The worker applies the result (worker/outbound/delivery.py); what a callback's ErrorCode
says about the number is compliance/twilio_errors.py's ``classify_delivery_error``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DELIVERY_RANK",
    "is_known",
    "next_status",
    "outbound_status_for",
]

# Twilio MessageInstance.Status values (docs/compliance.md#status-callbacks) and their rank.
DELIVERY_RANK: Final[dict[str, int]] = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "partially_delivered": 3,
    "read": 4,
}
CANCELED: Final = "canceled"
_CANCELABLE_BELOW_RANK: Final = DELIVERY_RANK["sent"]

# The outbox row's coarse status for each delivery status.
_OUTBOUND_STATUS: Final[dict[str, str]] = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "partially_delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    CANCELED: "cancelled",
}


def is_known(status: str) -> bool:
    """True for an outbound delivery status this machine orders (inbound ones are not)."""
    return status in DELIVERY_RANK or status == CANCELED


def next_status(current: str | None, event: str) -> str | None:
    """The delivery status after a callback reporting ``event`` arrives in state ``current``.

    Unknown event values (``receiving``, ``received``, typos) change nothing.
    """
    if not is_known(event):
        return current
    if current is None or not is_known(current):
        return event
    if current == CANCELED:
        return current
    current_rank = DELIVERY_RANK[current]
    if event == CANCELED:
        return event if current_rank < _CANCELABLE_BELOW_RANK else current
    event_rank = DELIVERY_RANK[event]
    if event_rank > current_rank:
        return event
    if event_rank == current_rank and event == "delivered":
        return event
    return current


def outbound_status_for(delivery_status: str) -> str | None:
    """The outbox status that a delivery status implies (None for an unknown value)."""
    return _OUTBOUND_STATUS.get(delivery_status)
