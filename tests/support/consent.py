"""Test data for the consent engine: stored inbound messages as ingest hands them over."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from worker import pii
from worker.consent.inbound import InboundMessage
from worker.models import Customer, Message, MessageThread, Station
from worker.settings import Settings, set_settings


def make_inbound(
    session: Session,
    station: Station,
    customer: Customer,
    body: str,
    *,
    opt_out_type: str | None = None,
    provider_message_id: str | None = None,
    received_at: datetime | None = None,
    channel: str = "sms",
) -> InboundMessage:
    """Write the thread and message rows ingest would have written, and return the hand-over."""
    assert customer.phone_encrypted is not None
    number = pii.decrypt(customer.phone_encrypted, kind="phone")
    sid = provider_message_id or f"SM{uuid.uuid4().hex}"
    thread = MessageThread(customer_id=customer.id, channel=channel, station_id=station.id, status="closed")
    session.add(thread)
    session.flush()
    msg = Message(
        thread_id=thread.id,
        station_id=station.id,
        channel=channel,
        direction="inbound",
        provider_message_id=sid,
        body=body,
        meta={"OptOutType": opt_out_type} if opt_out_type else None,
    )
    session.add(msg)
    session.flush()
    return InboundMessage(
        station_id=station.id,
        customer_id=customer.id,
        thread_id=thread.id,
        message_id=msg.id,
        channel=channel,
        phone_e164=number if channel == "sms" else None,
        to_address=station.senders[0].address if station.senders else "+12125550100",
        body=body,
        provider_message_id=sid,
        opt_out_type=opt_out_type,
        messaging_service_sid=None,
        received_at=received_at or datetime.now(UTC),
    )


@contextmanager
def settings_override(**values: Any) -> Iterator[Settings]:
    """Run with some settings changed (constructed like production: environment + overrides)."""
    settings = Settings(**values)
    set_settings(settings)
    try:
        yield settings
    finally:
        set_settings(None)
