"""handle_inbound on real Postgres: STOP, START, HELP, review and ordinary messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from compliance.keywords import Intent, classify
from tests.factories import make_customer, make_station
from tests.support.consent import make_inbound, settings_override
from worker.consent.inbound import handle_inbound
from worker.consent.ledger import verify_ledger
from worker.consent.state import covering_state
from worker.models import ConsentEvent, Customer, OutboundMessage, ReviewItem, Station
from worker.outbox import enqueue

REVIEW_BODY = "Dont text me at work"


def _events(session: Session, customer: Customer) -> list[ConsentEvent]:
    return list(
        session.execute(
            select(ConsentEvent).where(ConsentEvent.phone_index == customer.phone_index).order_by(ConsentEvent.seq)
        ).scalars()
    )


def _outbox(session: Session, customer: Customer, purpose: str = "compliance") -> list[OutboundMessage]:
    return list(
        session.execute(
            select(OutboundMessage)
            .where(OutboundMessage.to_index == customer.phone_index, OutboundMessage.purpose == purpose)
            .order_by(OutboundMessage.created_at)
        ).scalars()
    )


def _setup(session: Session) -> tuple[Station, Customer]:
    station = make_station(session, brand="Hibachi Home")
    return station, make_customer(session, station)


def _opted_out(session: Session, customer: Customer, station: Station) -> bool:
    assert customer.phone_index is not None
    return covering_state(session, customer.phone_index, station.id).opted_out


def test_stop_records_opt_out_and_queues_one_confirmation(db_session: Session) -> None:
    """STOP: an opt_out event with its evidence, the number opted out, one branded confirmation replying to it."""
    station, customer = _setup(db_session)
    msg = make_inbound(db_session, station, customer, "STOP")
    handle_inbound(db_session, msg)
    (event,) = _events(db_session, customer)
    assert (event.kind, event.purpose, event.source, event.station_id) == ("opt_out", "all", "sms_keyword", None)
    assert event.idempotency_key == f"sms:{msg.provider_message_id}:opt_out"
    assert event.evidence["raw_body"] == "STOP"
    assert event.evidence["provider_message_id"] == msg.provider_message_id
    assert event.evidence["classification"]["rule"] == "exact_keyword"
    assert event.evidence["classification"]["classifier_version"]
    assert _opted_out(db_session, customer, station)
    (confirmation,) = _outbox(db_session, customer)
    assert confirmation.in_reply_to_event_id == event.id
    assert confirmation.idempotency_key == f"consent-confirm:{event.id}"
    assert confirmation.body.startswith("Hibachi Home:")
    assert "START" in confirmation.body
    assert confirmation.channel == "sms"
    assert confirmation.thread_id == msg.thread_id
    assert customer.phone_index is not None
    assert covering_state(db_session, customer.phone_index, station.id).opt_out_event_ids == frozenset({event.id})


def test_duplicate_stop_webhook_sends_one_confirmation(db_session: Session) -> None:
    """The same webhook delivered twice records one event and queues one confirmation."""
    station, customer = _setup(db_session)
    msg = make_inbound(db_session, station, customer, "stop")
    handle_inbound(db_session, msg)
    handle_inbound(db_session, msg)
    assert len(_events(db_session, customer)) == 1
    assert len(_outbox(db_session, customer)) == 1


def test_repeated_stop_is_evidence_but_gets_no_second_confirmation(db_session: Session) -> None:
    """A second STOP (a new message) is recorded, keeps the first opt-out in force, and sends nothing."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP"))
    handle_inbound(db_session, make_inbound(db_session, station, customer, "UNSUBSCRIBE"))
    first, second = _events(db_session, customer)
    assert second.kind == "opt_out"
    (confirmation,) = _outbox(db_session, customer)
    assert confirmation.in_reply_to_event_id == first.id
    assert confirmation.status == "pending"  # the repeated STOP did not cancel it
    assert customer.phone_index is not None
    assert covering_state(db_session, customer.phone_index, station.id).opt_out_event_ids == frozenset({first.id})


def test_opt_out_type_path_sends_no_confirmation(db_session: Session) -> None:
    """Twilio's Advanced Opt-Out already replied (OptOutType=STOP): recorded, opted out, no reply of ours."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP", opt_out_type="STOP"))
    (event,) = _events(db_session, customer)
    assert event.source == "twilio_opt_out_type"
    assert event.evidence["opt_out_type"] == "STOP"
    assert _opted_out(db_session, customer, station)
    assert _outbox(db_session, customer) == []


def test_opt_out_type_confirmation_when_configured(db_session: Session) -> None:
    """With CONSENT_CONFIRM_WHEN_PROVIDER_REPLIED on, the OptOutType path confirms too."""
    station, customer = _setup(db_session)
    with settings_override(CONSENT_CONFIRM_WHEN_PROVIDER_REPLIED=True):
        handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP", opt_out_type="STOP"))
    assert len(_outbox(db_session, customer)) == 1


def test_twilio_custom_keyword_counts_even_if_we_do_not_know_it(db_session: Session) -> None:
    """OptOutType=STOP on a body our classifier does not match is still an opt-out."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "ARRET", opt_out_type="STOP"))
    assert _opted_out(db_session, customer, station)


def test_opt_out_cancels_pending_rows_except_the_confirmation(db_session: Session) -> None:
    """Unsent marketing and transactional rows to the number are cancelled; the confirmation stays."""
    station, customer = _setup(db_session)
    assert customer.phone_encrypted is not None
    from worker import pii

    number = pii.decrypt(customer.phone_encrypted, kind="phone")
    promo = enqueue(db_session, station_id=station.id, to=number, body="Spring special", purpose="marketing",
                    idempotency_key=f"m-{uuid.uuid4()}").message
    reminder = enqueue(db_session, station_id=station.id, to=number, body="See you Sunday", purpose="transactional",
                       idempotency_key=f"t-{uuid.uuid4()}").message
    handle_inbound(db_session, make_inbound(db_session, station, customer, "please stop texting me"))
    (event,) = _events(db_session, customer)
    assert event.source == "sms_phrase"
    db_session.refresh(promo)
    db_session.refresh(reminder)
    assert (promo.status, reminder.status) == ("cancelled", "cancelled")
    assert promo.gate_reason == "opted_out"
    (confirmation,) = _outbox(db_session, customer)
    assert confirmation.status == "pending"


def test_only_an_explicit_opt_in_lifts_an_opt_out(db_session: Session) -> None:
    """After STOP, ordinary messages and HELP change nothing; START lifts it and is confirmed once."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP"))
    handle_inbound(db_session, make_inbound(db_session, station, customer, "Thanks! See you Saturday"))
    help_msg = make_inbound(db_session, station, customer, "HELP")
    handle_inbound(db_session, help_msg)
    assert _opted_out(db_session, customer, station)
    assert [e.kind for e in _events(db_session, customer)] == ["opt_out", "help_request"]
    # HELP from an opted-out number gets no reply: only the opt-out confirmation may reach it.
    assert [m.idempotency_key.split(":")[0] for m in _outbox(db_session, customer)] == ["consent-confirm"]
    start = make_inbound(db_session, station, customer, "START")
    handle_inbound(db_session, start)
    assert not _opted_out(db_session, customer, station)
    replies = _outbox(db_session, customer)
    assert [m.idempotency_key for m in replies][1:] == [f"consent-start:{start.provider_message_id}"]
    assert "STOP" in replies[1].body
    assert verify_ledger(db_session).ok


def test_start_when_not_opted_out_is_recorded_without_a_reply(db_session: Session) -> None:
    """An opt-in keyword from a subscribed number is evidence only (no "you're resubscribed" text)."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "UNSTOP"))
    assert [e.kind for e in _events(db_session, customer)] == ["opt_in"]
    assert _outbox(db_session, customer) == []


def test_help_gets_the_stations_help_text(db_session: Session) -> None:
    """HELP records help_request (station scope) and queues the station's CTIA HELP reply once."""
    station, customer = _setup(db_session)
    msg = make_inbound(db_session, station, customer, "help")
    handle_inbound(db_session, msg)
    handle_inbound(db_session, msg)
    (event,) = _events(db_session, customer)
    assert (event.kind, event.station_id) == ("help_request", station.id)
    (reply,) = _outbox(db_session, customer)
    assert reply.body == station.help_text
    assert reply.purpose == "compliance"
    assert reply.idempotency_key == f"consent-help:{msg.provider_message_id}"
    assert not _opted_out(db_session, customer, station)


def test_help_with_opt_out_type_gets_no_second_reply(db_session: Session) -> None:
    """Twilio answered HELP itself (OptOutType=HELP): we record it and stay quiet."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "HELP", opt_out_type="HELP"))
    assert [e.source for e in _events(db_session, customer)] == ["twilio_opt_out_type"]
    assert _outbox(db_session, customer) == []


def test_ambiguous_message_opens_a_review_and_pauses_marketing(db_session: Session) -> None:
    """A review verdict records review_opened, opens an item due in 10 business days, sets pending_review."""
    assert classify(REVIEW_BODY).intent == Intent.REVIEW, "pick a body the classifier sends to review"
    station, customer = _setup(db_session)
    received = datetime(2025, 11, 21, 20, 0, tzinfo=UTC)  # Fri 15:00 New York, before Thanksgiving week
    msg = make_inbound(db_session, station, customer, REVIEW_BODY, received_at=received)
    handle_inbound(db_session, msg)
    handle_inbound(db_session, msg)
    (event,) = _events(db_session, customer)
    assert (event.kind, event.purpose) == ("review_opened", "marketing")
    (item,) = db_session.execute(select(ReviewItem).where(ReviewItem.phone_index == customer.phone_index)).scalars()
    assert item.status == "open"
    assert item.message_id == msg.message_id
    assert item.opened_event_id == event.id
    assert item.deadline_at == datetime(2025, 12, 8, 20, 0, tzinfo=UTC)
    assert customer.phone_index is not None
    state = covering_state(db_session, customer.phone_index, station.id)
    assert state.pending_review
    assert not state.opted_out
    assert _outbox(db_session, customer) == []


def test_ordinary_message_records_nothing(db_session: Session) -> None:
    """A message with no consent meaning writes no event and no reply."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "What time does the chef arrive?"))
    assert _events(db_session, customer) == []
    assert _outbox(db_session, customer) == []


def test_social_channels_are_outside_the_sms_ledger(db_session: Session) -> None:
    """A Messenger "stop" (no phone number) records nothing in the phone-keyed ledger."""
    station, customer = _setup(db_session)
    handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP", channel="facebook"))
    assert _events(db_session, customer) == []


def test_station_scope_and_stopall(db_session: Session) -> None:
    """With station scope a STOP covers only that station; STOPALL is always business-wide."""
    station, customer = _setup(db_session)
    other = make_station(db_session)
    with settings_override(CONSENT_OPT_OUT_SCOPE="station"):
        handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP"))
        assert _opted_out(db_session, customer, station)
        assert not _opted_out(db_session, customer, other)
        handle_inbound(db_session, make_inbound(db_session, station, customer, "STOPALL"))
    events = _events(db_session, customer)
    assert [(e.kind, e.station_id) for e in events] == [("opt_out", station.id), ("opt_out", None)]
    assert _opted_out(db_session, customer, other)
    # STOPALL widened an opt-out the person already had here: no second confirmation.
    assert [m.in_reply_to_event_id for m in _outbox(db_session, customer)] == [events[0].id]


def test_sender_that_is_not_a_phone_number_is_logged_not_raised(db_session: Session) -> None:
    """A STOP from an unparseable sender records nothing and does not fail ingest's transaction."""
    from dataclasses import replace

    station, customer = _setup(db_session)
    msg = replace(make_inbound(db_session, station, customer, "STOP"), phone_e164="ACME-ALERTS")
    handle_inbound(db_session, msg)
    assert _events(db_session, customer) == []


def test_marketing_only_opt_out_setting(db_session: Session) -> None:
    """With CONSENT_OPT_OUT_PURPOSE=marketing, STOP revokes marketing only and says so; STOPALL revokes all."""
    station, customer = _setup(db_session)
    assert customer.phone_index is not None
    with settings_override(CONSENT_OPT_OUT_PURPOSE="marketing"):
        handle_inbound(db_session, make_inbound(db_session, station, customer, "STOP"))
        state = covering_state(db_session, customer.phone_index, station.id)
        assert (state.opted_out, state.marketing_opted_out) == (False, True)
        (confirmation,) = _outbox(db_session, customer)
        assert "marketing texts" in confirmation.body
        handle_inbound(db_session, make_inbound(db_session, station, customer, "STOPALL"))
    assert covering_state(db_session, customer.phone_index, station.id).opted_out
    assert [e.purpose for e in _events(db_session, customer)] == ["marketing", "all"]
