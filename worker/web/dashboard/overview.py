"""The overview's figures for a range and a station, read in the page's transaction (row-level security on).

The opt-out report (worker/reports/opt_outs.py) replays each revocation's whole history to
write its row; a page that must answer in well under a second over a million ledger events
cannot. So the figures are aggregates of one statement that reads only the revocations
received in the range through the chosen stations (the index of migration 0006 on the station
a revocation came through and its receipt time), with the report's own definitions:

- a revocation is an ``opt_out``, ``carrier_opt_out`` or ``marketing_consent_revoked`` event,
  counted by UTC day of receipt (``occurred_at``), attributed to the station it came through
  as the report attributes it (the station texted, else its scope, else the station a staff
  change named; for a revocation decided by review, the station of the message reviewed);
- honour latency is effective (``recorded_at``) minus receipt; percentiles are nearest-rank,
  as compliance.quantiles computes them; a revocation is late past 10 business days in the
  station's zone (compliance.business_days), worked out in Python for the few over 10 days;
- confirmation latency is the first sent confirmation (the compliance text replying to the
  event) minus receipt, or minus the decision for one decided by review; late past 5 minutes;
- "sends after opt-out": the statement finds the revocations with any gate-allowed text to
  the number decided after them (normally none); each of those is then judged exactly as the
  report judges it (compliance.report_rules: the number's ledger replayed, a later START
  lifting the opt-out, confirmations left out), so a nonzero figure is the report's figure.

What the page shows is what the database returned to the signed-in role: a station manager's
request sees its stations' rows and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.business_days import business_days_between
from compliance.report_rules import (
    CONFIRMATION_LIMIT,
    DEFAULT_TIMEZONE,
    HONOUR_LIMIT_BUSINESS_DAYS,
    OPT_OUT_KINDS,
    REVOCATION_KINDS,
    LedgerEvent,
    Outbound,
    sends_after,
    standing,
)
from compliance.report_tally import LATENCY_BUCKETS
from worker.consent import review
from worker.models import ReviewItem, Station
from worker.outbound.held import HeldMessage, list_held
from worker.settings import get_settings

__all__ = ["Latency", "Overview", "ReviewDue", "SendAfter", "overview"]

# Judged exactly (replayed) at most this many candidate revocations; more are counted as "at least".
CANDIDATE_LIMIT = 500
LATE_LIMIT = 5000
_US = timedelta(microseconds=1)
_BOUNDS_US = [int(bound / _US) for _label, bound in LATENCY_BUCKETS if bound is not None]

# Two halves, each on its own index (migration 0006): revocations not decided by review, by the
# station they came through and receipt time; and those decided by review (few), whose station
# is read from the review_opened event they name.
_REVOCATIONS = """
WITH chosen AS MATERIALIZED (
  SELECT e.id, e.phone_index, e.kind, e.source, e.occurred_at, e.recorded_at, false AS by_review,
         CASE WHEN cardinality(CAST(:stations AS uuid[])) = 1 THEN (CAST(:stations AS uuid[]))[1]
              ELSE compliance.received_station(e.station_id, e.evidence) END AS received
  FROM compliance.consent_events e
  WHERE e.kind = ANY(:kinds) AND e.occurred_at >= :start AND e.occurred_at < :end
    AND NOT (e.evidence ? 'opened_event_id')
    AND (CAST(:stations AS uuid[]) IS NULL
         OR compliance.received_station(e.station_id, e.evidence) = ANY(CAST(:stations AS uuid[])))
  UNION ALL
  SELECT * FROM (
    SELECT e.id, e.phone_index, e.kind, e.source, e.occurred_at, e.recorded_at,
           (e.source = 'review_deadline' OR (e.source = 'staff' AND e.evidence ? 'review_item_id')) AS by_review,
           coalesce(public.uuid_or_null(o.evidence->>'received_station_id'),
                    compliance.received_station(e.station_id, e.evidence)) AS received
    FROM compliance.consent_events e
    LEFT JOIN compliance.consent_events o
           ON o.id = public.uuid_or_null(e.evidence->>'opened_event_id') AND o.phone_index = e.phone_index
    WHERE e.kind = ANY(:kinds) AND e.occurred_at >= :start AND e.occurred_at < :end
      AND e.evidence ? 'opened_event_id') reviewed
  WHERE CAST(:stations AS uuid[]) IS NULL OR received = ANY(CAST(:stations AS uuid[]))
), honour AS (
  SELECT (EXTRACT(EPOCH FROM (recorded_at - occurred_at)) * 1000000)::bigint AS us FROM chosen
), texts AS MATERIALIZED (
  -- One look at the number's outbox rows per revocation: its first sent confirmation, and
  -- whether anything was allowed after it took effect.
  SELECT c.id, c.received, encode(c.phone_index, 'hex') AS phone_index,
         x.confirmed - CASE WHEN c.by_review THEN c.recorded_at ELSE c.occurred_at END AS conf_latency,
         x.allowed_after
  FROM chosen c CROSS JOIN LATERAL (
    SELECT min(o.sent_at) FILTER (WHERE o.purpose = 'compliance' AND o.in_reply_to_event_id = c.id) AS confirmed,
           coalesce(bool_or(o.gate_decision = 'allowed' AND o.decided_at > c.recorded_at), false) AS allowed_after
    FROM core.outbound_messages o WHERE o.to_index = c.phone_index) x
), conf_us AS (
  SELECT (EXTRACT(EPOCH FROM conf_latency) * 1000000)::bigint AS us FROM texts WHERE conf_latency IS NOT NULL
)
SELECT
  (SELECT count(*) FROM chosen),
  (SELECT count(*) FROM chosen WHERE kind = 'carrier_opt_out'),
  (SELECT json_agg(json_build_array(d, n) ORDER BY d) FROM
     (SELECT (occurred_at AT TIME ZONE 'UTC')::date AS d, count(*) AS n FROM chosen GROUP BY 1) per_day),
  (SELECT json_build_array(percentile_disc(0.5) WITHIN GROUP (ORDER BY us),
                           percentile_disc(0.99) WITHIN GROUP (ORDER BY us), count(*)) FROM honour),
  (SELECT json_agg(json_build_array(b, n)) FROM
     (SELECT width_bucket(us, CAST(:bounds AS bigint[])) AS b, count(*) AS n FROM honour GROUP BY 1) dist),
  (SELECT json_build_array(percentile_disc(0.5) WITHIN GROUP (ORDER BY us),
                           percentile_disc(0.99) WITHIN GROUP (ORDER BY us), count(*),
                           count(*) FILTER (WHERE us > :conf_limit_us)) FROM conf_us),
  (SELECT json_agg(json_build_array(id, occurred_at, recorded_at, received)) FROM
     (SELECT id, occurred_at, recorded_at, received FROM chosen
      WHERE recorded_at - occurred_at > interval '10 days' AND source <> 'import' LIMIT :late_limit) late),
  (SELECT json_agg(json_build_array(id, phone_index, received)) FROM
     (SELECT id, phone_index, received FROM texts WHERE allowed_after LIMIT :candidate_limit) candidates)
"""

_HISTORY = """
SELECT seq, id, station_id, kind, purpose, source, occurred_at, recorded_at,
       evidence->>'open_reviews_remaining'
FROM compliance.consent_events WHERE phone_index = :idx ORDER BY seq
"""
_OUTBOUND = """
SELECT id, station_id, purpose, gate_decision, decided_at, sent_at, provider_sid, status, in_reply_to_event_id
FROM core.outbound_messages WHERE to_index = :idx
"""


@dataclass(frozen=True, slots=True)
class Latency:
    p50: timedelta | None
    p99: timedelta | None
    count: int
    over_limit: int


@dataclass(frozen=True, slots=True)
class SendAfter:
    """A text the gate allowed after an opt-out covering it took effect."""

    outbox_id: uuid.UUID
    revocation_id: uuid.UUID
    phone_index: str
    station_id: uuid.UUID
    purpose: str
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewDue:
    item: ReviewItem
    station: Station | None
    business_days_left: int

    @property
    def overdue(self) -> bool:
        return self.item.deadline_at <= datetime.now(UTC)


@dataclass
class Overview:
    start: date
    end: date
    revocations: int
    carrier_opt_outs: int
    per_day: list[tuple[str, int]]
    distribution: list[tuple[str, int]]
    honour: Latency
    confirmation: Latency
    sends_after: list[SendAfter]
    # True when more candidates existed than were judged: the figure is a lower bound.
    sends_after_partial: bool
    reviews: list[ReviewDue] = field(default_factory=list)
    held: list[HeldMessage] = field(default_factory=list)

    @property
    def overdue_reviews(self) -> list[ReviewDue]:
        return [r for r in self.reviews if r.overdue]

    @property
    def due_soon_reviews(self) -> list[ReviewDue]:
        return [r for r in self.reviews if not r.overdue]


def _us(value: Any) -> timedelta | None:
    return None if value is None else int(value) * _US


def _days(start: date, end: date, counted: dict[str, int]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    day = start
    while day <= end:
        out.append((day.isoformat(), counted.get(day.isoformat(), 0)))
        day += timedelta(days=1)
    return out


def _zone(zones: dict[uuid.UUID, str], station: Any) -> str:
    sid = uuid.UUID(station) if isinstance(station, str) else station
    return zones.get(sid, DEFAULT_TIMEZONE) if sid is not None else DEFAULT_TIMEZONE


def _late(rows: Sequence[Any], zones: dict[uuid.UUID, str]) -> int:
    late = 0
    for _id, occurred, recorded, station in rows:
        days = business_days_between(datetime.fromisoformat(occurred), datetime.fromisoformat(recorded),
                                     _zone(zones, station))
        late += days > HONOUR_LIMIT_BUSINESS_DAYS
    return late


def _judge(session: Session, revocation_id: uuid.UUID, index: bytes, received: uuid.UUID | None) -> list[SendAfter]:
    """The report's own verdict on one revocation: its number's ledger replayed, its outbox rows."""
    history = [
        LedgerEvent(seq, eid, sid, kind, purpose, source,
                    {"open_reviews_remaining": int(left)} if left is not None and left.isdigit() else {},
                    occurred, recorded, None, None, b"")
        for seq, eid, sid, kind, purpose, source, occurred, recorded, left in session.execute(
            text(_HISTORY), {"idx": index})
    ]  # fmt: skip
    target = next((i for i, e in enumerate(history) if e.id == revocation_id), None)
    if target is None:
        return []
    outbound = [Outbound(*row) for row in session.execute(text(_OUTBOUND), {"idx": index})]
    stand = standing(history, target, received)
    opt_out_ids = frozenset(e.id for e in history if e.kind in OPT_OUT_KINDS)
    found = sends_after(history[target], outbound, lifted_at=stand.lifted_at, opt_out_ids=opt_out_ids)
    assert all(o.decided_at is not None for o in found)
    return [SendAfter(o.id, revocation_id, index.hex(), o.station_id, o.purpose, o.decided_at or datetime.min)
            for o in found]


def _reviews(session: Session, stations: Sequence[uuid.UUID] | None, now: datetime) -> list[ReviewDue]:
    warn = get_settings().CONSENT_REVIEW_WARN_BUSINESS_DAYS
    out: list[ReviewDue] = []
    for item, station in review.list_open(session):
        if stations is not None and item.station_id not in stations:
            continue
        left = business_days_between(now, item.deadline_at, station.timezone if station else DEFAULT_TIMEZONE)
        if item.deadline_at <= now or left <= warn:
            out.append(ReviewDue(item, station, left))
    return out


def overview(
    session: Session, *, start: date, end: date, chosen: Sequence[Station] | None, visible: Sequence[Station]
) -> Overview:
    """The figures for revocations received from ``start`` to ``end`` (UTC days, inclusive) through
    the ``chosen`` stations (None: every station the request can see, and revocations with no station)."""
    stations = [s.id for s in chosen] if chosen is not None else None
    codes = {s.code for s in chosen} if chosen is not None else None
    zones = {s.id: s.timezone for s in visible}
    params = {
        "kinds": sorted(REVOCATION_KINDS),
        "start": datetime.combine(start, time(0), tzinfo=UTC),
        "end": datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC),
        "stations": list(stations) if stations is not None else None,
        "bounds": _BOUNDS_US,
        "conf_limit_us": int(CONFIRMATION_LIMIT / _US),
        "late_limit": LATE_LIMIT,
        "candidate_limit": CANDIDATE_LIMIT + 1,
    }
    # The planner's row estimates for the materialised set are far off (expressions over JSON), and
    # its cost then switches on JIT compilation, which took longer than the whole statement.
    session.execute(text("SET LOCAL jit = off"))
    (count, carrier, per_day, honour, dist, conf, late, candidates) = session.execute(
        text(_REVOCATIONS), params).one()
    buckets = {int(b): int(n) for b, n in dist or []}
    after: list[SendAfter] = []
    for rev_id, index_hex, received in (candidates or [])[:CANDIDATE_LIMIT]:
        after.extend(_judge(session, uuid.UUID(rev_id), bytes.fromhex(index_hex),
                            uuid.UUID(received) if received else None))
    now = datetime.now(UTC)
    held = [h for h in list_held(session) if codes is None or h.station in codes]
    return Overview(
        start=start,
        end=end,
        revocations=int(count),
        carrier_opt_outs=int(carrier),
        per_day=_days(start, end, {d: int(n) for d, n in per_day or []}),
        distribution=[(label, buckets.get(i, 0)) for i, (label, _bound) in enumerate(LATENCY_BUCKETS)],
        honour=Latency(_us(honour[0]), _us(honour[1]), int(honour[2]), _late(late or [], zones)),
        confirmation=Latency(_us(conf[0]), _us(conf[1]), int(conf[2]), int(conf[3])),
        sends_after=sorted(after, key=lambda s: (s.decided_at, str(s.outbox_id))),
        sends_after_partial=len(candidates or []) > CANDIDATE_LIMIT,
        reviews=_reviews(session, stations, now),
        held=held,
    )
