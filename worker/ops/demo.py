"""``msgworker demo``: a scripted day against the local services and a built-in fake Twilio.

The point is to show the product working, with the real code paths: inbound texts go into
the webhook inbox and through the real ingest (worker.ingest.drain), consent through the
real ledger, and every outbound text through the real send path (worker.outbound.send: gate,
decision committed, Twilio's official client over HTTP, sid recorded). Only Twilio is fake
(worker/provider/fake/, in this process), and status callbacks are not simulated.

It runs in-process and synchronously so that it works with no worker running, right after
``msgworker db upgrade``. Each run uses fresh (fictional, 555) customer numbers, so it can be
repeated against the same database; the DEMO station is created once. One step uses a
simulated clock: the quiet-hours deferral is decided "at 22:30 in New York" whatever the
real time is. Its transactions are opened by the scope factory ``msgworker demo`` passes in
(worker/cli/demo.py), through the same drain and send flows the worker runs.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import exists, func, select

from compliance.phones import mask
from worker import pii
from worker.audit import Actor
from worker.consent.ledger import record_event
from worker.db import SessionScope
from worker.identity import senders, stations
from worker.ingest.drain import drain
from worker.ingest.payloads import sms_event_id
from worker.models import ConsentEvent, ConsentState, Customer, OutboundMessage, Station, StationSender
from worker.outbound.send import SendResult, send_one
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio
from worker.settings import Settings, get_settings, set_settings
from worker.web import inbox_store

__all__ = ["DEMO_STATION", "DemoResult", "run_demo"]

DEMO_STATION = "DEMO"
DEMO_SENDER = "+12125550199"
NEW_YORK = ZoneInfo("America/New_York")
Out = Callable[[str], None]


@dataclass
class DemoResult:
    steps: list[str] = field(default_factory=list)
    sent: int = 0


class FreshNumbers:
    """Numbers in the fictional 555 exchanges that neither this run nor the database has seen.

    The exchange holds only 9,000 numbers, so two demo runs on one database drew the same number
    now and then; one that an earlier run opted out (or gave consent) changed what this run
    showed: the campaign demo test (two runs, 44 numbers) drew a repeat in about 5 runs of 100.
    """

    def __init__(self, rng: random.Random, scope: SessionScope) -> None:
        self._rng, self._scope, self._drawn = rng, scope, {DEMO_SENDER}

    def new_york(self) -> str:
        return self._draw("+1212555")

    def honolulu(self) -> str:
        return self._draw("+1808555")

    def _draw(self, prefix: str) -> str:
        for _ in range(10_000):
            candidate = f"{prefix}{self._rng.randrange(1000, 10000)}"
            if candidate in self._drawn or not phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                continue
            self._drawn.add(candidate)
            if not self._known(candidate):
                return candidate
        raise DemoFailure(f"no unused demo number left in {prefix}XXXX; run the demo on a fresh database")

    def _known(self, number: str) -> bool:
        index = pii.blind_index(number, kind="phone")
        with self._scope() as session:
            return bool(session.execute(select(
                exists().where(ConsentEvent.phone_index == index)
                | exists().where(Customer.phone_index == index)
                | exists().where(StationSender.address == number)
            )).scalar())


def _station(out: Out, scope: SessionScope) -> tuple[uuid.UUID, str]:
    with scope() as session:
        found = session.execute(
            select(Station).where(func.lower(Station.code) == DEMO_STATION.lower())
        ).scalar_one_or_none()
        if found is None:
            found = stations.create_station(
                session,
                code=DEMO_STATION,
                name="Demo station",
                timezone="America/New_York",
                brand="Hibachi Demo",
                help_text="Hibachi Demo: catering questions at demo@example.test. Msg frequency varies. "
                "Msg & data rates may apply. Reply STOP to opt out.",
                contact="demo@example.test",
                actor=Actor.os_user(),
            )
            senders.create_sender(
                session, station_code=DEMO_STATION, channel="sms", address=DEMO_SENDER, actor=Actor.os_user()
            )
            out(f"created station {DEMO_STATION} (sender {mask(DEMO_SENDER)})")
        sender = session.execute(
            select(StationSender.address).where(StationSender.station_id == found.id, StationSender.channel == "sms")
        ).scalar_one_or_none()
        if sender is None:
            raise RuntimeError(f"station {DEMO_STATION} has no SMS sender; add one with `msgworker sender add`")
        return found.id, sender


def _inbound(out: Out, scope: SessionScope, *, from_: str, to: str, body: str) -> None:
    sid = "SM" + uuid.uuid4().hex
    pairs = [("MessageSid", sid), ("SmsMessageSid", sid), ("SmsSid", sid), ("AccountSid", get_settings().secret(
        "TWILIO_ACCOUNT_SID")), ("From", from_), ("To", to), ("Body", body), ("NumMedia", "0"), ("NumSegments", "1"),
        ("SmsStatus", "received"), ("ApiVersion", "2010-04-01")]
    raw = urlencode(pairs)
    params = dict(pairs)
    inbox_store.store(
        provider="twilio_sms",
        event_id=sms_event_id(params, raw.encode()),
        delivery_id=None,
        content_type="application/x-www-form-urlencoded",
        payload=raw,
    )
    stats = drain(batch_size=50, max_seconds=10.0, scope=scope)
    out(f'  inbound  {mask(from_)} -> {DEMO_STATION}: "{body}"  (webhook stored, ingest processed {stats.processed})')


def _send_pending(scope: SessionScope, index: bytes, settings: Settings) -> list[SendResult]:
    """Run the send path for the number's due rows, in creation order (what the worker would do)."""
    with scope() as session:
        ids = list(
            session.execute(
                select(OutboundMessage.id)
                .where(OutboundMessage.to_index == index, OutboundMessage.status.in_(("pending", "queued")))
                .order_by(OutboundMessage.created_at)
            ).scalars()
        )
    return [send_one(i, settings=settings, scope=scope) for i in ids]


def _show(out: Out, scope: SessionScope, number: str, fake: FakeTwilio, seen: set[str]) -> None:
    index = pii.blind_index(number, kind="phone")
    with scope() as session:
        events = session.execute(
            select(ConsentEvent).where(ConsentEvent.phone_index == index).order_by(ConsentEvent.seq)
        ).scalars().all()
        states = session.execute(
            select(ConsentState).where(ConsentState.phone_index == index).order_by(ConsentState.station_id)
        ).scalars().all()
        rows = session.execute(
            select(OutboundMessage).where(OutboundMessage.to_index == index).order_by(OutboundMessage.created_at)
        ).scalars().all()
        for e in events:
            out(
                f"  ledger   #{e.seq} {e.kind} purpose={e.purpose} source={e.source} "
                f"scope={'business' if e.station_id is None else 'station'} id={str(e.id)[:8]}"
            )
        for st in states:
            out(
                f"  state    {'business' if st.station_id is None else 'station '} opted_out={st.opted_out} "
                f"marketing_consent={st.marketing_consent} pending_review={st.pending_review}"
            )
        if not events:
            out("  ledger   (no consent events)")
        for m in rows:
            when = m.not_before.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M %Z") if m.status == "deferred" else ""
            out(
                f"  outbox   {str(m.id)[:8]} {m.purpose:<13} status={m.status:<9} decision={m.gate_decision or '-'} "
                f"reason={m.gate_reason or '-'} sid={(m.provider_sid or '-')[:12]} {when}".rstrip()
            )
            out(f'           "{m.body[:70]}"')
        if not rows:
            out("  outbox   (nothing queued)")
    for msg in fake.sent_to(number):
        if msg["sid"] not in seen:
            seen.add(msg["sid"])
            out(f'  twilio   received {msg["sid"][:12]} to {mask(number)}: "{msg["body"][:70]}"')


def run_demo(out: Out, *, scope: SessionScope, seed: int | None = None) -> DemoResult:
    """Play the scripted day; returns what it did. Raises on any step that does not behave.

    ``scope`` opens every transaction the demo makes (``session_scope`` from the command).
    """
    base = get_settings()
    fake = FakeTwilio(base.secret("TWILIO_ACCOUNT_SID"), base.secret("TWILIO_AUTH_TOKEN")).start()
    settings = base.model_copy(update={"TWILIO_API_BASE_URL": fake.base_url, "OUTBOUND_RATE_LIMIT_ENABLED": False})
    set_settings(settings)
    result = DemoResult()
    seen: set[str] = set()
    rng = random.Random(seed)
    try:
        out(f"fake Twilio listening on {fake.base_url}; database {settings.DATABASE_URL.rsplit('/', 1)[-1]}")
        station_id, sender = _station(out, scope)
        fresh = FreshNumbers(rng, scope)
        pat, sam = fresh.new_york(), fresh.new_york()
        pat_index = pii.blind_index(pat, kind="phone")

        def step(title: str) -> None:
            result.steps.append(title)
            out("")
            out(f"== Step {len(result.steps)}: {title} ==")

        step("an inbound question")
        _inbound(out, scope, from_=pat, to=sender, body="Hi! What time does the chef arrive on Saturday?")
        _show(out, scope, pat, fake, seen)

        step("STOP, and its one confirmation")
        _inbound(out, scope, from_=pat, to=sender, body="STOP")
        sends = _send_pending(scope, pat_index, settings)
        _expect(any(r.status == "sent" for r in sends), "the opt-out confirmation was not sent")
        _show(out, scope, pat, fake, seen)

        step("a marketing send to the opted-out number: blocked")
        marketing = _put(scope, station_id, pat, "Hibachi Demo: 20% off your next party this month!", "marketing")
        blocked = send_one(marketing, now=datetime.now(UTC), settings=settings, scope=scope)
        _expect(blocked.status == "blocked", f"marketing after STOP was {blocked.status}, not blocked")
        out(f"  gate     blocked: {blocked.reason}")
        _show(out, scope, pat, fake, seen)

        step("a quiet-hours deferral (simulated clock: 22:30 in New York)")
        with scope() as session:
            record_event(
                session,
                phone_e164=sam,
                kind="marketing_consent",
                purpose="marketing",
                source="web_form",
                evidence={"form": "demo sign-up", "disclosure": "I agree to receive marketing texts (demo)"},
                occurred_at=datetime.now(UTC),
            )
        late = datetime.now(NEW_YORK).replace(hour=22, minute=30, second=0, microsecond=0)
        promo = _put(scope, station_id, sam, "Hibachi Demo: weekend slots are open, book now!", "marketing")
        deferred = send_one(promo, now=late, settings=settings, scope=scope)
        _expect(deferred.status == "deferred", f"a 22:30 marketing send was {deferred.status}, not deferred")
        out(f"  gate     deferred ({deferred.reason}) at {late.strftime('%H:%M %Z')} recipient time")
        _show(out, scope, sam, fake, seen)

        step("START")
        _inbound(out, scope, from_=pat, to=sender, body="START")
        sends = _send_pending(scope, pat_index, settings)
        _expect(any(r.status == "sent" for r in sends), "the opt-in confirmation was not sent")
        _show(out, scope, pat, fake, seen)

        step("a transactional send")
        reminder = _put(scope, station_id, pat, "Hibachi Demo: your chef arrives Saturday at 5pm. Reply HELP for help.",
                        "transactional")
        sent = send_one(reminder, settings=settings, scope=scope)
        _expect(sent.status == "sent", f"the transactional send was {sent.status} ({sent.reason})")
        _show(out, scope, pat, fake, seen)

        result.sent = len(fake.messages)
        out("")
        out(f"done: {len(result.steps)} steps, {result.sent} texts reached the fake Twilio; "
            f"every decision is stored on its outbox row (gate_decision, gate_reason, gate_basis).")
        return result
    finally:
        set_settings(None)
        fake.stop()


def _put(scope: SessionScope, station_id: uuid.UUID, to: str, body: str, purpose: str) -> uuid.UUID:
    with scope() as session:
        return enqueue(
            session,
            station_id=station_id,
            to=to,
            body=body,
            purpose=purpose,
            idempotency_key=f"demo:{uuid.uuid4()}",
            created_by="demo",
        ).message.id


class DemoFailure(RuntimeError):
    """Raised when a demo step does not behave as scripted (a real defect, shown to the user)."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailure(message)
