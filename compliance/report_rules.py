"""What the opt-out audit report says about one revocation, worked out from recorded evidence only.

A TCPA claim asks three things about a revocation, often years later (docs/reports.md):
was it honoured within the legal limit, did its one confirmation go out, and was anything
else sent after it. Every answer here is a pure function of rows the database recorded (the
number's ledger events and its outbox rows), so the same data always gives the same report,
and nothing is inferred from logs or settings that may have changed since.

- **Effective at** is the event's ``recorded_at``: the ledger sets it inside the transaction
  that appends the event and changes consent_state, after taking the per-number lock the send
  path also takes, so no send decision can fall between it and that transaction's commit
  (docs/consent-ledger.md). A decision with a later ``decided_at`` came after the commit.
- **Honour latency** is effective at minus the receipt (``occurred_at``); **business days to
  effective** counts the weekdays that are not US federal holidays strictly after the
  receipt's local date up to the effective date (compliance.business_days), in the station's
  time zone. More than 10 is a violation (FCC 24-24; docs/compliance.md), except for imported
  rows, whose ``occurred_at`` is when the person opted out in the system the file came from.
- **Repeated**: whether the number was already opted out is read by replaying the number's
  ledger through the same projection consent_state is built with (compliance.consent_rules),
  exactly as the inbound path decided it when the text arrived: covered by the business row
  and the receiving station's row, for the revocation's purpose.
- **The confirmation** is the outbox row with purpose ``compliance`` whose
  ``in_reply_to_event_id`` is the event. Its latency counts from the receipt, or, for a
  revocation decided by review, from that decision (only then was the text known to be one).
- **Sends after** are outbox rows the gate allowed with ``decided_at`` after effective at and
  before the revocation's own scope row was lifted by a later event (a START makes later
  texts lawful), in a covered station and purpose, leaving out confirmations of the number's
  opt-outs (counted separately: more than one is a violation of its own).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from compliance.business_days import business_days_between
from compliance.consent_rules import (
    ConsentSnapshot,
    EventFacts,
    Kind,
    Purpose,
    Source,
    affected_scopes,
    apply_event,
    combine,
    moved_to_opted_out,
)

__all__ = [
    "CONFIRMATION_LIMIT",
    "CONSENT_KINDS",
    "DEFAULT_TIMEZONE",
    "HONOUR_LIMIT_BUSINESS_DAYS",
    "REVOCATION_KINDS",
    "Confirmation",
    "Detection",
    "LedgerEvent",
    "NoConfirmation",
    "Outbound",
    "Standing",
    "Violation",
    "confirmation",
    "detection",
    "honour",
    "origin_of",
    "received_station",
    "seconds_text",
    "sends_after",
    "standing",
]

REVOCATION_KINDS = frozenset({Kind.OPT_OUT, Kind.CARRIER_OPT_OUT, Kind.MARKETING_CONSENT_REVOKED})
CONSENT_KINDS = frozenset({Kind.OPT_IN, Kind.CARRIER_OPT_IN, Kind.MARKETING_CONSENT})
OPT_OUT_KINDS = frozenset({Kind.OPT_OUT, Kind.CARRIER_OPT_OUT})
HONOUR_LIMIT_BUSINESS_DAYS = 10
CONFIRMATION_LIMIT = timedelta(minutes=5)
# Business days of a revocation with no station (a business-wide staff change or import)
# are counted in the zone the review queue falls back to (worker/consent/review.py).
DEFAULT_TIMEZONE = "America/New_York"
_REVIEW_METHODS = frozenset({"review_resolved", "review_deadline"})


class Violation(enum.StrEnum):
    SENT_AFTER_OPT_OUT = "sent_after_opt_out"
    HONOURED_LATE = "honoured_late"
    CONFIRMATION_LATE = "confirmation_late"
    CONFIRMATION_MISSING = "confirmation_missing"
    CONFIRMATION_REPEATED = "confirmation_repeated"


class NoConfirmation(enum.StrEnum):
    """Why a revocation has no sent confirmation of ours."""

    PROVIDER_REPLIED = "provider_replied"  # Twilio's Advanced Opt-Out answered the STOP itself
    REPEATED = "repeated_opt_out"  # the number was already opted out: one confirmation per opt-out
    STAFF = "staff_opt_out"  # the person did not text us
    IMPORTED = "imported"
    CARRIER_REFUSED = "carrier_refused"  # 21610: Twilio refuses any text to the number
    NOT_BY_TEXT = "not_by_text"  # web form, API, a marketing-consent withdrawal
    PENDING = "pending"  # due, and the snapshot is still inside its 5 minutes
    MISSING = "missing"  # due and not sent: a violation


# Named tuples, not frozen dataclasses: a report builds several of these per revocation (a
# million-event ledger, about two million), and a frozen dataclass's __init__ (one
# object.__setattr__ per field) costs four times a tuple's; they stay immutable either way.
class LedgerEvent(NamedTuple):
    """One compliance.consent_events row as the report reads it (the fields ``ledger verify`` hashes)."""

    seq: int
    id: uuid.UUID
    station_id: uuid.UUID | None
    kind: str
    purpose: str
    source: str
    evidence: Mapping[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    idempotency_key: str | None
    prev_hash: bytes | None
    hash: bytes


class Outbound(NamedTuple):
    """One core.outbound_messages row to the number: its gate decision and what the provider said."""

    id: uuid.UUID
    station_id: uuid.UUID
    purpose: str
    gate_decision: str | None
    decided_at: datetime | None
    sent_at: datetime | None
    provider_sid: str | None
    status: str
    in_reply_to_event_id: uuid.UUID | None


class Detection(NamedTuple):
    method: str
    classifier_version: str
    matched_rule: str
    matched_text: str


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def origin_of(event: LedgerEvent, by_id: Mapping[uuid.UUID, LedgerEvent]) -> LedgerEvent:
    """The event that carries the person's message: the review_opened event for a revocation
    decided by review (its evidence names it), else the revocation itself."""
    opened = _uuid(event.evidence.get("opened_event_id"))
    if opened is not None and opened in by_id:
        return by_id[opened]
    return event


def _is_review(event: LedgerEvent) -> bool:
    return event.source == Source.REVIEW_DEADLINE or (
        event.source == Source.STAFF and "review_item_id" in event.evidence
    )


def detection(event: LedgerEvent, origin: LedgerEvent) -> Detection:
    """How the revocation was detected, from its recorded source and the classifier's recorded verdict."""
    classification = event.evidence.get("classification") or origin.evidence.get("classification") or {}
    if not isinstance(classification, Mapping):
        classification = {}
    rule, matched = _text(classification.get("rule")), _text(classification.get("matched"))
    version = _text(classification.get("classifier_version"))
    source = event.source
    if event.kind == Kind.CARRIER_OPT_OUT or source == Source.CARRIER_ERROR:
        code = event.evidence.get("error_code")
        return Detection(f"error_{code}" if isinstance(code, int) else "carrier_error", "", "", "")
    if source == Source.TWILIO_OPT_OUT_TYPE:
        opt_out_type = _text(origin.evidence.get("opt_out_type"))
        return Detection("carrier_opt_out_type", version, f"OptOutType={opt_out_type}", matched)
    if source == Source.SMS_KEYWORD:
        method = "exact_keyword"
    elif source == Source.SMS_PHRASE:
        method = "spanish_phrase" if classification.get("language") == "es" else "phrase"
    elif source == Source.REVIEW_DEADLINE:
        method = "review_deadline"
    elif _is_review(event):
        method = "review_resolved"
    else:
        method = str(source)  # staff, import, web_form, api
    return Detection(method, version, rule, matched)


def received_station(
    event: LedgerEvent, origin: LedgerEvent, station_by_code: Mapping[str, uuid.UUID]
) -> uuid.UUID | None:
    """The station the revocation came through: the one texted, the one whose send got the
    21610, the one a staff change or import named; None for a business-wide change with none."""
    for candidate in (
        _uuid(origin.evidence.get("received_station_id")),
        event.station_id,
        _uuid(event.evidence.get("station_id")),
    ):
        if candidate is not None:
            return candidate
    code = event.evidence.get("station_code")
    if isinstance(code, str):
        return station_by_code.get(code.strip().upper())
    return None


class Standing(NamedTuple):
    """The number's consent around one revocation, by replaying its ledger."""

    # Already opted out (for the revocation's purpose) before it, or it moved nothing:
    # the case in which the inbound path sends no second confirmation.
    already_out: bool
    # The last consent-granting event before it in a scope it covers (the consent it revoked).
    prior_consent: LedgerEvent | None
    # recorded_at of the first later event after which the revocation's own scope row was no
    # longer opted out for its purpose (None: still in force at the snapshot).
    lifted_at: datetime | None


def _facts(ev: LedgerEvent) -> EventFacts:
    return EventFacts.from_evidence(
        id=ev.id,
        seq=ev.seq,
        hash=ev.hash,
        kind=ev.kind,
        purpose=ev.purpose,
        station_id=ev.station_id,
        occurred_at=ev.occurred_at,
        evidence=ev.evidence,
    )


def _out(row: ConsentSnapshot | None, marketing_only: bool) -> bool:
    if row is None:
        return False
    return (row.opted_out or row.marketing_opted_out) if marketing_only else row.opted_out


def standing(history: Sequence[LedgerEvent], target: int, received: uuid.UUID | None) -> Standing:
    """Replay ``history`` (the number's events in seq order) around ``history[target]``."""
    event = history[target]
    if len(history) == 1 and event.kind in REVOCATION_KINDS:
        # The number's only event (most numbers in a report): nothing before it, nothing lifts it.
        return Standing(already_out=False, prior_consent=None, lifted_at=None)
    marketing_only = event.purpose == Purpose.MARKETING
    rows: dict[uuid.UUID | None, ConsentSnapshot] = {}
    already_out = was_out = False
    prior: LedgerEvent | None = None
    lifted_at: datetime | None = None
    for i, ev in enumerate(history):
        if i == target:
            cover = combine(rows.get(None), rows.get(received) if received is not None else None)
            was_out = cover.marketing_opted_out if marketing_only else cover.opted_out
        before = rows.copy() if i == target else None
        facts = _facts(ev)
        scopes = affected_scopes(ev.station_id, rows)
        for scope in scopes:
            rows[scope] = apply_event(rows.get(scope, ConsentSnapshot()), facts)
        if i < target:
            if ev.kind in CONSENT_KINDS and (event.station_id is None or ev.station_id in (None, event.station_id)):
                prior = ev
        elif i == target:
            assert before is not None
            moved = any(moved_to_opted_out(before.get(s, ConsentSnapshot()), rows[s], ev.id) for s in scopes)
            already_out = was_out or not moved
        elif not _out(rows.get(event.station_id), marketing_only):
            lifted_at = ev.recorded_at
            break
    return Standing(already_out=already_out, prior_consent=prior, lifted_at=lifted_at)


def honour(event: LedgerEvent, timezone: str) -> tuple[timedelta, int]:
    """(honour latency, business days from receipt to effective) for the revocation."""
    return event.recorded_at - event.occurred_at, business_days_between(event.occurred_at, event.recorded_at, timezone)


class Confirmation(NamedTuple):
    row: Outbound | None  # the first sent one, else the first queued one
    sent_count: int
    latency: timedelta | None
    reason: NoConfirmation | None  # set when none was sent
    violations: tuple[Violation, ...]


def _not_due(event: LedgerEvent, origin: LedgerEvent, method: str, already_out: bool) -> NoConfirmation | None:
    if event.kind == Kind.CARRIER_OPT_OUT:
        return NoConfirmation.CARRIER_REFUSED
    if event.source == Source.IMPORT:
        return NoConfirmation.IMPORTED
    if method == Source.STAFF:
        return NoConfirmation.STAFF
    if event.source in (Source.WEB_FORM, Source.API) or event.kind == Kind.MARKETING_CONSENT_REVOKED:
        return NoConfirmation.NOT_BY_TEXT
    if already_out:
        return NoConfirmation.REPEATED
    if _text(origin.evidence.get("opt_out_type")).strip().upper() == "STOP":
        return NoConfirmation.PROVIDER_REPLIED
    return None


def confirmation(
    event: LedgerEvent,
    origin: LedgerEvent,
    method: str,
    outbound: Sequence[Outbound],
    *,
    already_out: bool,
    snapshot_at: datetime,
) -> Confirmation:
    """The revocation's confirmation: the one sent (latency), or why there is none."""
    mine = [o for o in outbound if o.purpose == "compliance" and o.in_reply_to_event_id == event.id]
    sent = sorted((o for o in mine if o.sent_at is not None), key=lambda o: (o.sent_at, str(o.id)))
    start = event.recorded_at if method in _REVIEW_METHODS else event.occurred_at
    violations: list[Violation] = []
    if sent:
        first = sent[0]
        assert first.sent_at is not None
        latency = first.sent_at - start
        if latency > CONFIRMATION_LIMIT:
            violations.append(Violation.CONFIRMATION_LATE)
        if len(sent) > 1:
            violations.append(Violation.CONFIRMATION_REPEATED)
        return Confirmation(first, len(sent), latency, None, tuple(violations))
    queued = min(mine, key=lambda o: str(o.id)) if mine else None
    reason = _not_due(event, origin, method, already_out)
    if reason is None:
        if snapshot_at - start <= CONFIRMATION_LIMIT:
            reason = NoConfirmation.PENDING
        else:
            reason = NoConfirmation.MISSING
            violations.append(Violation.CONFIRMATION_MISSING)
    return Confirmation(queued, 0, None, reason, tuple(violations))


def sends_after(
    event: LedgerEvent,
    outbound: Sequence[Outbound],
    *,
    lifted_at: datetime | None,
    opt_out_ids: frozenset[uuid.UUID],
) -> list[Outbound]:
    """Texts the gate allowed after the revocation took effect, while it was in force, that it covers."""
    marketing_only = event.purpose == Purpose.MARKETING
    found = [
        o
        for o in outbound
        if o.gate_decision == "allowed"
        and o.decided_at is not None
        and o.decided_at > event.recorded_at
        and (lifted_at is None or o.decided_at < lifted_at)
        and (event.station_id is None or o.station_id == event.station_id)
        and (not marketing_only or o.purpose == "marketing")
        and not (o.purpose == "compliance" and o.in_reply_to_event_id in opt_out_ids)
    ]
    found.sort(key=lambda o: (o.decided_at, str(o.id)))
    return found


def seconds_text(delta: timedelta) -> str:
    """A duration as exact decimal seconds with six places ("-0.000001" .. "86400.000000")."""
    micros = delta // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"
