"""Two stations' worth of committed data and a token per role, for the admin API's tests.

Everything goes through the real services (staff opt-out, review opening, the outbox) and is
committed, because the API opens its own transactions on its own connections; ``clean_db``
truncates it afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import update

from tests import factories
from worker.audit import Actor
from worker.consent import review, staff
from worker.db import session_scope
from worker.identity import tokens
from worker.models import Message, MessageThread, OutboundMessage, UserRole
from worker.outbound.held import HELD_REASON
from worker.outbox import enqueue

OPERATOR = Actor.cli("test-operator")


@dataclass
class Side:
    """One station's objects."""

    station_id: uuid.UUID
    code: str
    phone: str
    customer_id: uuid.UUID
    thread_id: uuid.UUID
    message_ids: list[uuid.UUID]
    review_id: uuid.UUID
    held_id: uuid.UUID
    send_id: uuid.UUID

    def ids(self) -> set[str]:
        """Every id of this side that a response could carry."""
        return {str(v) for v in (self.station_id, self.customer_id, self.thread_id, self.review_id, self.held_id,
                                 self.send_id, *self.message_ids)}


@dataclass
class World:
    a: Side
    b: Side
    secrets: dict[str, str] = field(default_factory=dict)  # token name -> bearer secret
    token_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}


# Token names: the four roles, and a station manager for each station.
ROLE_TOKENS = {
    "SUPER_ADMIN": (UserRole.SUPER_ADMIN, None),
    "ADMIN": (UserRole.ADMIN, None),
    "CUSTOMER_SUPPORT": (UserRole.CUSTOMER_SUPPORT, None),
    "STATION_MANAGER": (UserRole.STATION_MANAGER, "a"),
    "STATION_MANAGER_B": (UserRole.STATION_MANAGER, "b"),
}


def _side(tag: str) -> Side:
    with session_scope() as s:
        station = factories.make_station(s, code=f"ST{tag.upper()}{uuid.uuid4().hex[:6]}")
        phone = factories.phone()
        customer = factories.make_customer(s, station, phone_e164=phone)
        thread = MessageThread(customer_id=customer.id, channel="sms", station_id=station.id)
        s.add(thread)
        s.flush()
        messages = [
            Message(thread_id=thread.id, station_id=station.id, channel="sms", direction=direction,
                    provider_message_id="SM" + uuid.uuid4().hex, body=text)
            for direction, text in (("inbound", f"hello from {tag}"), ("outbound", f"hi {tag}, see you at 6"))
        ]
        s.add_all(messages)
        s.flush()
        staff.staff_opt_out(s, phone, actor=OPERATOR, station=station, purpose="marketing", note=f"setup {tag}")
        _, item = review.open_review(
            s, phone_e164=phone, station=station, scope_station_id=station.id, message_id=messages[0].id,
            provider_message_id=messages[0].provider_message_id, received_at=datetime.now(UTC),
            classification={"rule": "ambiguous_test", "matched": "cancel"}, evidence={"source": "sms_phrase"},
        )
        assert item is not None
        held = enqueue(s, station=station, to=phone, body=f"20% off at {tag}", purpose="marketing",
                       idempotency_key=f"held:{uuid.uuid4()}").message
        s.execute(update(OutboundMessage).where(OutboundMessage.id == held.id)
                  .values(status="blocked", gate_reason=HELD_REASON))
        sent = enqueue(s, station=station, to=phone, body=f"your chef at {tag}", purpose="transactional",
                       idempotency_key=f"send:{uuid.uuid4()}").message
        return Side(station.id, station.code, phone, customer.id, thread.id, [m.id for m in messages], item.id,
                    held.id, sent.id)


def build_world() -> World:
    world = World(a=_side("a"), b=_side("b"))
    with session_scope() as s:
        for name, (role, side) in ROLE_TOKENS.items():
            station_ids = [getattr(world, side).station_id] if side else []
            issued = tokens.create_token(s, name=f"test-{name.lower()}", role=role, station_ids=station_ids,
                                         actor=OPERATOR)
            world.secrets[name] = issued.secret
            world.token_ids[name] = issued.info.id
    return world
