"""The consent ledger on real Postgres: hash chain, idempotency, projection, tamper detection."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from compliance.consent_hash import HashInput, event_hash
from compliance.errors import LedgerConflict
from tests.factories import make_station, phone
from worker import pii
from worker.consent.ledger import record_carrier_opt_out, record_event, verify_ledger
from worker.consent.state import covering_state
from worker.models import ConsentEvent, ConsentState, OutboundMessage
from worker.outbox import enqueue
from worker.settings import get_settings

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _record(session: Session, number: str, kind: str, *, minutes: int = 0, key: str | None = None,
            station_id: uuid.UUID | None = None, purpose: str = "all") -> tuple[ConsentEvent, bool]:
    result = record_event(
        session,
        phone_e164=number,
        kind=kind,
        purpose=purpose,
        source="staff",
        evidence={"by": "test", "n": minutes},
        occurred_at=T0 + timedelta(minutes=minutes),
        station_id=station_id,
        idempotency_key=key,
    )
    return result.event, result.created


def _events(session: Session, number: str) -> list[ConsentEvent]:
    idx = pii.blind_index(number, kind="phone")
    return list(
        session.execute(
            select(ConsentEvent).where(ConsentEvent.phone_index == idx).order_by(ConsentEvent.seq)
        ).scalars()
    )


def _raw(session: Session, sql: str, **params: object) -> None:
    """Run SQL with triggers off (what an attacker with database access would do)."""
    session.execute(text("SET LOCAL session_replication_role = replica"))
    session.execute(text(sql), params)
    session.execute(text("SET LOCAL session_replication_role = origin"))


def test_events_chain_per_number(db_session: Session) -> None:
    """Each event's prev_hash is the previous event's hash for the same number; hashes recompute."""
    a, b = phone(), phone()
    _record(db_session, a, "opt_out")
    _record(db_session, b, "opt_out")
    _record(db_session, a, "opt_in", minutes=1)
    _record(db_session, a, "opt_out", minutes=2)
    chain = _events(db_session, a)
    assert [e.kind for e in chain] == ["opt_out", "opt_in", "opt_out"]
    assert chain[0].prev_hash is None
    assert chain[1].prev_hash == chain[0].hash
    assert chain[2].prev_hash == chain[1].hash
    assert _events(db_session, b)[0].prev_hash is None
    for e in chain:
        recomputed = event_hash(
            HashInput(
                id=e.id, phone_index=e.phone_index, station_id=e.station_id, kind=e.kind, purpose=e.purpose,
                source=e.source, evidence=e.evidence, occurred_at=e.occurred_at, recorded_at=e.recorded_at,
                idempotency_key=e.idempotency_key, prev_hash=e.prev_hash,
            )
        )
        assert recomputed == e.hash
    report = verify_ledger(db_session)
    assert report.ok, report.as_dict()
    assert report.events >= 4


def test_idempotency_key_records_once(db_session: Session) -> None:
    """The same idempotency key twice is one event; the second call reports created False."""
    n = phone()
    first, created1 = _record(db_session, n, "opt_out", key=f"sms:SM{uuid.uuid4().hex}:opt_out")
    second, created2 = _record(db_session, n, "opt_out", key=first.idempotency_key)
    assert (created1, created2) == (True, False)
    assert second.id == first.id
    assert len(_events(db_session, n)) == 1


def test_idempotency_key_for_another_number_is_refused(db_session: Session) -> None:
    """Reusing a key for a different number is a bug and raises instead of silently merging."""
    key = f"sms:SM{uuid.uuid4().hex}:opt_out"
    _record(db_session, phone(), "opt_out", key=key)
    with pytest.raises(LedgerConflict, match="another number"):
        _record(db_session, phone(), "opt_out", key=key)


def test_state_changes_with_the_event(db_session: Session) -> None:
    """consent_state follows opt_out then opt_in; opt_out_event_id names the event that moved it."""
    n = phone()
    out, _ = _record(db_session, n, "opt_out")
    idx = pii.blind_index(n, kind="phone")
    state = covering_state(db_session, idx, None)
    assert state.opted_out
    assert state.opt_out_event_ids == frozenset({out.id})
    again, _ = _record(db_session, n, "opt_out", minutes=1)
    assert covering_state(db_session, idx, None).opt_out_event_ids == frozenset({out.id})
    _record(db_session, n, "opt_in", minutes=2)
    assert not covering_state(db_session, idx, None).opted_out
    row = db_session.execute(select(ConsentState).where(ConsentState.phone_index == idx)).scalar_one()
    assert row.last_event_seq == _events(db_session, n)[-1].seq
    assert again.id != out.id


def test_business_event_reaches_station_rows(db_session: Session) -> None:
    """A business-wide opt-in lifts a station's own opt-out; a station opt-in does not lift a business one."""
    st = make_station(db_session)
    n = phone()
    idx = pii.blind_index(n, kind="phone")
    _record(db_session, n, "opt_out", station_id=st.id)
    assert covering_state(db_session, idx, st.id).opted_out
    assert not covering_state(db_session, idx, None).opted_out
    _record(db_session, n, "opt_in", minutes=1)
    assert not covering_state(db_session, idx, st.id).opted_out
    _record(db_session, n, "opt_out", minutes=2)
    _record(db_session, n, "opt_in", minutes=3, station_id=st.id)
    assert covering_state(db_session, idx, st.id).opted_out
    assert verify_ledger(db_session).ok


def test_carrier_opt_out_is_once_per_number_and_scope_and_cancels_unsent(db_session: Session) -> None:
    """A 21610 records one carrier_opt_out for the number and scope, whichever text and path report it
    (the refused create or a status callback), and cancels the number's queued rows."""
    st = make_station(db_session)
    n = phone()
    pending = enqueue(db_session, station_id=st.id, to=n, body="Your booking is tomorrow", purpose="transactional",
                      idempotency_key=f"t-{uuid.uuid4()}").message
    first = record_carrier_opt_out(db_session, phone_e164=n, station_id=st.id, error_code=21610,
                                   provider_ref="outbound:a", reported_via="status_callback", occurred_at=T0,
                                   provider_sid="SMabc")
    again = record_carrier_opt_out(db_session, phone_e164=n, station_id=st.id, error_code=21610,
                                   provider_ref="outbound:b", reported_via="send_response", occurred_at=T0)
    assert first.created
    assert not again.created
    assert again.event.id == first.event.id
    assert first.event.kind == "carrier_opt_out"
    assert first.event.source == "carrier_error"
    assert first.event.evidence["reported_via"] == "status_callback"
    assert first.event.evidence["provider_sid"] == "SMabc"
    scope = "business" if get_settings().CONSENT_OPT_OUT_SCOPE == "business" else str(st.id)
    index = pii.blind_index(n, kind="phone")
    assert first.event.idempotency_key == f"carrier-opt-out:{index.hex()}:{scope}:0"
    assert first.moved_to_opted_out
    assert len(_events(db_session, n)) == 1
    db_session.refresh(pending)
    assert pending.status == "cancelled"
    assert covering_state(db_session, first.event.phone_index, st.id).opted_out


def test_verify_names_an_altered_row(db_session: Session) -> None:
    """An UPDATE made with the trigger disabled is caught: verify names that event's seq."""
    n = phone()
    _record(db_session, n, "opt_out")
    middle, _ = _record(db_session, n, "opt_in", minutes=1)
    _record(db_session, n, "opt_out", minutes=2)
    assert verify_ledger(db_session).ok
    _raw(db_session, "UPDATE compliance.consent_events SET kind = 'opt_out' WHERE seq = :seq", seq=middle.seq)
    report = verify_ledger(db_session)
    assert not report.ok
    assert report.first_break is not None
    assert report.first_break.seq == middle.seq
    assert report.first_break.event_id == middle.id
    assert "altered" in report.first_break.reason


def test_verify_catches_a_rehashed_row_at_the_next_link(db_session: Session) -> None:
    """Altering a row AND recomputing its hash breaks the next event's prev_hash link."""
    n = phone()
    _record(db_session, n, "opt_out")
    middle, _ = _record(db_session, n, "opt_in", minutes=1)
    last, _ = _record(db_session, n, "opt_out", minutes=2)
    forged = event_hash(
        HashInput(
            id=middle.id, phone_index=middle.phone_index, station_id=None, kind="opt_out", purpose=middle.purpose,
            source=middle.source, evidence=middle.evidence, occurred_at=middle.occurred_at,
            recorded_at=middle.recorded_at, idempotency_key=middle.idempotency_key, prev_hash=middle.prev_hash,
        )
    )
    _raw(db_session, "UPDATE compliance.consent_events SET kind = 'opt_out', hash = :h WHERE seq = :seq",
         h=forged, seq=middle.seq)
    report = verify_ledger(db_session)
    assert report.first_break is not None
    assert report.first_break.seq == last.seq
    assert "prev_hash does not match" in report.first_break.reason


def test_verify_catches_a_deleted_middle_event(db_session: Session) -> None:
    """Deleting an event from the middle of a chain is reported at the event after the gap."""
    n = phone()
    _record(db_session, n, "opt_out")
    middle, _ = _record(db_session, n, "opt_in", minutes=1)
    last, _ = _record(db_session, n, "opt_out", minutes=2)
    _raw(db_session, "DELETE FROM compliance.consent_events WHERE seq = :seq", seq=middle.seq)
    report = verify_ledger(db_session)
    assert report.first_break is not None
    assert report.first_break.seq == last.seq
    assert "missing" in report.first_break.reason


def test_verify_catches_deleted_first_and_last_events(db_session: Session) -> None:
    """A deleted first event leaves a dangling prev_hash; a deleted last event leaves the state ahead."""
    n = phone()
    first, _ = _record(db_session, n, "opt_out")
    second, _ = _record(db_session, n, "opt_in", minutes=1)
    third, _ = _record(db_session, n, "opt_out", minutes=2)
    _raw(db_session, "DELETE FROM compliance.consent_events WHERE seq IN (:a, :b)", a=first.seq, b=third.seq)
    report = verify_ledger(db_session)
    assert report.first_break is not None
    assert report.first_break.seq == second.seq
    assert "earlier events are missing" in report.first_break.reason
    assert report.mismatch_count >= 1
    assert any("last_event" in m.reason for m in report.mismatches)


def test_verify_catches_a_state_row_edited_by_hand(db_session: Session) -> None:
    """Flipping consent_state.opted_out by SQL disagrees with the ledger replay."""
    n = phone()
    _record(db_session, n, "opt_out")
    idx = pii.blind_index(n, kind="phone")
    db_session.execute(text("UPDATE compliance.consent_state SET opted_out = false WHERE phone_index = :i"), {"i": idx})
    report = verify_ledger(db_session)
    assert report.break_count == 0
    assert report.mismatch_count == 1
    assert "opted_out" in report.mismatches[0].reason


def test_confirmation_survives_a_repeated_opt_out(db_session: Session) -> None:
    """Rows replying to the opt-out in force are kept when a second STOP cancels unsent rows."""
    from worker.consent.effects import cancel_after_opt_out, queue_opt_out_confirmation

    st = make_station(db_session)
    n = phone()
    out = record_event(db_session, phone_e164=n, kind="opt_out", purpose="all", source="sms_keyword",
                       evidence={}, occurred_at=T0)
    conf = queue_opt_out_confirmation(db_session, station=st, phone_e164=n, event_id=out.event.id)
    promo = enqueue(db_session, station_id=st.id, to=n, body="20% off", purpose="marketing",
                    idempotency_key=f"m-{uuid.uuid4()}").message
    cancel_after_opt_out(db_session, out.event.phone_index)
    statuses = {
        i: s
        for i, s in db_session.execute(
            select(OutboundMessage.id, OutboundMessage.status).where(OutboundMessage.id.in_([conf.id, promo.id]))
        )
    }
    assert statuses == {conf.id: "pending", promo.id: "cancelled"}


def test_verify_reports_progress_in_steps_that_add_up_to_the_events(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ledger verify` takes minutes on a million events; its progress callback is told in steps
    (every _PROGRESS_EVERY events, here 2) and the steps add up to every event checked."""
    from worker.consent import verify as verify_module

    monkeypatch.setattr(verify_module, "_PROGRESS_EVERY", 2)
    for n in range(5):
        _record(db_session, phone(), "opt_out", minutes=n)
    steps: list[int] = []
    report = verify_ledger(db_session, progress=steps.append)
    assert report.ok
    assert sum(steps) == report.events >= 5
    assert len(steps) >= 3
