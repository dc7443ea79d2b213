"""How consent events change consent state: a pure projection.

compliance.consent_state is a projection of compliance.consent_events. The same
function, :func:`apply_event`, maintains it when an event is recorded and replays it when
``msgworker ledger verify`` checks that the stored state matches the ledger, so the two
can never drift apart by construction, only by tampering.

State rows and scopes
---------------------
A number has one business-wide row (``station_id`` NULL) and, once a station-scoped
event touches it, one row per station. :func:`affected_scopes` says which rows an event
changes: a business-wide event changes the business row and every existing station row
(a business-wide START must lift a station's earlier opt-out too); a station event
changes only its station's row. A send is covered by the business row and its station's
row; :func:`combine` merges them, most restrictive first (a narrower opt-in never lifts
a broader opt-out).

Rules (FCC 24-24; docs/compliance.md#consent-tiers)
---------------------------------------------------
- opt_out / carrier_opt_out, purpose all (or transactional, read as all): revoked for
  every purpose, marketing consent gone. Purpose marketing: marketing only.
- Only opt_in / carrier_opt_in / marketing_consent lift an opt-out; nothing else does.
  Any opt-in lifts the full opt-out; purpose all or marketing also lifts a marketing
  opt-out. An opt-in never grants marketing consent: that needs a marketing_consent
  event (prior express written consent, with its evidence).
- A repeated opt-out keeps the FIRST opt-out event as ``opt_out_event_id``: the one
  confirmation text references it, and the send gate lets exactly that one through.
- review_opened pauses marketing; review_resolved lifts the pause only when no other
  review for the number is still open (``open_reviews_remaining`` in its evidence).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

__all__ = [
    "ConsentSnapshot",
    "EffectiveConsent",
    "EventFacts",
    "Kind",
    "Purpose",
    "Source",
    "affected_scopes",
    "apply_event",
    "combine",
    "combine_all",
    "moved_to_opted_out",
    "validate",
]


class Kind(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    MARKETING_CONSENT = "marketing_consent"
    MARKETING_CONSENT_REVOKED = "marketing_consent_revoked"
    HELP_REQUEST = "help_request"
    REVIEW_OPENED = "review_opened"
    REVIEW_RESOLVED = "review_resolved"
    CARRIER_OPT_OUT = "carrier_opt_out"
    CARRIER_OPT_IN = "carrier_opt_in"


class Purpose(enum.StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"
    ALL = "all"


class Source(enum.StrEnum):
    SMS_KEYWORD = "sms_keyword"
    SMS_PHRASE = "sms_phrase"
    TWILIO_OPT_OUT_TYPE = "twilio_opt_out_type"
    CARRIER_ERROR = "carrier_error"
    WEB_FORM = "web_form"
    API = "api"
    STAFF = "staff"
    IMPORT = "import"
    REVIEW_DEADLINE = "review_deadline"


OPT_OUT_KINDS = frozenset({Kind.OPT_OUT, Kind.CARRIER_OPT_OUT})
OPT_IN_KINDS = frozenset({Kind.OPT_IN, Kind.CARRIER_OPT_IN})
# Every kind that can lift a full opt-out (apply_event below): after one of these, a new
# opt-out is news again.
LIFTS_OPT_OUT = OPT_IN_KINDS | {Kind.MARKETING_CONSENT}


@dataclass(frozen=True, slots=True)
class ConsentSnapshot:
    """One consent_state row's consent fields (the default is "nothing on record")."""

    opted_out: bool = False
    marketing_opted_out: bool = False
    opted_out_at: datetime | None = None
    opt_out_event_id: uuid.UUID | None = None
    marketing_consent: bool = False
    marketing_consent_event_id: uuid.UUID | None = None
    marketing_consent_at: datetime | None = None
    pending_review: bool = False
    last_event_id: uuid.UUID | None = None
    last_event_seq: int | None = None
    last_event_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the projection needs to know about one recorded event."""

    id: uuid.UUID
    seq: int
    hash: bytes
    kind: str
    purpose: str
    station_id: uuid.UUID | None
    occurred_at: datetime
    # review_resolved only: how many reviews for the number are still open after it.
    open_reviews_remaining: int | None = None

    @classmethod
    def from_evidence(
        cls,
        *,
        id: uuid.UUID,
        seq: int,
        hash: bytes,
        kind: str,
        purpose: str,
        station_id: uuid.UUID | None,
        occurred_at: datetime,
        evidence: Mapping[str, Any],
    ) -> EventFacts:
        remaining = evidence.get("open_reviews_remaining")
        return cls(
            id=id,
            seq=seq,
            hash=hash,
            kind=kind,
            purpose=purpose,
            station_id=station_id,
            occurred_at=occurred_at,
            open_reviews_remaining=remaining if isinstance(remaining, int) else None,
        )


def validate(kind: str, purpose: str, source: str) -> None:
    """ValueError unless kind, purpose and source are ledger vocabulary."""
    if kind not in Kind.__members__.values():
        raise ValueError(f"unknown consent event kind {kind!r}")
    if purpose not in Purpose.__members__.values():
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if source not in Source.__members__.values():
        raise ValueError(f"unknown consent event source {source!r}")


def _opt_out(state: ConsentSnapshot, event: EventFacts, marketing_only: bool) -> dict[str, Any]:
    moved = not (state.opted_out or state.marketing_opted_out) if marketing_only else not state.opted_out
    changes: dict[str, Any] = {
        "marketing_opted_out": True,
        "marketing_consent": False,
        "marketing_consent_event_id": None,
        "marketing_consent_at": None,
    }
    if not marketing_only:
        changes["opted_out"] = True
    if moved:
        changes["opted_out_at"] = event.occurred_at
        changes["opt_out_event_id"] = event.id
    return changes


def _opt_in(state: ConsentSnapshot, marketing_too: bool) -> dict[str, Any]:
    still_out = state.marketing_opted_out and not marketing_too
    changes: dict[str, Any] = {"opted_out": False, "marketing_opted_out": still_out}
    if not still_out:
        changes["opted_out_at"] = None
        changes["opt_out_event_id"] = None
    return changes


def apply_event(state: ConsentSnapshot, event: EventFacts) -> ConsentSnapshot:
    """The row's state after ``event`` (which must cover the row: see affected_scopes)."""
    kind = event.kind
    if kind in OPT_OUT_KINDS:
        changes = _opt_out(state, event, marketing_only=event.purpose == Purpose.MARKETING)
    elif kind in OPT_IN_KINDS:
        changes = _opt_in(state, marketing_too=event.purpose in (Purpose.ALL, Purpose.MARKETING))
    elif kind == Kind.MARKETING_CONSENT:
        # Recorded written consent to marketing texts: the person asked for texts again.
        changes = _opt_in(state, marketing_too=True)
        changes.update(
            marketing_consent=True, marketing_consent_event_id=event.id, marketing_consent_at=event.occurred_at
        )
    elif kind == Kind.MARKETING_CONSENT_REVOKED:
        changes = _opt_out(state, event, marketing_only=True)
    elif kind == Kind.REVIEW_OPENED:
        changes = {"pending_review": True}
    elif kind == Kind.REVIEW_RESOLVED:
        changes = {"pending_review": (event.open_reviews_remaining or 0) > 0}
    elif kind == Kind.HELP_REQUEST:
        changes = {}
    else:
        raise ValueError(f"unknown consent event kind {kind!r}")
    return replace(state, last_event_id=event.id, last_event_seq=event.seq, last_event_hash=event.hash, **changes)


def moved_to_opted_out(before: ConsentSnapshot, after: ConsentSnapshot, event_id: uuid.UUID) -> bool:
    """True when this event is what put the row into (a more) opted-out state."""
    return after.opt_out_event_id == event_id and before.opt_out_event_id != event_id


def affected_scopes(
    event_station_id: uuid.UUID | None, existing_station_ids: Iterable[uuid.UUID | None]
) -> list[uuid.UUID | None]:
    """The state rows (by station_id, None = business-wide) an event changes, in a fixed order.

    Business-wide: the business row and every existing station row. Station: that row only.
    """
    if event_station_id is not None:
        return [event_station_id]
    stations = sorted({s for s in existing_station_ids if s is not None}, key=str)
    return [None, *stations]


@dataclass(frozen=True, slots=True)
class EffectiveConsent:
    """What covers one send: the business row and the station's row, merged."""

    opted_out: bool
    marketing_opted_out: bool
    marketing_consent: bool
    pending_review: bool
    # The opt-out events currently in force; a compliance confirmation may reach an
    # opted-out number only if it replies to one of these.
    opt_out_event_ids: frozenset[uuid.UUID]
    marketing_consent_event_id: uuid.UUID | None
    basis_event_ids: tuple[uuid.UUID, ...]


def combine(business: ConsentSnapshot | None, station: ConsentSnapshot | None) -> EffectiveConsent:
    """Merge the rows that cover a send: any opt-out or review wins; consent from either."""
    return combine_all((business, station))


def combine_all(snapshots: Iterable[ConsentSnapshot | None]) -> EffectiveConsent:
    """combine() over any number of rows (e.g. every scope of a number, for a summary)."""
    rows = [r for r in snapshots if r is not None]
    opted_out = any(r.opted_out for r in rows)
    marketing_opted_out = any(r.opted_out or r.marketing_opted_out for r in rows)
    consent_rows = [r for r in rows if r.marketing_consent]
    return EffectiveConsent(
        opted_out=opted_out,
        marketing_opted_out=marketing_opted_out,
        marketing_consent=bool(consent_rows) and not marketing_opted_out,
        pending_review=any(r.pending_review for r in rows),
        opt_out_event_ids=frozenset(
            r.opt_out_event_id
            for r in rows
            if (r.opted_out or r.marketing_opted_out) and r.opt_out_event_id is not None
        ),
        marketing_consent_event_id=consent_rows[0].marketing_consent_event_id if consent_rows else None,
        basis_event_ids=tuple(r.last_event_id for r in rows if r.last_event_id is not None),
    )
