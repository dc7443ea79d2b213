"""compliance.consent_rules: the pure projection from consent events to consent state."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from compliance.consent_rules import (
    LIFTS_OPT_OUT,
    ConsentSnapshot,
    EventFacts,
    Kind,
    affected_scopes,
    apply_event,
    combine,
    moved_to_opted_out,
    validate,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
OLD_OUT = uuid.UUID(int=1)
OLD_CONSENT = uuid.UUID(int=2)

CLEAN = ConsentSnapshot()
OUT = ConsentSnapshot(opted_out=True, marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)
MKT_OUT = ConsentSnapshot(marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)
CONSENTED = ConsentSnapshot(marketing_consent=True, marketing_consent_event_id=OLD_CONSENT, marketing_consent_at=T0)
REVIEWING = ConsentSnapshot(pending_review=True)


def ev(kind: str, purpose: str = "all", remaining: int | None = None) -> EventFacts:
    return EventFacts(
        id=uuid.UUID(int=99),
        seq=7,
        hash=b"\x07" * 32,
        kind=kind,
        purpose=purpose,
        station_id=None,
        occurred_at=T1,
        open_reviews_remaining=remaining,
    )


NEW = uuid.UUID(int=99)

# (name, before, event, expected consent fields after; last_event_* are checked separately)
CASES = [
    ("stop from clean", CLEAN, ev("opt_out"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW)),
    ("stop revokes marketing consent", CONSENTED, ev("opt_out"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW,
          marketing_consent=False, marketing_consent_event_id=None, marketing_consent_at=None)),
    ("repeated stop keeps the first opt-out event", OUT, ev("opt_out"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)),
    ("transactional-only revocation is read as all", CLEAN, ev("opt_out", "transactional"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW)),
    ("marketing-only opt-out", CONSENTED, ev("opt_out", "marketing"),
     dict(marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW)),
    ("full stop after marketing-only moves again", MKT_OUT, ev("opt_out"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW)),
    ("marketing opt-out when fully out changes nothing", OUT, ev("opt_out", "marketing"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)),
    ("carrier opt-out acts like stop", CLEAN, ev("carrier_opt_out"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW)),
    ("start lifts everything", OUT, ev("opt_in"), dict()),
    ("carrier opt-in lifts everything", OUT, ev("carrier_opt_in"), dict()),
    ("transactional opt-in leaves marketing out", OUT, ev("opt_in", "transactional"),
     dict(marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)),
    ("start does not grant marketing consent", CLEAN, ev("opt_in"), dict()),
    ("marketing consent lifts an opt-out and grants consent", OUT, ev("marketing_consent", "marketing"),
     dict(marketing_consent=True, marketing_consent_event_id=NEW, marketing_consent_at=T1)),
    ("marketing consent revoked", CONSENTED, ev("marketing_consent_revoked", "marketing"),
     dict(marketing_opted_out=True, opted_out_at=T1, opt_out_event_id=NEW)),
    ("help changes nothing", OUT, ev("help_request"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)),
    ("help never lifts an opt-out", OUT, ev("help_request"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT)),
    ("review opened pauses marketing", CLEAN, ev("review_opened", "marketing"), dict(pending_review=True)),
    ("review opened does not lift an opt-out", OUT, ev("review_opened", "marketing"),
     dict(opted_out=True, marketing_opted_out=True, opted_out_at=T0, opt_out_event_id=OLD_OUT, pending_review=True)),
    ("last review resolved lifts the pause", REVIEWING, ev("review_resolved", "marketing", remaining=0), dict()),
    ("resolved with others open keeps the pause", REVIEWING, ev("review_resolved", "marketing", remaining=1),
     dict(pending_review=True)),
    ("resolved without a count lifts the pause", REVIEWING, ev("review_resolved", "marketing"), dict()),
]


@pytest.mark.parametrize(("name", "before", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_apply_event_table(name: str, before: ConsentSnapshot, event: EventFacts, expected: dict[str, object]) -> None:
    """Each event kind moves a state row exactly as the table says (and stamps last_event_*)."""
    after = apply_event(before, event)
    want = replace(ConsentSnapshot(**expected), last_event_id=NEW, last_event_seq=7, last_event_hash=b"\x07" * 32)  # type: ignore[arg-type]
    assert after == want


def test_unknown_kind_is_refused() -> None:
    """The projection refuses an event kind it does not know instead of ignoring it."""
    with pytest.raises(ValueError, match="unknown consent event kind"):
        apply_event(CLEAN, ev("maybe_opt_out"))


@pytest.mark.parametrize(
    ("kind", "purpose", "source"),
    [("opt_outt", "all", "staff"), ("opt_out", "everything", "staff"), ("opt_out", "all", "telepathy")],
)
def test_validate_refuses_unknown_vocabulary(kind: str, purpose: str, source: str) -> None:
    """Kind, purpose and source must be ledger vocabulary."""
    with pytest.raises(ValueError, match="unknown"):
        validate(kind, purpose, source)


def test_moved_to_opted_out_only_on_the_moving_event() -> None:
    """A first STOP moves the row; a repeated STOP does not (so it gets no confirmation)."""
    first = apply_event(CLEAN, ev("opt_out"))
    assert moved_to_opted_out(CLEAN, first, NEW)
    second_event = replace(ev("opt_out"), id=uuid.UUID(int=100))
    assert not moved_to_opted_out(first, apply_event(first, second_event), second_event.id)


def test_affected_scopes() -> None:
    """Business-wide events reach every existing station row; station events only their own."""
    a, b = uuid.UUID(int=10), uuid.UUID(int=11)
    assert affected_scopes(None, []) == [None]
    assert affected_scopes(None, [b, None, a]) == [None, a, b]
    assert affected_scopes(a, [None, b]) == [a]


def test_combine_is_most_restrictive() -> None:
    """An opt-out or review on either covering row wins; consent counts only if nothing revoked it."""
    station_out = replace(OUT, opt_out_event_id=uuid.UUID(int=5))
    merged = combine(CONSENTED, station_out)
    assert merged.opted_out
    assert not merged.marketing_consent
    assert merged.opt_out_event_ids == frozenset({uuid.UUID(int=5)})
    assert combine(None, None).opted_out is False
    ok = combine(CONSENTED, REVIEWING)
    assert ok.marketing_consent
    assert ok.pending_review
    assert ok.marketing_consent_event_id == OLD_CONSENT
    assert combine(MKT_OUT, None).marketing_opted_out
    assert not combine(MKT_OUT, None).opted_out


@pytest.mark.parametrize("kind", list(Kind))
def test_lifts_opt_out_names_exactly_the_kinds_that_lift_one(kind: Kind) -> None:
    """LIFTS_OPT_OUT (the carrier opt-out's once-per-opt-out key) agrees with apply_event on every kind."""
    purpose = "marketing" if kind in (Kind.MARKETING_CONSENT, Kind.MARKETING_CONSENT_REVOKED) else "all"
    after = apply_event(OUT, ev(kind, purpose, remaining=0))
    assert (not after.opted_out) is (kind in LIFTS_OPT_OUT)
