"""The seam between ingest and the consent engine.

Ingest calls ``on_inbound`` inside its transaction, after the message row is written and
before the inbox row is marked processed, so a consent event and its message commit (or
roll back) together.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from worker.inbound import InboundMessage

__all__ = ["is_inert", "on_inbound"]


def on_inbound(session: Session, message: InboundMessage) -> None:
    """Classify the message and record whatever consent it expresses."""
    from worker.consent.inbound import handle_inbound

    handle_inbound(session, message)


def is_inert(*, channel: str, phone_e164: str | None, body: str | None, opt_out_type: str | None) -> bool:
    """True when on_inbound would do nothing at all for this message (pure; see worker.consent.inbound)."""
    from worker.consent.inbound import is_inert as inert

    return inert(channel=channel, phone_e164=phone_e164, body=body, opt_out_type=opt_out_type)
