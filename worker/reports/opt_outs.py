"""The opt-out audit report's rows: one per revocation received in the range, in ledger order.

One streaming query (a server-side cursor, a few thousand rows per fetch) gives each
revocation with what its columns need: the message it came in, the review_opened event it
was decided from, the number's whole ledger history (compact: what the consent projection
reads) and the number's outbox rows that matter (gate-allowed after it, or replying to it).
The rules are compliance/report_rules.py; this module turns their answers into fixed text,
so the same data always gives the same bytes (times RFC 3339 UTC with microseconds,
durations as exact decimal seconds, no generation time). Column meanings: docs/reports.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from compliance.business_days import business_days_between
from compliance.consent_hash import format_ts, quick_ts
from compliance.phones import mask
from compliance.report_rules import (
    DEFAULT_TIMEZONE,
    HONOUR_LIMIT_BUSINESS_DAYS,
    OPT_OUT_KINDS,
    REVOCATION_KINDS,
    LedgerEvent,
    Outbound,
    Violation,
    confirmation,
    detection,
    honour,
    origin_of,
    received_station,
    seconds_text,
    sends_after,
    standing,
)
from compliance.report_tally import Tally
from worker import pii
from worker.reports.prefetch import json_from_text, prefetched
from worker.reports.snapshot import ReadSnapshot

__all__ = ["COLUMNS", "RangeParams", "overdue_reviews", "seq_bounds", "stream_rows"]

COLUMNS: tuple[str, ...] = (
    "seq", "event_id", "event_hash", "prev_hash", "kind",
    "station", "phone", "phone_index", "channel", "sender", "provider_message_sid",
    "received_at", "stored_at", "body",
    "detection_method", "classifier_version", "matched_rule", "matched_text",
    "effective_at", "honour_latency_s", "business_days_to_effective", "review_decided_by", "review_decided_at",
    "confirmation_outbox_id", "confirmation_provider_sid", "confirmation_sent_at", "confirmation_latency_s",
    "confirmations_sent", "no_confirmation_reason",
    "prior_consent_event_id", "prior_consent_source", "prior_consent_captured_at",
    "scope", "purpose", "sends_after", "first_send_after_id", "violations",
)  # fmt: skip

_ITERSIZE = 500


def _uuid_sql(expr: str) -> str:
    """``expr`` (text) as a uuid, or NULL when it is not one (evidence is never trusted to cast)."""
    return (
        f"CASE WHEN {expr} ~* '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$' "
        f"THEN CAST({expr} AS uuid) END"
    )


# No ORDER BY inside the aggregates: every aggregate of one lateral sees its rows in the same
# order, so the arrays stay aligned, and one sort per aggregate per row was a fifth of the
# query's time. Python puts the history in seq order (_history); the outbox rows' order
# does not matter (every rule that picks one sorts).
_HISTORY = ", ".join(
    f"array_agg(p.{col}) AS h_{col}"
    for col in ("seq", "id", "station_id", "kind", "purpose", "source", "occurred_at", "recorded_at")
)
_OUTBOUND = ", ".join(
    f"array_agg(x.{col}) AS o_{col}"
    for col in ("id", "station_id", "purpose", "gate_decision", "decided_at", "sent_at", "provider_sid", "status",
                "in_reply_to_event_id")
)  # fmt: skip

# Fixed SQL text only; every value is a parameter.
_ROWS = f"""
SELECT e.seq, e.id, e.phone_index, e.phone_encrypted, e.station_id, e.kind, e.purpose, e.source, e.evidence,
       e.occurred_at, e.recorded_at, e.idempotency_key, e.prev_hash, e.hash,
       m.created_at, m.body, m.channel,
       oe.seq, oe.id, oe.station_id, oe.kind, oe.purpose, oe.source, oe.evidence, oe.occurred_at, oe.recorded_at,
       h.*, o.*
FROM compliance.consent_events e
LEFT JOIN core.messages m ON m.id = {_uuid_sql("e.evidence->>'message_id'")}
LEFT JOIN compliance.consent_events oe
       ON oe.id = {_uuid_sql("e.evidence->>'opened_event_id'")} AND oe.phone_index = e.phone_index
LEFT JOIN LATERAL (
    SELECT {_HISTORY},
           array_agg(CASE WHEN p.kind = 'review_resolved' THEN p.evidence->>'open_reviews_remaining' END)
             AS h_remaining
    FROM compliance.consent_events p WHERE p.phone_index = e.phone_index
    HAVING count(*) > 1) h ON true
CROSS JOIN LATERAL (
    SELECT {_OUTBOUND}
    FROM core.outbound_messages x
    WHERE x.to_index = e.phone_index
      AND ((x.gate_decision = 'allowed' AND x.decided_at > e.recorded_at) OR x.in_reply_to_event_id = e.id)) o
WHERE e.seq BETWEEN %(lo)s AND %(hi)s AND e.kind = ANY(%(kinds)s)
  AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
ORDER BY e.seq
"""  # noqa: S608

_BOUNDS = """
SELECT min(seq), max(seq) FROM compliance.consent_events
WHERE occurred_at >= %(start)s AND occurred_at < %(end)s AND kind = ANY(%(kinds)s)
"""


@dataclass(frozen=True, slots=True)
class RangeParams:
    start: date
    end: date  # inclusive
    station: uuid.UUID | None
    unmask: bool

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=UTC)

    def sql(self) -> dict[str, Any]:
        return {"start": self.start_at, "end": self.end_before, "kinds": sorted(REVOCATION_KINDS)}


def _ts(value: datetime | None) -> str:
    return quick_ts(value) if value is not None else ""


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _history(rec: Sequence[Any], at: int) -> list[LedgerEvent]:
    """The number's events from the lateral's arrays (the projection's fields; no hashes needed).

    A number whose only event is this revocation gets no arrays (nine one-element arrays
    cost the client more to load than the rest of the row): its history is the event itself,
    with the fields the arrays would have held (a revocation carries no open_reviews_remaining).
    """
    if rec[at] is None:
        return [LedgerEvent(rec[0], rec[1], rec[4], rec[5], rec[6], rec[7], {}, rec[9], rec[10], None, None, b"")]
    seqs, ids, stations, kinds, purposes, sources, occurred, recorded, remaining = rec[at : at + 9]
    out: list[LedgerEvent] = []
    for i, seq in enumerate(seqs):
        left = _int_or_none(remaining[i])
        out.append(
            LedgerEvent(seq, ids[i], stations[i], kinds[i], purposes[i], sources[i],
                        {"open_reviews_remaining": left} if left is not None else {},
                        occurred[i], recorded[i], None, None, b"")
        )  # fmt: skip
    if len(out) > 1:
        out.sort(key=lambda e: e.seq)
    return out


def _outbound(rec: Sequence[Any], at: int) -> list[Outbound]:
    ids = rec[at]
    if ids is None:
        return []
    cols = rec[at : at + 9]
    return [Outbound(*(col[i] for col in cols)) for i in range(len(ids))]


@dataclass(frozen=True, slots=True)
class Built:
    station: uuid.UUID | None
    cells: tuple[str, ...]
    # Tally.add's arguments for this row.
    facts: dict[str, Any]


def _build(
    rec: Sequence[Any], snap: ReadSnapshot, by_code: dict[str, uuid.UUID], unmask: bool, ring: pii.KeyRing
) -> Built:
    (seq, ev_id, phone_index, phone_encrypted, scope, kind, purpose, source, evidence, occurred_at, recorded_at,
     key, prev_hash, digest, stored_at, message_body, message_channel) = rec[:17]  # fmt: skip
    event = LedgerEvent(
        seq, ev_id, scope, kind, purpose, source, evidence, occurred_at, recorded_at, key, prev_hash, digest
    )
    opened = rec[18]
    origin = (
        LedgerEvent(rec[17], opened, rec[19], rec[20], rec[21], rec[22], rec[23], rec[24], rec[25], None, None, b"")
        if opened is not None
        else event
    )
    origin = origin_of(event, {origin.id: origin})
    history = _history(rec, 26)
    outbound = _outbound(rec, 35)
    target = next(i for i, h in enumerate(history) if h.seq == seq)
    station = received_station(event, origin, by_code)
    info = snap.stations.get(station) if station is not None else None
    found = detection(event, origin)
    stand = standing(history, target, station)
    latency, business_days = honour(event, info.timezone if info else DEFAULT_TIMEZONE)
    conf = confirmation(event, origin, found.method, outbound, already_out=stand.already_out, snapshot_at=snap.taken_at)
    opt_out_ids = frozenset(h.id for h in history if h.kind in OPT_OUT_KINDS)
    after = sends_after(event, outbound, lifted_at=stand.lifted_at, opt_out_ids=opt_out_ids)
    violations: list[str] = []
    if after:
        violations.append(Violation.SENT_AFTER_OPT_OUT)
    if business_days > HONOUR_LIMIT_BUSINESS_DAYS and source != "import":
        violations.append(Violation.HONOURED_LATE)
    violations.extend(conf.violations)
    e164 = ring.decrypt(phone_encrypted, kind="phone")
    phone = e164 if unmask else mask(e164)
    review = found.method in ("review_resolved", "review_deadline")
    prior = stand.prior_consent
    conf_row = conf.row
    scope_info = snap.stations.get(scope) if scope is not None else None
    cells = (
        str(seq), str(ev_id), bytes(digest).hex(), bytes(prev_hash).hex() if prev_hash is not None else "", kind,
        info.code if info else "", phone, bytes(phone_index).hex(),
        _s(origin.evidence.get("channel")) or (message_channel or ""), _s(origin.evidence.get("to_address")),
        _s(origin.evidence.get("provider_message_id")) or _s(evidence.get("provider_ref")),
        _ts(occurred_at), _ts(stored_at), _s(origin.evidence.get("raw_body")) or (message_body or ""),
        found.method, found.classifier_version, found.matched_rule, found.matched_text,
        _ts(recorded_at), seconds_text(latency), str(business_days),
        _s(evidence.get("resolved_by")) if review else "", _ts(recorded_at) if review else "",
        str(conf_row.id) if conf_row else "", (conf_row.provider_sid or "") if conf_row else "",
        _ts(conf_row.sent_at) if conf_row else "", seconds_text(conf.latency) if conf.latency is not None else "",
        str(conf.sent_count), conf.reason.value if conf.reason else "",
        str(prior.id) if prior else "", prior.source if prior else "", _ts(prior.occurred_at) if prior else "",
        scope_info.code if scope_info else ("business" if scope is None else str(scope)), purpose,
        str(len(after)), str(after[0].id) if after else "", ";".join(violations),
    )  # fmt: skip
    facts = {
        "seq": seq,
        "event_id": ev_id,
        "received_at": occurred_at,
        "method": found.method,
        "honour_latency": latency,
        "confirmation_latency": conf.latency,
        "no_confirmation": conf.reason.value if conf.reason else None,
        "sends_after": len(after),
        "violations": tuple(violations),
        "details": {
            "station": cells[5],
            "phone": phone,
            "method": found.method,
            "received_at": cells[11],
            "effective_at": cells[18],
            "business_days_to_effective": business_days,
            "confirmation_latency_s": cells[26] or None,
            "no_confirmation_reason": cells[28] or None,
            "sends_after": len(after),
            "first_send_after_id": cells[35] or None,
        },
    }
    return Built(station, cells, facts)


def seq_bounds(snap: ReadSnapshot, params: RangeParams) -> tuple[int, int] | None:
    row = snap.conn.execute(_BOUNDS, params.sql()).fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


def stream_rows(
    snap: ReadSnapshot, params: RangeParams, tally: Tally, *, bounds: tuple[int, int] | None
) -> Iterator[tuple[str, ...]]:
    """Every row of the report, in ledger order, counted into ``tally`` as it goes.

    ``bounds``: the ledger sequences (both inclusive) whose revocations to give, the range's
    (:func:`seq_bounds`, None when it holds none) or a share of them (the export shares the
    range with its second process, worker/reports/beside.py).
    """
    if bounds is None:
        return
    by_code = snap.station_by_code()
    ring = pii.keyring()  # once: looking it up reads the settings' secrets (more than a decryption costs)
    with snap.conn.cursor(name="opt_out_rows", binary=True) as cur:
        json_from_text(cur)
        cur.execute(_ROWS, {**params.sql(), "lo": bounds[0], "hi": bounds[1]})
        for rec in prefetched(cur, _ITERSIZE):
            built = _build(rec, snap, by_code, params.unmask, ring)
            if params.station is not None and built.station != params.station:
                continue
            tally.add(**built.facts)
            yield built.cells


def overdue_reviews(snap: ReadSnapshot, station: uuid.UUID | None) -> list[dict[str, Any]]:
    """Review items still open past their deadline at the snapshot (the report lists them as violations)."""
    rows = snap.conn.execute(
        "SELECT id, station_id, deadline_at, created_at FROM compliance.review_items "
        "WHERE status = 'open' AND deadline_at < %(now)s AND (%(station)s::uuid IS NULL OR station_id = %(station)s) "
        "ORDER BY deadline_at, id LIMIT 1000",
        {"now": snap.taken_at, "station": station},
    ).fetchall()
    out: list[dict[str, Any]] = []
    for item_id, station_id, deadline_at, created_at in rows:
        info = snap.stations.get(station_id) if station_id is not None else None
        out.append(
            {
                "review_item_id": str(item_id),
                "station": info.code if info else "",
                "opened_at": format_ts(created_at),
                "deadline_at": format_ts(deadline_at),
                "business_days_overdue": business_days_between(
                    deadline_at, snap.taken_at, info.timezone if info else DEFAULT_TIMEZONE
                ),
            }
        )
    return out
