"""The send gate (compliance.gate.evaluate_send): every rule, their combinations, DST and multi-zone numbers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from compliance.consent_rules import ConsentSnapshot
from compliance.gate import (
    BlockReason,
    GatePolicy,
    Outcome,
    SendDecision,
    SendFacts,
    SendPurpose,
    evaluate_send,
)
from compliance.recipient import locate

NY = ZoneInfo("America/New_York")
E_OPT_OUT = uuid.UUID("00000000-0000-0000-0000-00000000000a")
E_OPT_OUT_2 = uuid.UUID("00000000-0000-0000-0000-00000000000b")
E_CONSENT = uuid.UUID("00000000-0000-0000-0000-00000000000c")
E_LAST = uuid.UUID("00000000-0000-0000-0000-00000000000d")

NYC = locate("+12125550123")  # New York, one zone
NOON_NY = datetime(2026, 5, 6, 12, 0, tzinfo=NY)  # a Wednesday

CONSENTED = ConsentSnapshot(marketing_consent=True, marketing_consent_event_id=E_CONSENT, last_event_id=E_CONSENT)
OPTED_OUT = ConsentSnapshot(
    opted_out=True, marketing_opted_out=True, opt_out_event_id=E_OPT_OUT, last_event_id=E_OPT_OUT
)
MARKETING_OUT = ConsentSnapshot(marketing_opted_out=True, opt_out_event_id=E_OPT_OUT, last_event_id=E_OPT_OUT)
REVIEW = replace(CONSENTED, pending_review=True, last_event_id=E_LAST)


def facts(purpose: SendPurpose, **kw: object) -> SendFacts:
    base: dict[str, object] = {"location": NYC, "has_relationship": True}
    base.update(kw)
    return SendFacts(purpose=purpose, **base)  # type: ignore[arg-type]


M, T, C = SendPurpose.MARKETING, SendPurpose.TRANSACTIONAL, SendPurpose.COMPLIANCE
ALLOWED, BLOCKED, DEFERRED = Outcome.ALLOWED, Outcome.BLOCKED, Outcome.DEFERRED


@pytest.mark.parametrize(
    ("name", "f", "outcome", "reason"),
    [
        # --- consent ---
        ("marketing with consent", facts(M, business=CONSENTED), ALLOWED, None),
        ("marketing with station-level consent", facts(M, station=CONSENTED), ALLOWED, None),
        ("marketing without consent", facts(M), BLOCKED, BlockReason.NO_MARKETING_CONSENT),
        ("marketing after opt-out", facts(M, business=OPTED_OUT), BLOCKED, BlockReason.OPTED_OUT),
        (
            "station opt-out beats business consent",
            facts(M, business=CONSENTED, station=OPTED_OUT),
            BLOCKED,
            BlockReason.OPTED_OUT,
        ),
        (
            "marketing-only opt-out blocks marketing",
            facts(M, business=CONSENTED, station=MARKETING_OUT),
            BLOCKED,
            BlockReason.MARKETING_OPTED_OUT,
        ),
        ("marketing-only opt-out lets transactional through", facts(T, station=MARKETING_OUT), ALLOWED, None),
        ("transactional after opt-out", facts(T, business=OPTED_OUT), BLOCKED, BlockReason.OPTED_OUT),
        ("transactional with a relationship", facts(T), ALLOWED, None),
        (
            "transactional without a relationship",
            facts(T, has_relationship=False),
            BLOCKED,
            BlockReason.NO_RELATIONSHIP,
        ),
        ("compliance needs no relationship", facts(C, has_relationship=False), ALLOWED, None),
        # --- the one confirmation ---
        (
            "the confirmation of the opt-out in force",
            facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT),
            ALLOWED,
            None,
        ),
        (
            "a second confirmation",
            facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT, confirmation_already_sent=True),
            BLOCKED,
            BlockReason.CONFIRMATION_ALREADY_SENT,
        ),
        (
            "a compliance text replying to another event",
            facts(C, business=OPTED_OUT, in_reply_to_event_id=E_LAST),
            BLOCKED,
            BlockReason.OPTED_OUT,
        ),
        ("a compliance text replying to nothing", facts(C, business=OPTED_OUT), BLOCKED, BlockReason.OPTED_OUT),
        (
            "a transactional text claiming to confirm",
            facts(T, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT),
            BLOCKED,
            BlockReason.OPTED_OUT,
        ),
        (
            "two scopes out on different events: no confirmation passes",
            facts(
                C,
                business=OPTED_OUT,
                station=replace(OPTED_OUT, opt_out_event_id=E_OPT_OUT_2),
                in_reply_to_event_id=E_OPT_OUT,
            ),
            BLOCKED,
            BlockReason.OPTED_OUT,
        ),
        (
            "the confirmation ignores quiet hours",
            facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT, is_campaign=True),
            ALLOWED,
            None,
        ),
        # --- review, cap, textability ---
        ("pending review blocks marketing", facts(M, business=REVIEW), BLOCKED, BlockReason.PENDING_REVIEW),
        ("pending review lets transactional through", facts(T, business=REVIEW), ALLOWED, None),
        ("under the cap", facts(M, business=CONSENTED, marketing_sent_last_24h=2), ALLOWED, None),
        ("at the cap", facts(M, business=CONSENTED, marketing_sent_last_24h=3), BLOCKED, BlockReason.FREQUENCY_CAP),
        ("the cap ignores transactional", facts(T, marketing_sent_last_24h=9), ALLOWED, None),
        ("undeliverable number", facts(T, undeliverable_code=30006), BLOCKED, BlockReason.NOT_TEXTABLE),
        (
            "undeliverable beats the confirmation",
            facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT, undeliverable_code=21211),
            BLOCKED,
            BlockReason.NOT_TEXTABLE,
        ),
        # --- precedence: a block wins over every later rule ---
        (
            "opt-out wins over review and cap",
            facts(M, business=replace(OPTED_OUT, pending_review=True), marketing_sent_last_24h=5),
            BLOCKED,
            BlockReason.OPTED_OUT,
        ),
        (
            "no consent wins over the cap",
            facts(M, marketing_sent_last_24h=5),
            BLOCKED,
            BlockReason.NO_MARKETING_CONSENT,
        ),
        # --- unknown place ---
        (
            "marketing to a toll-free number is held",
            facts(M, business=CONSENTED, location=locate("+18005551212")),
            BLOCKED,
            BlockReason.ZONE_UNKNOWN,
        ),
        (
            "marketing to an invalid number is held",
            facts(M, business=CONSENTED, location=locate("+15555550100")),
            BLOCKED,
            BlockReason.ZONE_UNKNOWN,
        ),
        (
            "an address places a toll-free number",
            facts(M, business=CONSENTED, location=locate("+18005551212", "NY")),
            ALLOWED,
            None,
        ),
        ("a transactional reply to a toll-free number", facts(T, location=locate("+18005551212")), ALLOWED, None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_rule_table(name: str, f: SendFacts, outcome: Outcome, reason: BlockReason | None) -> None:
    """Each row: the facts named in its id give the stated outcome and reason at noon in New York."""
    decision = evaluate_send(f, NOON_NY, GatePolicy())
    assert (decision.outcome, decision.reason) == (outcome, reason), decision


@pytest.mark.parametrize(
    ("frozen", "purpose", "campaign", "location", "expected"),
    [
        # Spring forward 2026-03-08: 07:30 EDT -> 08:00 EDT (12:00 UTC).
        ("2026-03-08 11:30:00", M, False, NYC, datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # 01:30 EST, before the jump: still 08:00 EDT, not 08:00 EST.
        ("2026-03-08 06:30:00", M, False, NYC, datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        # Fall back 2026-11-01: 01:30 happens twice; 08:00 EST = 13:00 UTC.
        ("2026-11-01 05:30:00", M, False, NYC, datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        ("2026-11-01 06:30:00", M, False, NYC, datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
        # A campaign's transactional message is held by quiet hours too.
        ("2026-05-06 02:00:00", T, True, NYC, datetime(2026, 5, 6, 12, 0, tzinfo=UTC)),
        # Alaska (Adak + Anchorage): 08:30 AKDT in Anchorage is 07:30 HDT in Adak; 08:00 HDT = 17:00 UTC.
        ("2026-07-01 16:30:00", M, False, locate("+19075550123"), datetime(2026, 7, 1, 17, 0, tzinfo=UTC)),
        # Idaho (Boise + Los Angeles): 08:00 PDT = 15:00 UTC.
        ("2026-07-01 14:30:00", M, False, locate("+12085550123"), datetime(2026, 7, 1, 15, 0, tzinfo=UTC)),
        # South Dakota (Denver + North Dakota/Center): 08:00 MDT = 14:00 UTC.
        ("2026-07-01 13:30:00", M, False, locate("+16055550123"), datetime(2026, 7, 1, 14, 0, tzinfo=UTC)),
        # Pensacola (Chicago zone, Florida 20:00 end): 20:30 CDT -> next day 08:00 CDT.
        ("2026-07-02 01:30:00", M, False, locate("+18504335555"), datetime(2026, 7, 2, 13, 0, tzinfo=UTC)),
        # Tallahassee (New York zone, Florida), but 850 also keeps Central time (split_area_codes.csv):
        # 20:30 EDT -> 08:00 CDT, not 08:00 EDT.
        ("2026-07-02 00:30:00", M, False, locate("+18502245555"), datetime(2026, 7, 2, 13, 0, tzinfo=UTC)),
        # Dallas on a Sunday morning: Texas starts at noon.
        ("2026-05-10 15:00:00", M, False, locate("+12145550123"), datetime(2026, 5, 10, 17, 0, tzinfo=UTC)),
        # Number in New York, address in Texas: Texas's Sunday rule in all of Texas's zones too,
        # so noon in Denver (18:00 UTC), not noon in Chicago.
        ("2026-05-10 15:00:00", M, False, locate("+12125550123", "TX"), datetime(2026, 5, 10, 18, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_defer_to_the_next_lawful_minute(
    frozen: str, purpose: SendPurpose, campaign: bool, location: object, expected: datetime
) -> None:
    """Outside the window the decision is deferred to the exact next lawful minute (clock frozen)."""
    with freeze_time(frozen):
        now = datetime.now(UTC)
        decision = evaluate_send(
            facts(purpose, business=CONSENTED, is_campaign=campaign, location=location), now, GatePolicy()
        )
    assert decision.outcome is DEFERRED
    assert decision.reason is BlockReason.QUIET_HOURS
    assert decision.defer_until == expected
    # At that minute, the same facts are allowed: the deferral names a lawful time.
    again = evaluate_send(facts(purpose, business=CONSENTED, is_campaign=campaign, location=location), expected)
    assert again.outcome is ALLOWED, again


def test_deferral_never_precedes_a_lawful_time_on_the_fall_back_night() -> None:
    """Minute by minute through the repeated hour, every deferral lands on 08:00 EST exactly."""
    start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT
    for minute in range(0, 8 * 60 + 59, 7):
        with freeze_time(start + timedelta(minutes=minute)):
            now = datetime.now(UTC)
            d = evaluate_send(facts(M, business=CONSENTED), now)
        assert d.defer_until == datetime(2026, 11, 1, 13, 0, tzinfo=UTC), now


def test_direct_replies_are_exempt_unless_configured() -> None:
    """At 03:00 a transactional reply goes; with quiet hours on for transactional texts, it waits."""
    three_am = datetime(2026, 5, 6, 3, 0, tzinfo=NY)
    assert evaluate_send(facts(T), three_am).outcome is ALLOWED
    assert evaluate_send(facts(C), three_am).outcome is ALLOWED
    strict = GatePolicy(quiet_hours_for_transactional=True, quiet_hours_for_compliance=True)
    assert evaluate_send(facts(T), three_am, strict).outcome is DEFERRED
    assert evaluate_send(facts(C), three_am, strict).outcome is DEFERRED
    # ... but never the opt-out confirmation, which is due within five minutes (§64.1200(a)(12)).
    confirmation = facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT)
    assert evaluate_send(confirmation, three_am, strict).outcome is ALLOWED


def test_frequency_cap_is_configurable() -> None:
    """The cap is the policy's number."""
    f = facts(M, business=CONSENTED, marketing_sent_last_24h=1)
    assert evaluate_send(f, NOON_NY, GatePolicy(marketing_cap_per_24h=1)).reason is BlockReason.FREQUENCY_CAP
    assert evaluate_send(f, NOON_NY, GatePolicy(marketing_cap_per_24h=2)).outcome is ALLOWED


def test_no_common_window_blocks() -> None:
    """Rhode Island rules across zones 12 hours apart leave no lawful minute: blocked, not deferred forever."""
    loc = replace(NYC, zones=("America/New_York", "Asia/Shanghai"), states=("RI",))
    d = evaluate_send(facts(M, business=CONSENTED, location=loc), NOON_NY)
    assert (d.outcome, d.reason) == (BLOCKED, BlockReason.NO_LAWFUL_WINDOW)


def test_basis_names_the_events_relied_on() -> None:
    """Allowed marketing cites the consent event; a block cites the opt-out; rules are listed."""
    allowed = evaluate_send(facts(M, business=CONSENTED), NOON_NY)
    assert allowed.basis[0] == E_CONSENT
    assert "marketing_consent" in allowed.rules
    assert "quiet_hours" in allowed.rules
    blocked = evaluate_send(facts(M, business=CONSENTED, station=OPTED_OUT), NOON_NY)
    assert E_OPT_OUT in blocked.basis
    assert "opted_out:failed" in blocked.rules
    confirmation = evaluate_send(facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT), NOON_NY)
    assert confirmation.basis == (E_OPT_OUT,)
    assert "opt_out_confirmation" in confirmation.rules


def test_decision_is_a_frozen_json_ready_value() -> None:
    """SendDecision cannot be changed after the fact and serialises for gate_basis."""
    d = evaluate_send(facts(M, business=CONSENTED), datetime(2026, 5, 6, 3, 0, tzinfo=NY))
    with pytest.raises(AttributeError):
        d.outcome = ALLOWED  # type: ignore[misc]
    assert d.to_json() == {
        "outcome": "deferred",
        "reason": "quiet_hours",
        "defer_until": "2026-05-06T12:00:00+00:00",
        "events": [str(E_CONSENT)],
        "rules": [
            "textable",
            "not_opted_out",
            "not_marketing_opted_out",
            "marketing_consent",
            "no_pending_review",
            "frequency_cap<3",
            "quiet_hours:deferred",
        ],
    }
    assert isinstance(d, SendDecision)


TOLL_FREE = locate("+18005550199")  # no zone: marketing to it is held (zone_unknown)


@pytest.mark.parametrize(
    ("name", "f", "now", "outcome", "reason"),
    [
        ("marketing waits for the inbox", facts(M, business=CONSENTED, inbox_pending=True), NOON_NY, DEFERRED,
         BlockReason.INBOX_PENDING),
        ("a transactional text waits too", facts(T, inbox_pending=True), NOON_NY, DEFERRED, BlockReason.INBOX_PENDING),
        ("a HELP or opt-in reply waits too", facts(C, in_reply_to_event_id=E_LAST, inbox_pending=True), NOON_NY,
         DEFERRED, BlockReason.INBOX_PENDING),
        ("the opt-out confirmation does not wait",
         facts(C, business=OPTED_OUT, in_reply_to_event_id=E_OPT_OUT, inbox_pending=True), NOON_NY, ALLOWED, None),
        ("a block wins over the wait", facts(M, inbox_pending=True), NOON_NY, BLOCKED,
         BlockReason.NO_MARKETING_CONSENT),
        ("opted out: blocked, not deferred", facts(T, business=OPTED_OUT, inbox_pending=True), NOON_NY, BLOCKED,
         BlockReason.OPTED_OUT),
        ("an unplaceable number is held, not deferred",
         facts(M, business=CONSENTED, location=TOLL_FREE, inbox_pending=True), NOON_NY, BLOCKED,
         BlockReason.ZONE_UNKNOWN),
        ("quiet hours defer to the morning, not a second", facts(M, business=CONSENTED, inbox_pending=True),
         datetime(2026, 5, 6, 3, 0, tzinfo=NY), DEFERRED, BlockReason.QUIET_HOURS),
        ("nothing pending: allowed", facts(M, business=CONSENTED, inbox_pending=False), NOON_NY, ALLOWED, None),
    ],
)
def test_a_text_waiting_in_the_inbox_defers_every_send_but_the_opt_out_confirmation(
    name: str, f: SendFacts, now: datetime, outcome: Outcome, reason: BlockReason | None
) -> None:
    """A text from the number not yet applied (maybe a STOP) defers what would be allowed, but not the opt-out
    confirmation."""
    decision = evaluate_send(f, now)
    assert (decision.outcome, decision.reason) == (outcome, reason), name
    if reason is BlockReason.INBOX_PENDING:
        assert decision.defer_until == now + GatePolicy().inbox_pending_delay
        assert decision.rules[-1] == "inbox_pending:deferred"
    if outcome is ALLOWED and not f.inbox_pending:
        assert decision.rules[-1] == "inbox_clear"


def test_the_inbox_wait_is_configurable() -> None:
    """GatePolicy.inbox_pending_delay sets how far the send is deferred."""
    policy = GatePolicy(inbox_pending_delay=timedelta(seconds=2))
    decision = evaluate_send(facts(T, inbox_pending=True), NOON_NY, policy)
    assert decision.defer_until == NOON_NY + timedelta(seconds=2)
