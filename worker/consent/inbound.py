"""Inbound messages into consent events. (Being built under the consent issue; until it
lands, inbound messages record no consent.)"""

from __future__ import annotations

from sqlalchemy.orm import Session

from worker.inbound import InboundMessage


def handle_inbound(session: Session, message: InboundMessage) -> None:
    return None
