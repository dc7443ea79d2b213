"""Grouped ingest of consent texts (STOP, START, HELP, OptOutType, revocations) against row by row.

A drain batch's SMS rows are applied together (worker.ingest.handlers.apply_sms_group); a
failed group is applied row by row (drain.process_items(group_sms=False) is that path alone).
The property test applies the same batch both ways on the real database, each in a savepoint
undone afterwards, and compares what a compliance audit would read: every number's ledger in
order (kind, purpose, source, scope, idempotency key, evidence, occurred_at), the chain verified
by `ledger verify` in each run, the consent state, the outbox (confirmations, replies,
cancellations and their reasons), the review items, the messages and each inbox row's outcome.
Event ids, message ids and recorded_at differ between two runs (random, the clock), so the
comparison names an event by its idempotency key and a message by its MessageSid; a hash covers
its event's id and recorded_at, so hashes are checked by recomputation (verify), not equality.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_station, phone
from tests.support.consent import settings_override
from tests.support.webhooks import sms_pairs
from worker import pii
from worker.consent.ledger import record_event, verify_ledger
from worker.db import SessionScope
from worker.ingest.drain import RowResult, drain, load_items, process_items
from worker.ingest.handlers import InboxItem, Prepared, prepare
from worker.locks import number_lock_key
from worker.models import Station, WebhookInbox
from worker.outbox import enqueue

# (body, OptOutType): conversation, every consent path, Advanced Opt-Out and an unknown OptOutType.
TEXTS: list[tuple[str, str | None]] = [
    ("See you at 6?", None),
    ("Thanks, the chef was great", None),
    ("STOP", None),
    ("Stop please", None),
    ("STOPALL", None),
    ("please stop texting me", None),
    ("START", None),
    ("HELP", None),
    ("Dont text me at work", None),  # review
    ("STOP", "STOP"),  # Twilio's Advanced Opt-Out already replied
    ("START", "START"),
    ("HELP", "HELP"),
    ("hello there", "SOMETHINGNEW"),  # an OptOutType we do not know
]
PLAIN, STOP, REVOKE, START, HELP = 0, 2, 5, 6, 7
NUMBERS = 5
BASE_TIME = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)

# One text: (number, text, station, redelivery of an earlier text's MessageSid or None).
Row = tuple[int, int, int, int | None]


@pytest.fixture
def world(db_session: Session) -> tuple[list[Station], list[str]]:
    """Two stations and five numbers, in the test's rolled-back transaction."""
    return [make_station(db_session), make_station(db_session)], [phone() for _ in range(NUMBERS)]


def _prestate(session: Session, stations: list[Station], numbers: list[str]) -> None:
    """Number 0 opted out already; number 1 has a marketing and a transactional text waiting."""
    record_event(session, phone_e164=numbers[0], kind="opt_out", purpose="all", source="staff",
                 evidence={"by": "test"}, occurred_at=BASE_TIME - timedelta(days=1), idempotency_key="test:prior")
    later = BASE_TIME + timedelta(days=1)
    for purpose in ("marketing", "transactional"):
        enqueue(session, station=stations[0], to=numbers[1], body=f"a {purpose} text", purpose=purpose,
                idempotency_key=f"test:{purpose}", not_before=later)


def _store(session: Session, addresses: list[str], numbers: list[str], rows: list[Row]) -> list[uuid.UUID]:
    ids = []
    for i, (number, which, station, again) in enumerate(rows):
        body, opt_out_type = TEXTS[which]
        # A redelivery repeats an earlier text's MessageSid (and its payload) in a new inbox row.
        sid = f"SM{(again if again is not None and again < i else i):032x}"
        if again is not None and again < i:
            number, which, station, _ = rows[again]
            body, opt_out_type = TEXTS[which]
        to = addresses[station]
        extra = [("OptOutType", opt_out_type)] if opt_out_type else []
        row = WebhookInbox(
            provider="twilio_sms", provider_event_id=f"event-{i}", content_type="application/x-www-form-urlencoded",
            payload_encrypted=pii.encrypt(urlencode(sms_pairs(sid=sid, from_=numbers[number], to=to, body=body,
                                                              extra=extra)), kind="inbox"),
            # Distinct arrival times: the drain orders a number's texts by them.
            received_at=BASE_TIME + timedelta(milliseconds=i),
        )
        session.add(row)
        session.flush()
        ids.append(row.id)
    return ids


def _snapshot(session: Session, numbers: list[str], results: list[RowResult]) -> dict[str, Any]:
    """What an audit reads of the run, with run-specific ids replaced by what they stand for."""
    indexes = [pii.blind_index(n, kind="phone") for n in numbers]
    params = {"idx": indexes}
    events = session.execute(text(
        "SELECT id, phone_index, kind, purpose, source, station_id, idempotency_key, evidence, occurred_at"
        " FROM compliance.consent_events WHERE phone_index = ANY(:idx) ORDER BY phone_index, seq"), params).all()
    key = {e.id: e.idempotency_key for e in events}
    key[None] = None

    def named(idempotency_key: str) -> str:
        prefix, _, rest = idempotency_key.partition(":")
        return f"{prefix}:{key[uuid.UUID(rest)]}" if prefix == "consent-confirm" else idempotency_key

    inbox = dict(session.execute(text("SELECT id, provider_event_id FROM core.webhook_inbox")).all())
    report = verify_ledger(session)
    return {
        "ledger verify ok": report.ok,
        "events": [(e.phone_index, e.kind, e.purpose, e.source, e.station_id, e.idempotency_key,
                    {k: v for k, v in e.evidence.items() if k != "message_id"}, e.occurred_at) for e in events],
        "states": sorted((s.phone_index, str(s.station_id), s.opted_out, s.marketing_opted_out, s.marketing_consent,
                          s.pending_review, key[s.opt_out_event_id], key[s.last_event_id]) for s in session.execute(
            text("SELECT * FROM compliance.consent_state WHERE phone_index = ANY(:idx)"), params)),
        "outbox": sorted((named(o.idempotency_key), o.to_index, o.station_id, o.purpose, o.status, o.gate_reason,
                          o.body, key[o.in_reply_to_event_id], o.not_before) for o in session.execute(
            text("SELECT * FROM core.outbound_messages WHERE to_index = ANY(:idx)"), params)),
        "reviews": sorted((r.phone_index, r.station_id, r.status, r.deadline_at, key[r.opened_event_id], r.sid)
                          for r in session.execute(text(
            "SELECT r.*, m.provider_message_id AS sid FROM compliance.review_items r"
            " LEFT JOIN core.messages m ON m.id = r.message_id WHERE r.phone_index = ANY(:idx)"), params)),
        "messages": sorted(session.execute(text(
            "SELECT provider_message_id, body FROM core.messages m JOIN core.message_threads t ON t.id = m.thread_id"
            " JOIN core.customers c ON c.id = t.customer_id WHERE c.phone_index = ANY(:idx)"), params).all()),
        "inbox": sorted((inbox[r.inbox_id], r.outcome, r.reason) for r in results),
    }


@dataclass
class Run:
    snapshot: dict[str, Any]
    logs: list[dict[str, Any]]
    recorded_at: set[datetime]  # of the batch's events (not compared: it is the clock's)


@pytest.fixture
def run_both(db_session: Session, world: tuple[list[Station], list[str]]) -> Callable[..., Run]:
    """Apply rows grouped or row by row, each time from the same state, in a savepoint undone after."""
    stations, numbers = world

    def run(rows: list[Row], *, grouped: bool) -> Run:
        savepoint = db_session.begin_nested()
        try:
            _prestate(db_session, stations, numbers)
            ids = _store(db_session, [st.senders[0].address for st in stations], numbers, rows)
            with structlog.testing.capture_logs() as logs:
                results = process_items(db_session, load_items(db_session, ids), group_sms=grouped)
            recorded = set(db_session.execute(text(
                "SELECT recorded_at FROM compliance.consent_events WHERE idempotency_key LIKE 'sms:%'")).scalars())
            return Run(_snapshot(db_session, numbers, results), logs, recorded)
        finally:
            savepoint.rollback()
            db_session.expunge_all()
            db_session.add_all(stations)

    return run


rows_strategy = st.lists(
    st.tuples(st.integers(0, NUMBERS - 1), st.integers(0, len(TEXTS) - 1), st.integers(0, 1),
              st.one_of(st.none(), st.none(), st.none(), st.integers(0, 29))),
    min_size=1, max_size=30,
)


@pytest.mark.parametrize("scope", ["business", "station"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy)
# A question, STOP, START, STOP from number 2 (four rounds; the second STOP cancels the first one's
# confirmation if unsent), beside other numbers' texts and a redelivered STOP.
@example(rows=[(2, PLAIN, 0, None), (2, STOP, 0, None), (3, STOP, 1, None), (2, START, 0, None), (1, STOP, 0, None),
               (2, STOP, 1, None), (0, START, 0, None), (4, PLAIN, 1, None), (3, STOP, 1, 2)])
def test_grouped_batch_gives_what_row_by_row_gives(run_both: Callable[..., Run], scope: str, rows: list[Row]) -> None:
    """For any mix of texts from repeated senders, the grouped batch leaves the ledger, state, outbox, reviews,
    messages and row outcomes that applying its rows one by one leaves, without falling back."""
    with settings_override(CONSENT_OPT_OUT_SCOPE=scope):
        grouped = run_both(rows, grouped=True)
        alone = run_both(rows, grouped=False)
    assert [e for e in grouped.logs if e["event"] == "inbox_group_fallback"] == []
    assert grouped.snapshot["ledger verify ok"]
    assert alone.snapshot["ledger verify ok"]
    for part, value in grouped.snapshot.items():
        assert value == alone.snapshot[part], part


def test_a_batchs_consent_texts_are_recorded_together(run_both: Callable[..., Run]) -> None:
    """STOP, START, HELP and a revocation from five numbers in one batch are recorded by one ledger write (one
    recorded_at), each with its confirmation or reply; row by row, each text is a write of its own."""
    rows: list[Row] = [(0, START, 0, None), (1, STOP, 0, None), (2, HELP, 0, None), (3, REVOKE, 1, None),
                       (4, STOP, 1, None), (1, PLAIN, 0, None)]
    for grouped, writes in ((True, 1), (False, 5)):
        run = run_both(rows, grouped=grouped)
        assert len(run.recorded_at) == writes
        replies = sorted(o[0].split(":")[0] for o in run.snapshot["outbox"] if o[3] == "compliance")
        assert replies == ["consent-confirm", "consent-confirm", "consent-confirm", "consent-help", "consent-start"]
        # The STOP cancelled number 1's waiting texts.
        assert {o[0]: o[4:6] for o in run.snapshot["outbox"] if o[0].startswith("test:")} == {
            "test:marketing": ("cancelled", "opted_out"), "test:transactional": ("cancelled", "opted_out")}


def test_an_error_inside_a_group_falls_back_row_by_row_without_loss(db_scope: SessionScope) -> None:
    """The database refuses the HELP reply of one text in a mixed group: the group is undone and applied row by
    row, that one row fails with the refusal, and every other text is stored with its consent effects."""
    with db_scope() as session:
        addresses = [make_station(session).senders[0].address]
        numbers = [phone() for _ in range(NUMBERS)]
        session.execute(text(
            "CREATE FUNCTION pg_temp.refuse_help() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.idempotency_key LIKE 'consent-help:%' THEN"
            "  RAISE EXCEPTION 'refused for the test' USING ERRCODE = '22023'; END IF;"
            " RETURN NEW; END $$"))
        session.execute(text("CREATE TRIGGER refuse_help BEFORE INSERT ON core.outbound_messages FOR EACH ROW"
                             " EXECUTE FUNCTION pg_temp.refuse_help()"))
    rows: list[Row] = [(1, PLAIN, 0, None), (1, STOP, 0, None), (2, HELP, 0, None), (3, START, 0, None),
                       (4, REVOKE, 0, None)]
    with db_scope() as session:
        _store(session, addresses, numbers, rows)
    try:
        with structlog.testing.capture_logs() as logs:
            stats = drain(batch_size=50, max_seconds=30, scope=db_scope)
    finally:
        with db_scope() as session:
            session.execute(text("DROP TRIGGER refuse_help ON core.outbound_messages"))
    assert [e["rows"] for e in logs if e["event"] == "inbox_group_fallback"] == [5]
    assert (stats.processed, stats.failed, stats.retry) == (4, 1, 0)
    with db_scope() as session:
        outcome = dict(session.execute(text("SELECT provider_event_id, status FROM core.webhook_inbox")).all())
        assert outcome == {"event-0": "processed", "event-1": "processed", "event-2": "failed",
                           "event-3": "processed", "event-4": "processed"}
        error = session.execute(text("SELECT last_error FROM core.webhook_inbox WHERE provider_event_id = 'event-2'"))
        assert "refused for the test" in error.scalar_one()
        snap = _snapshot(session, numbers, [])
    assert snap["ledger verify ok"]
    assert [(e[0], e[1]) for e in snap["events"]] == sorted(
        [(pii.blind_index(numbers[1], kind="phone"), "opt_out"), (pii.blind_index(numbers[3], kind="phone"), "opt_in"),
         (pii.blind_index(numbers[4], kind="phone"), "opt_out")])
    assert sorted(o[0].split(":")[0] for o in snap["outbox"]) == ["consent-confirm", "consent-confirm"]
    assert [m[1] for m in snap["messages"]].count("HELP") == 0
    assert len(snap["messages"]) == 4


def test_sms_rows_are_applied_in_their_numbers_lock_order() -> None:
    """A batch's SMS rows sort by their numbers' advisory lock keys, ascending and signed (the order lock_numbers
    and the send path take them in, so a drain and a send cannot deadlock), and a number's texts by arrival."""
    senders = [phone() for _ in range(40)]
    senders += [senders[3], senders[3]]  # a number texting three times
    items = [
        InboxItem(uuid.uuid4(), "twilio_sms", pii.encrypt(urlencode(sms_pairs(
            sid=f"SM{i:032x}", from_=sender, to="+12125550100", body=f"text {i}")), kind="inbox"),
            "application/x-www-form-urlencoded", BASE_TIME + timedelta(milliseconds=i), 1)
        for i, sender in enumerate(senders)
    ]
    ordered = sorted((prepare(item) for item in items), key=lambda p: p.sort_key)
    keys = [number_lock_key(pii.blind_index(_sender(p), kind="phone"))[1] for p in ordered]
    assert keys == sorted(keys)
    assert min(keys) < 0 < max(keys)  # both signs: an unsigned (hex) order would differ
    repeated = [p.item.received_at for p in ordered if _sender(p) == senders[3]]
    assert repeated == sorted(repeated)
    assert len(repeated) == 3


def _sender(prepared: Prepared) -> str:
    return dict(parse_qsl(pii.decrypt(prepared.item.payload_encrypted, kind="inbox")))["From"]
