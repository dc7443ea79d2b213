"""Fan-out: due campaign runs into recipient rows, and due recipient rows into the outbox.

Three steps, each called by the tick (tasks/campaigns.py) in transactions of its own, each
claiming its work with ``FOR UPDATE SKIP LOCKED``, so two beat processes, overlapping ticks, a
re-run or a crashed tick never make a second row (the unique keys hold even if they tried):

1. ``plan_due_runs``: a campaign whose ``next_run_at`` has come gets a run row (unique per
   campaign and run key) and its next fire time. A run fired later than the campaign's
   missed-run policy allows (``skip``: five minutes; ``send_within``: its window) is marked
   missed: its rows are created ``missed``, never sent late. Several occurrences missed in a
   row are collapsed into the last one.
2. ``expand_chunk``: one chunk of the audience (customers in id order after the run's cursor)
   into recipient rows; the cursor moves in the same transaction, so a crash resumes at the
   chunk it was in. A local-time schedule gives each recipient their own due time.
3. ``materialise_chunk``: recipient rows that are due, of running campaigns, each into one
   outbox row (``worker.outbox.enqueue_many``, key ``campaign:<id>:<step>:<customer>:<version>``)
   in the same transaction that marks the row ``queued``. Before that, per row: a reminder
   waits for its request to be sent; a row due longer ago than the policy allows is
   ``missed``; an opted-out number is ``cancelled`` (an opt-out cancels the number's outbox
   rows itself, worker/outbox.py; this covers the rows not in the outbox yet); a coupon text
   gets its code or is ``skipped: pool_empty``; a number that cannot be texted is ``skipped``.
   One bad row never stops the chunk. The send gate still decides every text at send time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.campaign_schedule import local_fire_at, parse_hhmm, run_key
from compliance.errors import InvalidNumber
from compliance.recipient import locate
from compliance.templates import render
from worker import pii
from worker.campaigns import coupons, schedules
from worker.campaigns.audience import AUDIENCE_SQL
from worker.campaigns.consent_view import consent_rows, suppressed
from worker.campaigns.definitions import steps_of
from worker.db import driver_connection
from worker.models import Campaign, CampaignStep
from worker.outbox import EnqueueError, OutboxItem, enqueue_many
from worker.phone import PhoneNumber

__all__ = [
    "ANALYZE_AFTER_ROWS", "MISSED_GRACE", "Materialised", "expand_chunk", "idempotency_key", "materialise_chunk",
    "plan_due_runs",
]

log = structlog.get_logger(__name__)

# A run that expanded at least this many rows is followed by an ANALYZE (_analyze_recipients).
ANALYZE_AFTER_ROWS = 10_000
# A run or row later than this is missed under the default "skip" policy.
MISSED_GRACE = timedelta(minutes=5)
# How long a reminder whose request is still in flight waits before it looks again.
_RECHECK = timedelta(minutes=10)
_SENT = frozenset({"sent", "delivered"})
_IN_FLIGHT = frozenset({"pending", "queued", "sending", "deferred", "unknown"})


def idempotency_key(campaign_id: uuid.UUID, step: int, run: str, customer_id: uuid.UUID, version: int) -> str:
    """``campaign:<id>:<step>:<customer>:<version>``; the step names its run too (``1.20261207T150000Z``)."""
    return f"campaign:{campaign_id}:{step}.{run}:{customer_id}:{version}"


def _allowed_lateness(campaign: Campaign) -> timedelta:
    if campaign.missed_policy == "send_within" and campaign.missed_window_seconds:
        return timedelta(seconds=campaign.missed_window_seconds)
    return MISSED_GRACE


# --- 1. runs ------------------------------------------------------------------------------------

_DUE_CAMPAIGNS = text(
    "SELECT id FROM marketing.campaigns WHERE status IN ('scheduled', 'running') AND next_run_at <= :now "
    "AND deleted_at IS NULL ORDER BY next_run_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)


def plan_due_runs(session: Session, now: datetime, *, limit: int = 20) -> int:
    """Create the run of every campaign whose fire time has come; returns how many."""
    ids = list(session.execute(_DUE_CAMPAIGNS, {"now": now, "limit": limit}).scalars())
    for campaign_id in ids:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.next_run_at is not None
        fire_at, collapsed = campaign.next_run_at, 0
        following = schedules.next_fire(campaign.schedule, fire_at)
        while following is not None and following <= now:  # several occurrences missed while down
            fire_at, collapsed = following, collapsed + 1
            following = schedules.next_fire(campaign.schedule, fire_at)
        missed = now - fire_at > _allowed_lateness(campaign)
        key = "local" if campaign.schedule["type"] == "local" else (
            "once" if campaign.schedule["type"] == "once" else run_key(fire_at))
        session.execute(text(
            "INSERT INTO marketing.campaign_runs (campaign_id, run_key, fire_at, schedule_version, missed) "
            "VALUES (:c, :k, :f, :v, :m) ON CONFLICT (campaign_id, run_key) DO NOTHING"
        ), {"c": campaign.id, "k": key, "f": fire_at, "v": campaign.schedule_version, "m": missed})
        campaign.next_run_at, campaign.status = following, "running"
        if missed or collapsed:
            log.warning("campaign_run_missed", campaign_id=str(campaign.id), fire_at=fire_at.isoformat(),
                        missed=missed, earlier_occurrences_skipped=collapsed)
    session.flush()
    return len(ids)


# --- 2. expansion -------------------------------------------------------------------------------

_CLAIM_RUN = text(
    "SELECT r.id, r.campaign_id, r.run_key, r.fire_at, r.schedule_version, r.missed, r.cursor, r.expanded "
    "FROM marketing.campaign_runs r JOIN marketing.campaigns c ON c.id = r.campaign_id "
    "WHERE r.status = 'expanding' AND c.status = 'running' ORDER BY r.created_at LIMIT 1 "
    "FOR UPDATE OF r SKIP LOCKED"
)
_BATCH = f"""
  SELECT a.* FROM ({AUDIENCE_SQL}) a WHERE (CAST(:cursor AS uuid) IS NULL OR a.id > CAST(:cursor AS uuid))
  ORDER BY a.id LIMIT :chunk
"""  # noqa: S608 - constant SQL
_EXPAND_SAME_TIME = text(
    f"""
    WITH batch AS ({_BATCH}),
    ins AS (
      INSERT INTO marketing.campaign_recipients
        (campaign_id, step, run_key, customer_id, station_id, to_index, schedule_version, due_at, status, reason)
      SELECT :campaign, 1, :run_key, b.id, b.station_id, b.phone_index, :version, :due,
             CASE WHEN b.phone_index IS NULL THEN 'skipped' WHEN :missed THEN 'missed' ELSE 'pending' END,
             CASE WHEN b.phone_index IS NULL THEN 'no_phone' WHEN :missed THEN 'missed_run' END
      FROM batch b ORDER BY b.id
      ON CONFLICT DO NOTHING RETURNING 1)
    SELECT (SELECT count(*) FROM batch), (SELECT id FROM batch ORDER BY id DESC LIMIT 1), (SELECT count(*) FROM ins)
    """  # noqa: S608 - constant SQL
)
_INSERT_ROWS = text(
    """
    INSERT INTO marketing.campaign_recipients
      (campaign_id, step, run_key, customer_id, station_id, to_index, schedule_version, due_at, status, reason)
    SELECT :campaign, 1, :run_key, r.customer_id, r.station_id, r.to_index, :version, r.due_at, r.status, r.reason
    FROM unnest(CAST(:customers AS uuid[]), CAST(:stations AS uuid[]), CAST(:indexes AS bytea[]),
                CAST(:dues AS timestamptz[]), CAST(:statuses AS text[]), CAST(:reasons AS text[]))
         AS r(customer_id, station_id, to_index, due_at, status, reason)
    ON CONFLICT DO NOTHING
    """
)


def _station_zones(session: Session) -> dict[uuid.UUID, str]:
    return {sid: tz for sid, tz in session.execute(text("SELECT id, timezone FROM identity.stations"))}


def _expand_local(session: Session, campaign: Campaign, run: Any, now: datetime, chunk: int) -> tuple[int, Any]:
    """One chunk of a local-time run: each recipient due at the time on their own clock."""
    batch = session.execute(text(_BATCH), {"station": campaign.station_id, "cursor": run.cursor,
                                           "chunk": chunk}).mappings().all()
    day = datetime.fromisoformat(campaign.schedule["on"]).date()
    at = parse_hhmm(campaign.schedule["at"])
    zones_of_station = _station_zones(session)
    cols: dict[str, list[Any]] = {k: [] for k in ("customers", "stations", "indexes", "dues", "statuses", "reasons")}
    for row in batch:
        status, reason, due = "pending", None, None
        if row["phone_index"] is None or row["phone_encrypted"] is None:
            status, reason = "skipped", "no_phone"
        elif run.missed:
            status, reason = "missed", "missed_run"
        else:
            location = locate(pii.decrypt(row["phone_encrypted"], kind="phone"))
            # An unknown zone falls back to the station's (the gate still holds marketing for it).
            zones = location.zones if location.known else (zones_of_station[row["station_id"]],)
            due = local_fire_at(day, at, zones, now, passed=campaign.local_passed_policy)
            if due is None:
                status, reason = "skipped", "local_time_passed"
        for key, value in (("customers", row["id"]), ("stations", row["station_id"]), ("indexes", row["phone_index"]),
                           ("dues", due), ("statuses", status), ("reasons", reason)):
            cols[key].append(value)
    if batch:
        session.execute(_INSERT_ROWS, {"campaign": campaign.id, "run_key": run.run_key,
                                       "version": campaign.schedule_version, **cols})
    return len(batch), batch[-1]["id"] if batch else None


def expand_chunk(session: Session, now: datetime, *, chunk: int) -> int:
    """Expand one chunk of one run; returns the customers read (0: nothing to expand now)."""
    run = session.execute(_CLAIM_RUN).first()
    if run is None:
        return 0
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    if campaign.schedule["type"] == "local":
        read, last = _expand_local(session, campaign, run, now, chunk)
    else:
        read, last, _inserted = session.execute(_EXPAND_SAME_TIME, {
            "station": campaign.station_id, "cursor": run.cursor, "chunk": chunk, "campaign": campaign.id,
            "run_key": run.run_key, "version": campaign.schedule_version, "due": run.fire_at, "missed": run.missed,
        }).one()
    done = read < chunk
    session.execute(text(
        "UPDATE marketing.campaign_runs SET cursor = COALESCE(:last, cursor), expanded = expanded + :n, "
        "status = CASE WHEN :done THEN 'expanded' ELSE status END, updated_at = now() WHERE id = :id"
    ), {"last": last, "n": read, "done": done, "id": run.id})
    if done:
        log.info("campaign_run_expanded", campaign_id=str(campaign.id), run_key=run.run_key)
        if run.expanded + read >= ANALYZE_AFTER_ROWS:
            _analyze_recipients(session, campaign.id, run.expanded + read)
    return max(read, 1)


def _analyze_recipients(session: Session, campaign_id: uuid.UUID, rows: int) -> None:
    """Give the planner the run's rows before they are materialised.

    Autovacuum analyzes a table a minute or more after it changed; a big run lands its pending
    rows within seconds. Planned on the statistics of the table before the run, the due-row
    claim (``_CLAIM_DUE``) read and sorted every pending row of the run at each chunk (100,000
    rows, an on-disk sort, ~140 ms a chunk, falling as the rows drain: quadratic in the run's
    size) instead of walking ``ix_campaign_recipients_due`` in due order (~4 ms). ANALYZE may
    run in this transaction; it samples at most 30,000 rows (the default statistics target),
    so its cost does not grow with the table. A role that does not own the table gets a
    warning from PostgreSQL and no statistics, which only leaves the plan as it was.
    """
    started = time.monotonic()
    session.execute(text("ANALYZE marketing.campaign_recipients"))
    log.info("campaign_recipients_analyzed", campaign_id=str(campaign_id), rows=rows,
             seconds=round(time.monotonic() - started, 3))


# --- 3. materialisation ----------------------------------------------------------------------------

# Running campaigns, share-locked for the chunk's transaction (a pause or cancel waits for it, so it
# holds this chunk's rows too); then their due rows in due order, which the partial index on
# due_at serves without sorting every pending row at each chunk.
_RUNNING = text("SELECT id FROM marketing.campaigns WHERE status = 'running' FOR SHARE SKIP LOCKED")
_CLAIM_DUE = text(
    """
    SELECT r.id, r.campaign_id, r.step, r.run_key, r.customer_id, r.station_id, r.to_index, r.due_at, r.booking_id
    FROM marketing.campaign_recipients r
    WHERE r.status = 'pending' AND r.due_at <= :now AND r.campaign_id = ANY(:running)
    ORDER BY r.due_at LIMIT :chunk
    FOR UPDATE SKIP LOCKED
    """
)
_DETAILS = text(
    "SELECT cu.id, cu.first_name, cu.phone_encrypted, st.name, st.brand_name, st.timezone "
    "FROM core.customers cu JOIN identity.stations st ON st.id = cu.station_id WHERE cu.id = ANY(:ids)"
)
_PREVIOUS = text(
    """
    SELECT w.id, r.status, o.status FROM unnest(CAST(:ids AS uuid[]), CAST(:campaigns AS uuid[]),
      CAST(:steps AS int[]), CAST(:runs AS text[]), CAST(:customers AS uuid[])) AS w(id, campaign_id, step, run_key,
      customer_id)
    JOIN marketing.campaign_recipients r ON r.campaign_id = w.campaign_id AND r.step = w.step - 1
      AND r.run_key = w.run_key AND r.customer_id = w.customer_id
    LEFT JOIN core.outbound_messages o ON o.id = r.outbound_id
    """
)
# Run on the session's psycopg connection with the arrays in binary (as worker.outbox.enqueue_many
# does): psycopg's text format quotes each element through a regular expression.
_SETTLE = """
    UPDATE marketing.campaign_recipients r
    SET status = u.status, reason = u.reason, outbound_id = u.outbound_id, due_at = COALESCE(u.due_at, r.due_at),
        schedule_version = COALESCE(u.version, r.schedule_version), updated_at = now()
    FROM unnest(CAST(%(ids)b AS uuid[]), CAST(%(statuses)b AS text[]), CAST(%(reasons)b AS text[]),
                CAST(%(outbound)b AS uuid[]), CAST(%(dues)b AS timestamptz[]), CAST(%(versions)b AS int[]))
         AS u(id, status, reason, outbound_id, due_at, version)
    WHERE r.id = u.id AND r.id = ANY(CAST(%(ids)b AS uuid[]))
"""


@dataclass
class Materialised:
    """What one chunk did, by outcome (queued, missed, cancelled, skipped:<reason>, waiting)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Row:
    id: uuid.UUID
    campaign: Campaign
    step: int
    run_key: str
    customer_id: uuid.UUID
    station_id: uuid.UUID
    to_index: bytes | None
    due_at: datetime
    booking_id: uuid.UUID | None
    status: str = "pending"
    reason: str | None = None
    outbound_id: uuid.UUID | None = None
    new_due: datetime | None = None
    number: PhoneNumber | None = None
    code: tuple[uuid.UUID, str] | None = None


class _Settle:
    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {k: [] for k in ("ids", "statuses", "reasons", "outbound", "dues",
                                                             "versions")}

    def add(self, row: _Row) -> None:
        version = row.campaign.schedule_version if row.status == "queued" else None
        for key, value in (("ids", row.id), ("statuses", row.status), ("reasons", row.reason),
                           ("outbound", row.outbound_id), ("dues", row.new_due), ("versions", version)):
            self.cols[key].append(value)


def _template(row: _Row, steps: dict[uuid.UUID, dict[int, CampaignStep]]) -> str:
    if row.step == 1:
        return row.campaign.template
    return steps[row.campaign.id][row.step].template


def _check_previous(session: Session, rows: Sequence[_Row], now: datetime) -> None:
    """A follow-up goes only after its previous step was sent; if that step ended unsent, it is skipped."""
    later = [r for r in rows if r.step > 1 and r.status == "pending"]
    if not later:
        return
    by_id = {r.id: r for r in later}
    found = session.execute(_PREVIOUS, {
        "ids": [r.id for r in later], "campaigns": [r.campaign.id for r in later], "steps": [r.step for r in later],
        "runs": [r.run_key for r in later], "customers": [r.customer_id for r in later],
    }).all()
    seen: set[uuid.UUID] = set()
    for row_id, previous_row, previous_outbox in found:
        seen.add(row_id)
        row = by_id[row_id]
        if previous_outbox in _SENT:
            continue
        if previous_row == "pending" or previous_outbox in _IN_FLIGHT:
            row.status, row.new_due = "waiting", now + _RECHECK
        else:
            row.status, row.reason = "skipped", "previous_step_not_sent"
    for row in later:
        if row.id not in seen:
            row.status, row.reason = "skipped", "previous_step_not_sent"


def _assign_codes(session: Session, rows: Sequence[_Row], steps: dict[uuid.UUID, dict[int, CampaignStep]]) -> None:
    by_pool: dict[uuid.UUID, list[_Row]] = {}
    for row in rows:
        if row.status == "pending" and row.campaign.pool_id and "{coupon_code}" in _template(row, steps):
            by_pool.setdefault(row.campaign.pool_id, []).append(row)
    for pool_id, wanting in by_pool.items():
        got = coupons.claim(session, pool_id, [
            coupons.CodeWant(customer_id=r.customer_id, station_id=r.station_id, recipient_id=r.id) for r in wanting])
        fallback = session.execute(text("SELECT fallback_code FROM feedback.coupon_pools WHERE id = :p"),
                                   {"p": pool_id}).scalar_one()
        for row, code in zip(wanting, got, strict=True):
            if code is not None:
                row.code = code
            elif fallback:
                row.code = (uuid.UUID(int=0), fallback)
            else:
                row.status, row.reason = "skipped", "pool_empty"


def materialise_chunk(session: Session, now: datetime, *, chunk: int) -> Materialised:
    """Turn up to ``chunk`` due recipient rows into outbox rows (or their final state)."""
    report = Materialised()
    running = list(session.execute(_RUNNING).scalars())
    if not running:
        return report
    claimed = session.execute(_CLAIM_DUE, {"now": now, "chunk": chunk, "running": running}).all()
    if not claimed:
        return report
    campaigns = {c: session.get(Campaign, c) for c in {r.campaign_id for r in claimed}}
    steps = {c: steps_of(session, c) for c in campaigns}
    rows = []
    for r in claimed:
        campaign = campaigns[r.campaign_id]
        assert campaign is not None
        rows.append(_Row(r.id, campaign, r.step, r.run_key, r.customer_id, r.station_id, r.to_index, r.due_at,
                         r.booking_id))
    details = {d.id: d for d in session.execute(_DETAILS, {"ids": [r.customer_id for r in rows]})}
    consent = consent_rows(session, [r.to_index for r in rows if r.to_index is not None])
    for row in rows:
        detail = details.get(row.customer_id)
        if now - row.due_at > _allowed_lateness(row.campaign):
            row.status, row.reason = "missed", "missed_window"
        elif row.to_index is None or detail is None or detail.phone_encrypted is None:
            row.status, row.reason = "skipped", "no_phone"
        elif suppressed(consent, row.to_index, row.station_id, row.campaign.purpose):
            row.status, row.reason = "cancelled", "opted_out"
        else:
            try:
                # worker/phone.py's parse (a NANP number in E.164 skips libphonenumber, ~50 µs a
                # row); enqueue_many takes the PhoneNumber as it is.
                row.number = PhoneNumber.parse(pii.decrypt(detail.phone_encrypted, kind="phone"))
            except InvalidNumber:
                row.status, row.reason = "skipped", "invalid_number"
    _check_previous(session, rows, now)
    _assign_codes(session, rows, steps)
    bookings = _booking_dates(session, [r.booking_id for r in rows if r.booking_id and r.status == "pending"])
    items: dict[str, _Row] = {}
    outbox: list[OutboxItem] = []
    for row in rows:
        if row.status != "pending":
            continue
        detail = details[row.customer_id]
        values = {
            "first_name": detail.first_name or "", "brand": detail.brand_name, "station_name": detail.name,
            "coupon_code": row.code[1] if row.code else "", "review_link": row.campaign.review_link or "",
            "booking_date": _local_date(bookings.get(row.booking_id), detail.timezone),
        }
        key = idempotency_key(row.campaign.id, row.step, row.run_key, row.customer_id, row.campaign.schedule_version)
        assert row.number is not None
        items[key], row.status = row, "queued"
        outbox.append(OutboxItem(
            station_id=row.station_id, to=row.number, body=render(_template(row, steps), values),
            purpose=row.campaign.purpose, idempotency_key=key, campaign_id=row.campaign.id,
            customer_id=row.customer_id, created_by="campaign",
        ))
    results = enqueue_many(session, outbox) if outbox else {}
    release: list[uuid.UUID] = []
    for key, row in items.items():
        result = results[key]
        if isinstance(result, uuid.UUID):
            row.outbound_id = result
            continue
        row.status = "skipped"
        row.reason = "invalid_number" if isinstance(result, EnqueueError) and result.field == "to" else "invalid_text"
        log.warning("campaign_row_refused", recipient_id=str(row.id), reason=row.reason, detail=str(result)[:200])
        if row.code and row.code[0].int:
            release.append(row.code[0])
    coupons.release(session, release)
    settle = _Settle()
    for row in rows:
        if row.status == "waiting":
            row.status = "pending"
            report.add("waiting")
        else:
            report.add(row.status if row.reason is None else f"{row.status}:{row.reason}")
        settle.add(row)
    driver_connection(session).execute(_SETTLE, settle.cols)
    return report


def _booking_dates(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID | None, datetime]:
    if not ids:
        return {}
    found = session.execute(text("SELECT id, date FROM core.bookings WHERE id = ANY(:ids)"), {"ids": ids})
    return {r[0]: r[1] for r in found}


def _local_date(when: datetime | None, zone: str) -> str:
    if when is None:
        return ""
    local = when.astimezone(ZoneInfo(zone))
    return f"{local:%b} {local.day}"
