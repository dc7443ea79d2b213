"""What ingest hands to the consent engine: one stored inbound message, with its context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

__all__ = ["InboundMessage"]


@dataclass(frozen=True, slots=True)
class InboundMessage:
    station_id: uuid.UUID
    customer_id: uuid.UUID
    thread_id: uuid.UUID
    message_id: uuid.UUID
    channel: str  # "sms" | "facebook" | "instagram"
    # The sender's E.164 number (SMS); None on social channels.
    phone_e164: str | None
    # Our address the message was sent to (the station's number or page id).
    to_address: str
    body: str
    provider_message_id: str
    # Twilio Advanced Opt-Out's verdict ("STOP" | "START" | "HELP"), when present.
    opt_out_type: str | None
    messaging_service_sid: str | None
    received_at: datetime
