"""chain.json: the consent ledger checked over the report's range, in the export's snapshot.

Every event received in the range (every kind, every station: a revocation turned into
something else must still be found) is re-hashed and its link checked against the stored
hash of the number's previous event, wherever that one lies (worker.consent.verify.check_chain,
the check ``msgworker ledger verify`` runs). Then every consent_state row of the ledger must
name a last event that exists with that hash, which finds a number's *last* event removed (no
later event links to it, and its sequence is gone, so no range can bound it). The result
names the first bad ledger sequence.

What it cannot find, nobody can from inside the database: a rewrite of a number's whole
history together with its state row. The ledger head's hash in chain.json, kept outside the
database with the export, is what makes that detectable later (docs/consent-ledger.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from compliance.ledger_chain import ChainBreak, VerifyReport, add_break, check_chain
from worker.reports.prefetch import json_from_text, prefetched

__all__ = ["RANGE_CHECKED", "ChainResult", "check_range"]

RANGE_CHECKED = (
    "every consent event received in the range (all kinds, all stations): its hash recomputed and its link "
    "to the number's previous event; and every state row of the ledger names a last event that exists "
    "with that hash"
)

_MAX_LISTED = 1000
_ITERSIZE = 1000

# Column names are the attributes check_chain reads (rows come as named tuples).
_EVENTS = """
SELECT e.seq, e.id, e.phone_index, e.station_id, e.kind, e.purpose, e.source, e.evidence, e.occurred_at,
       e.recorded_at, e.idempotency_key, e.prev_hash, e.hash, p.seq AS before_seq, p.hash AS before_hash
FROM compliance.consent_events e
LEFT JOIN LATERAL (
    SELECT q.seq, q.hash FROM compliance.consent_events q
    WHERE q.phone_index = e.phone_index AND q.seq < e.seq ORDER BY q.seq DESC LIMIT 1) p ON true
WHERE e.seq BETWEEN %(lo)s AND %(hi)s AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
ORDER BY e.seq
"""

_BOUNDS = """
SELECT min(seq), max(seq) FROM compliance.consent_events WHERE occurred_at >= %(start)s AND occurred_at < %(end)s
"""

# Every state row of the ledger, not only the range's: a removed event leaves no seq to bound
# the search by, and one pass over consent_state costs about a second per million rows.
_STATE_HEADS = """
SELECT s.last_event_seq, s.last_event_id, s.phone_index FROM compliance.consent_state s
LEFT JOIN compliance.consent_events e ON e.seq = s.last_event_seq
WHERE s.last_event_seq IS NOT NULL
  AND (e.seq IS NULL OR e.hash IS DISTINCT FROM s.last_event_hash OR e.phone_index <> s.phone_index)
ORDER BY s.last_event_seq
"""


@dataclass
class ChainResult:
    verify: VerifyReport = field(default_factory=VerifyReport)
    events: int = 0
    first: tuple[int, str] | None = None  # (seq, hash hex) of the range's first and last events
    last: tuple[int, str] | None = None
    head: tuple[int, str] | None = None  # the ledger's last event in the snapshot

    @property
    def ok(self) -> bool:
        return self.verify.break_count == 0

    @property
    def first_bad_seq(self) -> int | None:
        return self.verify.first_break.seq if self.verify.first_break else None

    def as_dict(self, snapshot: str, taken_at: str, checked: str) -> dict[str, Any]:
        def end(pair: tuple[int, str] | None) -> dict[str, Any] | None:
            return {"seq": pair[0], "hash": pair[1]} if pair else None

        return {
            "status": "ok" if self.ok else "INTEGRITY_FAILED",
            "checked": checked,
            "events_checked": self.events,
            "first_bad_seq": self.first_bad_seq,
            "break_count": self.verify.break_count,
            "breaks": [
                {"seq": b.seq, "event_id": str(b.event_id), "phone_index": b.phone_index.hex(), "reason": b.reason}
                for b in sorted(self.verify.breaks, key=lambda b: b.seq)
            ],
            "range_first_event": end(self.first),
            "range_last_event": end(self.last),
            "ledger_head": end(self.head),
            "snapshot": snapshot,
            "snapshot_taken_at": taken_at,
        }


def _check_events(conn: psycopg.Connection[Any], params: dict[str, Any], result: ChainResult) -> None:
    with conn.cursor(name="chain_rows", binary=True, row_factory=namedtuple_row) as cur:
        json_from_text(cur)
        cur.execute(_EVENTS, params)
        first: Any = None
        row: Any = None
        for row in prefetched(cur, _ITERSIZE):
            before = (row.before_seq, row.before_hash) if row.before_seq is not None else None
            check_chain(result.verify, row.phone_index, (row,), _MAX_LISTED, after=before)
            result.events += 1
            if first is None:
                first = row
        if first is not None and row is not None:
            result.first = (first.seq, first.hash.hex())
            result.last = (row.seq, row.hash.hex())


def check_range(conn: psycopg.Connection[Any], sql_params: dict[str, Any]) -> ChainResult:
    """Check the events received in ``[start, end)`` (``sql_params`` as RangeParams.sql() gives them)."""
    result = ChainResult()
    head = conn.execute("SELECT seq, hash FROM compliance.consent_events ORDER BY seq DESC LIMIT 1").fetchone()
    if head is not None:
        result.head = (int(head[0]), bytes(head[1]).hex())
    bounds = conn.execute(_BOUNDS, sql_params).fetchone()
    if bounds is not None and bounds[0] is not None:
        _check_events(conn, {**sql_params, "lo": bounds[0], "hi": bounds[1]}, result)
    for seq, event_id, index in conn.execute(_STATE_HEADS):
        brk = ChainBreak(
            int(seq), event_id, bytes(index),
            "a consent_state row names this event as the number's last, but no event with that seq and "
            "hash exists: it was removed or altered",
        )  # fmt: skip
        add_break(result.verify, brk, _MAX_LISTED)
    return result
