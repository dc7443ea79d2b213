"""The seam between ingest and the consent engine.

Ingest calls ``on_inbound`` inside its transaction, after the message row is written and
before the inbox row is marked processed, so a consent event and its message commit (or
roll back) together.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from worker.inbound import InboundMessage

__all__ = ["on_inbound"]


def on_inbound(session: Session, message: InboundMessage) -> None:
    """Classify the message and record whatever consent it expresses."""
    from worker.consent.inbound import handle_inbound

    handle_inbound(session, message)
