"""Staff actions and their audit rows (worker/audit.py): one row per action, in the action's own transaction.

Each staff action runs through a scope factory that observes the transaction just before
rolling it back: inside, exactly one new public.audit_logs row names the actor, the action
and the resource, next to the change itself; after the rollback neither remains. Set-up is
committed first (to the test's outer transaction, itself rolled back at the end), so the
rollback can only undo what the action did.
"""

from __future__ import annotations

import base64
import csv
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_station, phone, station_number
from tests.support import env as test_env
from tests.support.consent import make_inbound
from tests.support.webhooks import new_sid, sms_pairs
from worker import pii
from worker.audit import Actor, record
from worker.consent import importer, review, staff
from worker.consent.inbound import handle_inbound
from worker.db import SessionScope
from worker.errors import InvalidInput
from worker.identity import senders, stations
from worker.ingest import service as inbox_service
from worker.models import (
    AuditAction,
    AuditLog,
    ConsentEvent,
    Customer,
    OutboundMessage,
    ReviewItem,
    Station,
    StationSender,
    WebhookInbox,
)
from worker.ops import pii_rotation
from worker.outbound import held
from worker.outbound.staff_send import queue_staff_text
from worker.outbox import enqueue
from worker.pii import KeyRing, key_id_of

ACTOR = Actor.cli("auditor")
Ctx = dict[str, Any]
NEW_KEY = "t2:" + base64.urlsafe_b64encode(b"second-test-pii-key-0123456789ab").decode()
ROTATED_RING = KeyRing.parse(f"{NEW_KEY},t1:{test_env.TEST_PII_KEY}", test_env.TEST_INDEX_KEY)


@dataclass(frozen=True)
class Case:
    """One staff action: its set-up, the action through a scope, and how to see its change."""

    name: str
    action: AuditAction
    resource_type: str
    prepare: Callable[[Session, Path], Ctx]
    run: Callable[[SessionScope, Ctx], None]
    # The audit row's resource_id, read inside the action's transaction.
    resource_id: Callable[[Session, Ctx], str | None]
    # Whether the change is visible (None: a VIEW changes nothing).
    changed: Callable[[Session, Ctx], bool] | None


def _index_hex(number: str) -> str:
    return pii.blind_index(number, kind="phone").hex()


def _events(session: Session, number: str, source: str) -> list[ConsentEvent]:
    return list(
        session.execute(
            select(ConsentEvent).where(
                ConsentEvent.phone_index == pii.blind_index(number, kind="phone"), ConsentEvent.source == source
            )
        ).scalars()
    )


def _latest_event_id(session: Session, ctx: Ctx, source: str) -> str | None:
    found = _events(session, ctx["phone"], source)
    return str(found[-1].id) if found else None


# --- set-ups (committed before the action) ---------------------------------------------------


def _a_number(session: Session, _tmp: Path) -> Ctx:
    return {"phone": phone(), "station": make_station(session)}


def _evidence(session: Session, tmp: Path) -> Ctx:
    ctx = _a_number(session, tmp)
    path = tmp / "consent.json"
    path.write_text(json.dumps({"form": "sign-up", "consented_at": "2026-03-02T15:00:00Z"}))
    ctx["evidence"] = path
    return ctx


def _import_file(session: Session, tmp: Path) -> Ctx:
    ctx = _a_number(session, tmp)
    path = tmp / "optouts.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["phone", "occurred_at"], [ctx["phone"], "2025-06-01T12:00:00Z"]])
    ctx.update(path=path, digest=importer.file_digest(path))
    return ctx


def _open_review(session: Session, _tmp: Path) -> Ctx:
    station = make_station(session)
    customer = make_customer(session, station)
    msg = make_inbound(session, station, customer, "Dont text me at work")
    handle_inbound(session, msg)
    item = session.execute(select(ReviewItem).where(ReviewItem.message_id == msg.message_id)).scalar_one()
    return {"item_id": item.id}


def _held_text(session: Session, _tmp: Path) -> Ctx:
    station = make_station(session)
    mid = enqueue(session, station=station, to="+18005550123", body="Weekend special", purpose="marketing",
                  idempotency_key=uuid.uuid4().hex).message.id
    session.execute(update(OutboundMessage).where(OutboundMessage.id == mid).values(
        status="blocked", gate_reason=held.HELD_REASON))
    return {"message_id": mid}


def _failed_inbox_rows(count: int) -> Callable[[Session, Path], Ctx]:
    def prepare(session: Session, _tmp: Path) -> Ctx:
        to = station_number()
        make_station(session, sms_number=to)  # the cause, fixed: the retry will process them
        ids = []
        for _ in range(count):
            sid = new_sid()
            row = WebhookInbox(
                provider="twilio_sms", provider_event_id=sid, content_type="application/x-www-form-urlencoded",
                payload_encrypted=pii.encrypt(urlencode(sms_pairs(sid=sid, from_=phone(), to=to)), kind="inbox"),
                status="failed", attempts=5, last_error="no station has the SMS number",
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
        return {"inbox_ids": ids}

    return prepare


def _station_code(session: Session, _tmp: Path) -> Ctx:
    return {"code": f"AU{uuid.uuid4().hex[:6]}"}


def _station_without_sender(session: Session, _tmp: Path) -> Ctx:
    station = make_station(session)
    return {"code": station.code, "address": station_number()}


def _customer_under_old_key(session: Session, _tmp: Path) -> Ctx:
    customer = make_customer(session, make_station(session))
    return {"customer_id": customer.id}


# --- actions ---------------------------------------------------------------------------------


def _opt_out(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        staff.staff_opt_out(s, ctx["phone"], actor=ACTOR, note="called the office")


def _opt_in(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        staff.staff_opt_in(s, ctx["phone"], purpose="marketing", evidence_file=ctx["evidence"], actor=ACTOR)


def _import(scope: SessionScope, ctx: Ctx) -> None:
    importer.import_opt_outs(ctx["path"], actor=ACTOR, scope=scope)


def _show(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        staff.consent_summary(s, ctx["phone"], actor=ACTOR)


def _resolve(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        review.resolve(s, ctx["item_id"], resolution="not_opt_out", actor=ACTOR, note="asked about a booking")


def _send(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        station = s.get(Station, ctx["station"].id)
        assert station is not None
        ctx["key"] = f"audit-{uuid.uuid4().hex}"
        queue_staff_text(s, actor=ACTOR, station=station, to=ctx["phone"], body="Your chef arrives at 6pm",
                         purpose="transactional", idempotency_key=ctx["key"])


def _release(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        held.release(s, ctx["message_id"], state="TX", actor=ACTOR, note="lives in Austin")


def _cancel(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        held.cancel(s, ctx["message_id"], actor=ACTOR, note="not our customer")


def _retry_one(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        result = inbox_service.retry_row(s, ctx["inbox_ids"][0], actor=ACTOR)
        assert result is not None


def _retry_all(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        assert inbox_service.retry_failed(s, actor=ACTOR).retried == len(ctx["inbox_ids"])


def _add_station(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        stations.create_station(s, code=ctx["code"], name="Audit", timezone="America/Chicago", brand="Hibachi Home",
                                actor=ACTOR)


def _add_sender(scope: SessionScope, ctx: Ctx) -> None:
    with scope() as s:
        senders.create_sender(s, station_code=ctx["code"], channel="sms", address=ctx["address"], actor=ACTOR)


def _rotate(scope: SessionScope, ctx: Ctx) -> None:
    pii_rotation.rotate_table(scope, pii_rotation.ROTATED_TABLES[0], ROTATED_RING, actor=ACTOR)


# --- what each action changed, seen from inside (or after) its transaction -----------------------


def _message_status(session: Session, ctx: Ctx) -> str:
    return session.execute(
        select(OutboundMessage.status).where(OutboundMessage.id == ctx["message_id"])
    ).scalar_one()


def _inbox_processed(session: Session, ctx: Ctx) -> bool:
    statuses = session.execute(
        select(WebhookInbox.status).where(WebhookInbox.id.in_(ctx["inbox_ids"]))
    ).scalars().all()
    return set(statuses) == {"processed"}


def _station_id(session: Session, ctx: Ctx) -> str | None:
    found = session.execute(select(Station.id).where(Station.code == ctx["code"])).scalar_one_or_none()
    return str(found) if found else None


def _sender_id(session: Session, ctx: Ctx) -> str | None:
    found = session.execute(
        select(StationSender.id).where(StationSender.address == ctx["address"])
    ).scalar_one_or_none()
    return str(found) if found else None


def _rotated(session: Session, ctx: Ctx) -> bool:
    token = session.execute(select(Customer.phone_encrypted).where(Customer.id == ctx["customer_id"])).scalar_one()
    return token is not None and key_id_of(token) == "t2"


def _sent_row(session: Session, ctx: Ctx) -> str | None:
    found = session.execute(
        select(OutboundMessage.id).where(OutboundMessage.idempotency_key == ctx.get("key"))
    ).scalar_one_or_none()
    return str(found) if found else None


CASES = [
    Case("consent opt-out", AuditAction.CREATE, "consent_event", _a_number, _opt_out,
         lambda s, c: _latest_event_id(s, c, "staff"), lambda s, c: bool(_events(s, c["phone"], "staff"))),
    Case("consent opt-in", AuditAction.CREATE, "consent_event", _evidence, _opt_in,
         lambda s, c: _latest_event_id(s, c, "staff"), lambda s, c: bool(_events(s, c["phone"], "staff"))),
    Case("consent import", AuditAction.CREATE, "consent_import", _import_file, _import,
         lambda s, c: c["digest"], lambda s, c: bool(_events(s, c["phone"], "import"))),
    Case("consent show", AuditAction.VIEW, "consent_record", _a_number, _show,
         lambda s, c: _index_hex(c["phone"]), None),
    Case("review resolve", AuditAction.UPDATE, "review_item", _open_review, _resolve,
         lambda s, c: str(c["item_id"]),
         lambda s, c: s.get(ReviewItem, c["item_id"]).status == "resolved_not_opt_out"),  # type: ignore[union-attr]
    Case("msgworker send", AuditAction.CREATE, "outbound_message", _a_number, _send,
         _sent_row, lambda s, c: _sent_row(s, c) is not None),
    Case("held release", AuditAction.UPDATE, "outbound_message", _held_text, _release,
         lambda s, c: str(c["message_id"]), lambda s, c: _message_status(s, c) == "pending"),
    Case("held cancel", AuditAction.UPDATE, "outbound_message", _held_text, _cancel,
         lambda s, c: str(c["message_id"]), lambda s, c: _message_status(s, c) == "cancelled"),
    Case("inbox retry", AuditAction.UPDATE, "webhook_inbox", _failed_inbox_rows(1), _retry_one,
         lambda s, c: str(c["inbox_ids"][0]), _inbox_processed),
    Case("inbox retry --all", AuditAction.UPDATE, "webhook_inbox", _failed_inbox_rows(2), _retry_all,
         lambda s, c: None, _inbox_processed),
    Case("station add", AuditAction.CREATE, "station", _station_code, _add_station,
         _station_id, lambda s, c: _station_id(s, c) is not None),
    Case("sender add", AuditAction.CREATE, "station_sender", _station_without_sender, _add_sender,
         _sender_id, lambda s, c: _sender_id(s, c) is not None),
    Case("pii rotate", AuditAction.UPDATE, "pii_rotation", _customer_under_old_key, _rotate,
         lambda s, c: "core.customers", _rotated),
]


def _audit_ids(session: Session) -> set[uuid.UUID]:
    return set(session.execute(select(AuditLog.id)).scalars())


@dataclass
class Seen:
    rows: list[tuple[str, AuditAction, str, str | None]]  # actor, action, resource type and id
    resource_id: str | None
    changed: bool | None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_staff_action_writes_one_audit_row_in_its_own_transaction(
    db_session: Session, tmp_path: Path, case: Case
) -> None:
    """Inside the action's transaction: its change and exactly one audit row naming actor, action and
    resource; once that transaction is rolled back, neither the row nor the change remains."""
    ctx = case.prepare(db_session, tmp_path)
    before = _audit_ids(db_session)
    db_session.commit()  # the set-up stays; only the action's own transaction is rolled back
    seen: list[Seen] = []

    @contextmanager
    def observed_then_rolled_back() -> Iterator[Session]:
        db_session.expunge_all()
        db_session.begin()
        try:
            yield db_session
            db_session.flush()
            new = [(r.actor, r.action, r.resource_type, r.resource_id)
                   for r in db_session.execute(select(AuditLog)).scalars() if r.id not in before]
            changed = case.changed(db_session, ctx) if case.changed is not None else None
            seen.append(Seen(new, case.resource_id(db_session, ctx), changed))
        finally:
            db_session.rollback()
            db_session.expunge_all()

    case.run(observed_then_rolled_back, ctx)

    acting = [s for s in seen if s.rows or s.changed]
    assert len(acting) == 1, f"{case.name}: {len(acting)} transactions wrote something"
    [inside] = acting
    assert len(inside.rows) == 1, f"{case.name}: {len(inside.rows)} audit rows"
    assert inside.rows == [("cli:auditor", case.action, case.resource_type, inside.resource_id)]
    if case.changed is not None:
        assert inside.changed is True
    assert _audit_ids(db_session) == before
    if case.changed is not None:
        assert case.changed(db_session, ctx) is False


def test_an_import_audits_each_batch_that_records_and_only_those(db_scope: SessionScope, tmp_path: Path) -> None:
    """Batches of 2: a batch already in the ledger writes no audit row; each other batch writes one, with the
    file's digest and its line range, committed with its events."""
    with db_scope() as s:
        make_station(s)
    numbers = [phone() for _ in range(5)]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    for path, rows in ((first, numbers[:2]), (second, numbers)):
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([["phone", "occurred_at"], *[[n, "2025-06-01T12:00:00Z"] for n in rows]])
    importer.import_opt_outs(first, actor=ACTOR, scope=db_scope, batch_size=2)
    report = importer.import_opt_outs(second, actor=Actor.cli("bob"), scope=db_scope, batch_size=2)
    assert (report.recorded, report.already) == (3, 2)
    digest = importer.file_digest(second)
    with db_scope() as s:
        rows = s.execute(
            select(AuditLog).where(AuditLog.resource_type == "consent_import", AuditLog.resource_id == digest)
            .order_by(AuditLog.created_at)
        ).scalars().all()
        assert [(r.actor, r.new_values["first_line"], r.new_values["last_line"], r.new_values["recorded"])  # type: ignore[index]
                for r in rows] in (
            [("cli:bob", 4, 5, 2), ("cli:bob", 6, 6, 1)],
            [("cli:bob", 6, 6, 1), ("cli:bob", 4, 5, 2)],  # one transaction's now(): equal created_at
        )
        assert {r.new_values["file_sha256"] for r in rows} == {digest}  # type: ignore[index]


def test_pii_rotation_audits_each_committed_batch(db_scope: SessionScope) -> None:
    """Three customers under the old key, batches of 2: two audit rows, one per batch, naming the table and key."""
    with db_scope() as s:
        station = make_station(s)
        for _ in range(3):
            make_customer(s, station)
    result = pii_rotation.rotate_table(db_scope, pii_rotation.ROTATED_TABLES[0], ROTATED_RING, actor=ACTOR,
                                       batch_size=2)
    assert (result.batches, result.values) == (2, 3)
    with db_scope() as s:
        rows = s.execute(select(AuditLog).where(AuditLog.resource_type == "pii_rotation")).scalars().all()
        assert sorted((r.resource_id, r.new_values["key_id"], r.new_values["values"]) for r in rows) == [  # type: ignore[index]
            ("core.customers", "t2", 1), ("core.customers", "t2", 2)
        ]


def test_an_action_with_no_one_named_writes_nothing(db_session: Session) -> None:
    """A blank actor is refused before the row is written, so no change can commit without a name."""
    before = db_session.execute(select(func.count()).select_from(AuditLog)).scalar_one()
    with pytest.raises(InvalidInput, match="say who"):
        record(db_session, Actor.cli("  "), action=AuditAction.UPDATE, resource_type="station", resource_id=None)
    assert db_session.execute(select(func.count()).select_from(AuditLog)).scalar_one() == before


def test_actor_labels() -> None:
    """CLI actors keep the cli:<name> spelling, beat jobs system:<job>; API actors carry role and token."""
    assert Actor.cli(" alice ").label == "cli:alice"
    assert Actor.beat("review_deadline").label == "system:review_deadline"
    assert Actor.beat("review_deadline").name == "system:review_deadline"
    api = Actor(who="dana", via="api", user_id=uuid.uuid4(), token_id="tok_1", role="ADMIN")
    assert api.label == "api:dana;role=ADMIN;token=tok_1"
    assert api.name == "dana"
