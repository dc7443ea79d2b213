"""worker/metrics.py and worker/metrics_worker.py against the real database: counted only when the
transaction commits, the invariant's classification from the facts, and the scrape-time database gauges.

This process has no PROMETHEUS_MULTIPROC_DIR, so values live in its default registry; each test reads
differences, since other tests in the run count too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from prometheus_client import REGISTRY
from sqlalchemy import text

from compliance.consent_rules import ConsentSnapshot
from compliance.gate import Outcome, SendDecision, SendFacts, SendPurpose
from compliance.recipient import RecipientLocation
from tests.factories import make_station, phone
from tests.support.servers import BlackHole
from worker import metrics, pii
from worker.consent.ledger import record_event
from worker.db import session_scope
from worker.metrics_worker import DatabaseGauges
from worker.outbox import enqueue
from worker.settings import get_settings


def value(name: str, **labels: str) -> float:
    metrics.exposition()  # the families exist
    return REGISTRY.get_sample_value(name, labels) or 0.0


def opt_out(session: Any, number: str, *, source: str = "sms_keyword") -> uuid.UUID:
    return record_event(
        session, phone_e164=number, kind="opt_out", purpose="all", source=source, evidence={"test": True},
        occurred_at=datetime.now(UTC) - timedelta(seconds=2),
    ).event.id


def test_ledger_events_count_at_commit_and_not_after_a_rollback(clean_db: str) -> None:
    """A committed texted opt-out counts once with a honour latency from its occurred_at; one rolled back, or
    recorded in a savepoint that rolled back, counts nothing."""
    before = value("msgworker_consent_events_total", kind="opt_out", source="sms_keyword")
    honour = value("msgworker_opt_out_honour_seconds_count")
    honour_sum = value("msgworker_opt_out_honour_seconds_sum")
    with session_scope() as s:
        opt_out(s, phone())
        assert value("msgworker_consent_events_total", kind="opt_out", source="sms_keyword") == before  # not yet
    assert value("msgworker_consent_events_total", kind="opt_out", source="sms_keyword") == before + 1
    assert value("msgworker_opt_out_honour_seconds_count") == honour + 1
    assert 2 <= value("msgworker_opt_out_honour_seconds_sum") - honour_sum < 30

    with pytest.raises(RuntimeError), session_scope() as s:  # noqa: PT012 - the scope must see the event first
        opt_out(s, phone())
        raise RuntimeError("roll back")
    with session_scope() as s:
        savepoint = s.begin_nested()
        opt_out(s, phone())
        savepoint.rollback()
        opt_out(s, phone(), source="staff")
    assert value("msgworker_consent_events_total", kind="opt_out", source="sms_keyword") == before + 1
    assert value("msgworker_opt_out_honour_seconds_count") == honour + 1  # a staff opt-out has no webhook


def _facts(purpose: SendPurpose, *, opted_out_by: uuid.UUID | None, reply_to: uuid.UUID | None,
           already: bool = False) -> SendFacts:
    business = None
    if opted_out_by is not None:
        business = ConsentSnapshot(opted_out=True, marketing_opted_out=True, opt_out_event_id=opted_out_by)
    return SendFacts(purpose=purpose, location=RecipientLocation((), (), False), business=business,
                     in_reply_to_event_id=reply_to, confirmation_already_sent=already)


def test_an_allowed_send_to_an_opted_out_number_is_classified_from_the_facts(clean_db: str) -> None:
    """Whatever the gate said: allowed + opted out + a compliance reply to the opt-out in force is the
    confirmation; again after one went is repeat_confirmation; anything else is other. Blocked decisions and
    numbers not opted out are not classified at all."""
    event = uuid.uuid4()
    allowed = SendDecision(Outcome.ALLOWED)
    kinds = ("confirmation", "repeat_confirmation", "other")
    before = {k: value("msgworker_sends_allowed_while_opted_out_total", kind=k) for k in kinds}
    decided = value("msgworker_send_decisions_total", outcome="allowed", reason="none", purpose="marketing")
    with session_scope() as s:
        metrics.send_decided(s, _facts(SendPurpose.COMPLIANCE, opted_out_by=event, reply_to=event), allowed)
        metrics.send_decided(s, _facts(SendPurpose.COMPLIANCE, opted_out_by=event, reply_to=event, already=True),
                             allowed)
        metrics.send_decided(s, _facts(SendPurpose.MARKETING, opted_out_by=event, reply_to=None), allowed)
        metrics.send_decided(s, _facts(SendPurpose.COMPLIANCE, opted_out_by=event, reply_to=uuid.uuid4()), allowed)
        metrics.send_decided(s, _facts(SendPurpose.MARKETING, opted_out_by=None, reply_to=None), allowed)
        metrics.send_decided(s, _facts(SendPurpose.MARKETING, opted_out_by=event, reply_to=None),
                             SendDecision(Outcome.BLOCKED))
    after = {k: value("msgworker_sends_allowed_while_opted_out_total", kind=k) - before[k] for k in kinds}
    assert after == {"confirmation": 1, "repeat_confirmation": 1, "other": 2}
    assert value("msgworker_send_decisions_total", outcome="allowed", reason="none", purpose="marketing") == decided + 2


def gauges(settings: Any = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in DatabaseGauges(settings).collect()
        for s in family.samples
    }


def test_the_database_gauges_see_lag_unsent_confirmations_and_overdue_reviews(clean_db: str) -> None:
    """A pending inbox row 90 s old, a confirmation of a 400 s old opt-out still pending, and a review item
    past its deadline are what the scrape reports."""
    number = phone()
    with session_scope() as s:
        station = make_station(s)
        with freeze_time(datetime.now(UTC) - timedelta(seconds=400)):  # the ledger is append-only: record it "then"
            event_id = opt_out(s, number)
        s.execute(text("UPDATE core.outbound_messages SET status = 'sent' WHERE in_reply_to_event_id = :e"),
                  {"e": event_id})
        enqueue(s, station=station, to=number, body="You are opted out", purpose="compliance",
                idempotency_key=f"gauge-{uuid.uuid4().hex}", in_reply_to_event_id=event_id)
        s.execute(text("INSERT INTO core.webhook_inbox (provider, provider_event_id, payload_encrypted, received_at) "
                       "VALUES ('twilio_sms', :id, 'x', now() - interval '90 seconds')"), {"id": uuid.uuid4().hex})
        s.execute(text("INSERT INTO compliance.review_items (phone_index, phone_encrypted, classification, deadline_at)"
                       " VALUES (:idx, :enc, '{}', now() - interval '1 minute')"),
                  {"idx": pii.blind_index(number, kind="phone"), "enc": pii.encrypt(number, kind="phone")})
    got = gauges()
    assert got[("msgworker_database_gauges_up", ())] == 1
    assert got[("msgworker_inbox_pending_rows", ())] == 1
    assert 90 <= got[("msgworker_inbox_oldest_pending_age_seconds", ())] < 120
    assert 400 <= got[("msgworker_confirmation_oldest_unsent_age_seconds", ())] < 430
    assert got[("msgworker_outbox_rows", (("status", "pending"),))] == 1
    assert got[("msgworker_review_items", (("state", "overdue"),))] == 1
    assert got[("msgworker_review_items", (("state", "due"),))] == 0


def test_a_silent_database_reports_the_gauges_down_within_the_deadline() -> None:
    """A database that accepts the connection and never answers: the scrape says up 0 within the 3 s answer
    limit (plus the 3 s connect limit at most) rather than hanging."""
    hole = BlackHole()
    try:
        settings = get_settings().model_copy(
            update={"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{hole.port}/msgworker"}
        )
        started = datetime.now(UTC)
        got = gauges(settings)
        took = (datetime.now(UTC) - started).total_seconds()
    finally:
        hole.close()
    assert got == {("msgworker_database_gauges_up", ()): 0}
    assert took < 7
