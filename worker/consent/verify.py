"""``msgworker ledger verify``: recompute the hash chain and replay the projection.

For every number (in blind-index order) and each of its events (in seq order):

- the first event must have no prev_hash (otherwise earlier events are missing);
- every other event's prev_hash must equal the stored hash of the event before it
  (otherwise an event between them was deleted, inserted or re-hashed);
- the stored hash must equal the hash recomputed from the row (otherwise the row was
  altered after it was written).

Then the events are replayed through compliance.consent_rules.apply_event and the
result compared with compliance.consent_state, field by field. Deleting a number's LAST
event leaves its chain intact, but not its state row (last_event_seq / last_event_hash),
so that shows up here.

Events and state rows are streamed (server-side cursors) and merged by blind index, so
memory stays flat on millions of rows. Run it in one REPEATABLE READ snapshot (the CLI
does) so concurrent appends do not look like breaks.

The report's ``digest`` is SHA-256 over every number's (blind index, head hash) in
order: write it down (outside this database) after a verify, and a later rewrite of any
history before that point cannot be made to match it.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from compliance.consent_rules import ConsentSnapshot, EventFacts, affected_scopes, apply_event
from compliance.ledger_chain import ChainBreak, StateMismatch, VerifyReport, add_break, check_chain
from worker.consent.state import SNAPSHOT_FIELDS, snapshot_of
from worker.models import ConsentEvent, ConsentState

__all__ = ["ChainBreak", "StateMismatch", "VerifyReport", "add_break", "check_chain", "verify"]

_BATCH = 5000
_PROGRESS_EVERY = 5000


_EVENT_COLS = (
    ConsentEvent.seq,
    ConsentEvent.id,
    ConsentEvent.phone_index,
    ConsentEvent.station_id,
    ConsentEvent.kind,
    ConsentEvent.purpose,
    ConsentEvent.source,
    ConsentEvent.evidence,
    ConsentEvent.occurred_at,
    ConsentEvent.recorded_at,
    ConsentEvent.idempotency_key,
    ConsentEvent.prev_hash,
    ConsentEvent.hash,
)


def _grouped(rows: Iterator[Row[Any]]) -> Iterator[tuple[bytes, list[Row[Any]]]]:
    for key, group in itertools.groupby(rows, key=lambda r: bytes(r.phone_index)):
        yield key, list(group)


def verify(
    session: Session, *, max_problems: int = 1000, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """``progress(n)`` is told every few thousand events how many more were checked (a
    million-event ledger takes minutes)."""
    report = VerifyReport()
    reported = 0
    events = session.execute(
        select(*_EVENT_COLS).order_by(ConsentEvent.phone_index, ConsentEvent.seq).execution_options(yield_per=_BATCH)
    )
    states = session.execute(
        select(ConsentState.phone_index, ConsentState.station_id, *[getattr(ConsentState, f) for f in SNAPSHOT_FIELDS])
        .order_by(ConsentState.phone_index)
        .execution_options(yield_per=_BATCH)
    )
    ev_groups = _grouped(iter(events))
    st_groups = _grouped(iter(states.mappings()))  # type: ignore[arg-type]
    digest = hashlib.sha256()
    ev = next(ev_groups, None)
    st = next(st_groups, None)
    while ev is not None or st is not None:
        if st is None or (ev is not None and ev[0] < st[0]):
            assert ev is not None
            key, ev_rows, st_rows = ev[0], ev[1], []
            ev = next(ev_groups, None)
        elif ev is None or st[0] < ev[0]:
            key, ev_rows, st_rows = st[0], [], st[1]
            st = next(st_groups, None)
        else:
            key, ev_rows, st_rows = ev[0], ev[1], st[1]
            ev = next(ev_groups, None)
            st = next(st_groups, None)
        report.events += len(ev_rows)
        report.state_rows += len(st_rows)
        if ev_rows:
            report.numbers += 1
            digest.update(key + bytes(ev_rows[-1].hash))
        check_chain(report, key, ev_rows, max_problems)
        _check_projection(report, key, ev_rows, st_rows, max_problems)
        if progress is not None and report.events - reported >= _PROGRESS_EVERY:
            progress(report.events - reported)
            reported = report.events
    if progress is not None and report.events > reported:
        progress(report.events - reported)
    report.digest = digest.hexdigest()
    return report


def _check_projection(
    report: VerifyReport, key: bytes, ev_rows: list[Row[Any]], st_rows: list[Any], max_problems: int
) -> None:
    replayed: dict[uuid.UUID | None, ConsentSnapshot] = {}
    for row in ev_rows:
        facts = EventFacts.from_evidence(
            id=row.id,
            seq=row.seq,
            hash=bytes(row.hash),
            kind=row.kind,
            purpose=row.purpose,
            station_id=row.station_id,
            occurred_at=row.occurred_at,
            evidence=row.evidence,
        )
        try:
            for scope in affected_scopes(row.station_id, replayed):
                replayed[scope] = apply_event(replayed.get(scope, ConsentSnapshot()), facts)
        except ValueError as exc:
            _add_mismatch(report, StateMismatch(key, row.station_id, f"event seq {row.seq}: {exc}"), max_problems)
    stored = {m["station_id"]: snapshot_of(m) for m in st_rows}
    for scope in sorted(set(replayed) | set(stored), key=lambda s: "" if s is None else str(s)):
        want, have = replayed.get(scope), stored.get(scope)
        if want is None:
            _add_mismatch(report, StateMismatch(key, scope, "state row has no events behind it"), max_problems)
        elif have is None:
            _add_mismatch(report, StateMismatch(key, scope, "events exist but the state row is missing"), max_problems)
        elif want != have:
            wrong = [f for f in SNAPSHOT_FIELDS if getattr(want, f) != getattr(have, f)]
            _add_mismatch(
                report,
                StateMismatch(key, scope, "state differs from the ledger replay in " + ", ".join(wrong)),
                max_problems,
            )


def _add_mismatch(report: VerifyReport, mismatch: StateMismatch, max_problems: int) -> None:
    report.mismatch_count += 1
    if len(report.mismatches) < max_problems:
        report.mismatches.append(mismatch)
