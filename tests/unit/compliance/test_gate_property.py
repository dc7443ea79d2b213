"""Property: whatever consent events and send requests come, nothing reaches an opted-out number but one confirmation.

Consent state is built by the consent engine's own projection (compliance.consent_rules.apply_event
over affected_scopes), and the oracle is independent of it: it looks only at the latest event
that covers the send (business-wide or this station) among those that change opt-out status.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.consent_rules import ConsentSnapshot, EventFacts, affected_scopes, apply_event
from compliance.gate import GatePolicy, SendFacts, SendPurpose, evaluate_send
from compliance.recipient import locate

STATION = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
OTHER = uuid.UUID("00000000-0000-0000-0000-0000000000b2")
NOON = datetime(2026, 5, 6, 16, 0, tzinfo=UTC)  # noon in New York: quiet hours never interfere
LOCATION = locate("+12125550123")

KINDS = [
    "opt_out",
    "carrier_opt_out",
    "opt_in",
    "carrier_opt_in",
    "marketing_consent",
    "marketing_consent_revoked",
    "review_opened",
    "review_resolved",
    "help_request",
]
OPT_OUTS = {"opt_out", "carrier_opt_out"}
OPT_INS = {"opt_in", "carrier_opt_in", "marketing_consent"}


@dataclass(frozen=True)
class Ev:
    kind: str
    purpose: str
    scope: uuid.UUID | None


@dataclass(frozen=True)
class Send:
    purpose: SendPurpose
    # None, an index into earlier events (wrapped), or -1 for an id nobody recorded.
    reply_to: int | None
    relationship: bool
    marketing_recent: int


events_st = st.builds(
    Ev,
    kind=st.sampled_from(KINDS),
    purpose=st.sampled_from(["all", "marketing", "transactional"]),
    scope=st.sampled_from([None, STATION, OTHER]),
)
sends_st = st.builds(
    Send,
    purpose=st.sampled_from(list(SendPurpose)),
    reply_to=st.one_of(st.none(), st.integers(min_value=-1, max_value=30)),
    relationship=st.booleans(),
    marketing_recent=st.integers(min_value=0, max_value=4),
)


def _covers(scope: uuid.UUID | None) -> bool:
    return scope is None or scope == STATION


def _oracle(log: list[tuple[uuid.UUID, Ev]]) -> tuple[bool, bool]:
    """(fully opted out, marketing opted out) from the latest covering status-changing event."""
    full = [(i, e) for i, e in log if _covers(e.scope) and (e.kind in OPT_OUTS or e.kind in OPT_INS)]
    fully_out = bool(full) and full[-1][1].kind in OPT_OUTS and full[-1][1].purpose != "marketing"
    mkt = [
        (i, e)
        for i, e in log
        if _covers(e.scope)
        and (
            e.kind in OPT_OUTS
            or e.kind == "marketing_consent_revoked"
            or e.kind == "marketing_consent"
            or (e.kind in OPT_INS and e.purpose in ("all", "marketing"))
        )
    ]
    marketing_out = bool(mkt) and (mkt[-1][1].kind in OPT_OUTS or mkt[-1][1].kind == "marketing_consent_revoked")
    return fully_out or False, marketing_out or fully_out


@settings(max_examples=400, deadline=None)
@given(steps=st.lists(st.one_of(events_st, sends_st), min_size=1, max_size=40))
def test_no_send_reaches_an_opted_out_number_but_one_confirmation(steps: list[Ev | Send]) -> None:
    """For any interleaving, an opted-out number gets at most one allowed text, and it is a
    compliance confirmation of an opt-out; a marketing opt-out lets no marketing through."""
    rows: dict[uuid.UUID | None, ConsentSnapshot] = {None: ConsentSnapshot()}
    log: list[tuple[uuid.UUID, Ev]] = []
    confirmed: set[uuid.UUID] = set()
    allowed_while_out = 0
    open_reviews = 0
    for n, step in enumerate(steps):
        if isinstance(step, Ev):
            event_id = uuid.uuid4()
            if step.kind == "review_opened":
                open_reviews += 1
            if step.kind == "review_resolved":
                open_reviews = max(open_reviews - 1, 0)
            facts = EventFacts(
                id=event_id,
                seq=n + 1,
                hash=event_id.bytes * 2,
                kind=step.kind,
                purpose=step.purpose,
                station_id=step.scope,
                occurred_at=NOON + timedelta(seconds=n),
                open_reviews_remaining=open_reviews if step.kind == "review_resolved" else None,
            )
            for scope in affected_scopes(step.scope, list(rows)):
                rows[scope] = apply_event(rows.get(scope, ConsentSnapshot()), facts)
            log.append((event_id, step))
            if not _oracle(log)[0]:
                allowed_while_out = 0
            continue

        reply_to: uuid.UUID | None = None
        if step.reply_to == -1:
            reply_to = uuid.uuid4()
        elif step.reply_to is not None and log:
            reply_to = log[step.reply_to % len(log)][0]
        decision = evaluate_send(
            SendFacts(
                purpose=step.purpose,
                location=LOCATION,
                in_reply_to_event_id=reply_to,
                business=rows.get(None),
                station=rows.get(STATION),
                confirmation_already_sent=reply_to in confirmed,
                has_relationship=step.relationship,
                marketing_sent_last_24h=step.marketing_recent,
            ),
            NOON,
            GatePolicy(),
        )
        fully_out, marketing_out = _oracle(log)
        if not decision.allowed:
            continue
        if reply_to is not None and step.purpose is SendPurpose.COMPLIANCE:
            confirmed.add(reply_to)
        if marketing_out:
            assert step.purpose is not SendPurpose.MARKETING, (log, step, decision)
        if fully_out:
            allowed_while_out += 1
            assert step.purpose is SendPurpose.COMPLIANCE, (log, step, decision)
            kinds = {eid: e.kind for eid, e in log}
            assert reply_to is not None, (log, step, decision)
            assert kinds.get(reply_to) in OPT_OUTS, (log, step, decision)
            assert allowed_while_out <= 1, (log, step, decision)
