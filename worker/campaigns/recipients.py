"""Recipient states, read from the rows themselves and, once a row is in the outbox, from its outbox row.

A row not in the outbox carries its own state: ``pending``, ``missed``, ``skipped`` (reason) or
``cancelled`` (reason). A row in the outbox (``queued`` on the recipient row, with its
``outbound_id``) takes its state from the outbox row at read time, so nothing is copied around
and the counts always sum to the rows (the audience):

======================================  ==========================================
outbox status                           recipient state
======================================  ==========================================
pending, queued, sending, deferred,     ``queued`` (waiting, or deferred by quiet hours)
unknown
sent / delivered                        ``sent`` / ``delivered``
failed, undelivered                     ``failed`` (21610 and invalid numbers land here)
blocked                                 ``blocked`` with the gate's reason
cancelled                               ``cancelled`` (an opt-out, a pause never does this)
======================================  ==========================================

Final states are every one but ``pending`` and ``queued``, except a text the gate held for
review (``blocked: zone_unknown``, not yet reviewed): a person may still release it. A campaign
is ``completed`` only when all its runs are expanded and every row is final.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.consent_rules import OPT_OUT_KINDS

__all__ = ["STATE_SQL", "StatusCounts", "cancel_opted_out", "complete_finished", "status_counts"]

log = structlog.get_logger(__name__)

STATE_SQL = """
  CASE WHEN r.outbound_id IS NULL THEN r.status
       WHEN o.status IN ('sent', 'delivered', 'blocked', 'cancelled') THEN o.status
       WHEN o.status IN ('failed', 'undelivered') THEN 'failed'
       ELSE 'queued' END
"""
_REASON_SQL = "CASE WHEN r.outbound_id IS NULL THEN r.reason WHEN o.status IN ('blocked', 'cancelled', 'failed', " \
              "'undelivered') THEN COALESCE(o.gate_reason, CAST(o.error_code AS text)) END"
_HELD_SQL = "(o.status = 'blocked' AND o.gate_reason = 'zone_unknown' AND o.reviewed_at IS NULL)"

_COUNTS = text(
    f"""
    SELECT r.step, {STATE_SQL} AS state, {_REASON_SQL} AS reason, {_HELD_SQL} IS TRUE AS held, count(*) AS n
    FROM marketing.campaign_recipients r LEFT JOIN core.outbound_messages o ON o.id = r.outbound_id
    WHERE r.campaign_id = :campaign
    GROUP BY 1, 2, 3, 4
    """  # noqa: S608 - constant SQL
)


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """Rows by step and state (and reason): the states sum to ``total``."""

    rows: list[tuple[int, str, str | None, bool, int]]

    @property
    def total(self) -> int:
        return sum(r[4] for r in self.rows)

    def by_state(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _step, state, _reason, _held, n in self.rows:
            out[state] = out.get(state, 0) + n
        return out

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _step, state, reason, _held, n in self.rows:
            if reason:
                out[f"{state}:{reason}"] = out.get(f"{state}:{reason}", 0) + n
        return out

    @property
    def decided(self) -> int:
        """Rows whose text went out or never will (what a progress bar counts)."""
        return sum(n for _s, state, _r, held, n in self.rows if state not in ("pending", "queued") and not held)

    @property
    def sent(self) -> int:
        return sum(n for _s, state, _r, _h, n in self.rows if state in ("sent", "delivered"))


def status_counts(session: Session, campaign_id: uuid.UUID) -> StatusCounts:
    rows = [(int(step), state, reason, bool(held), int(n))
            for step, state, reason, held, n in session.execute(_COUNTS, {"campaign": campaign_id})]
    return StatusCounts(sorted(rows, key=lambda r: (r[0], r[1], r[2] or "")))


_FINISHED = text(
    f"""
    SELECT c.id FROM marketing.campaigns c
    WHERE c.status = 'running' AND c.kind <> 'review_request' AND c.next_run_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM marketing.campaign_runs x WHERE x.campaign_id = c.id AND x.status = 'expanding')
      AND NOT EXISTS (SELECT 1 FROM marketing.campaign_recipients r WHERE r.campaign_id = c.id AND r.status = 'pending')
      AND NOT EXISTS (SELECT 1 FROM marketing.campaign_recipients r
                      JOIN core.outbound_messages o ON o.id = r.outbound_id
                      WHERE r.campaign_id = c.id AND r.status = 'queued'
                        AND (o.status NOT IN ('sent', 'delivered', 'failed', 'undelivered', 'blocked', 'cancelled')
                             OR {_HELD_SQL}))
    FOR UPDATE OF c SKIP LOCKED
    """  # noqa: S608 - constant SQL
)


def complete_finished(session: Session) -> list[uuid.UUID]:
    """Mark ``completed`` every running campaign whose rows are all final; returns their ids."""
    ids = list(session.execute(_FINISHED).scalars())
    if ids:
        session.execute(text("UPDATE marketing.campaigns SET status = 'completed', completed_at = now(), "
                             "updated_at = now() WHERE id = ANY(:ids)"), {"ids": ids})
        for campaign_id in ids:
            log.info("campaign_completed", campaign_id=str(campaign_id))
    return ids


# Numbers with an opt-out event lately (the ledger's occurred_at index), still opted out now. The
# look-back makes a re-run harmless; the fan-out re-checks every row it materialises as well.
_CANCEL_OPTED_OUT = text(
    """
    UPDATE marketing.campaign_recipients r
    SET status = 'cancelled', reason = 'opted_out', updated_at = now()
    FROM marketing.campaigns c, compliance.consent_state cs
    WHERE r.to_index IN (SELECT e.phone_index FROM compliance.consent_events e
                         WHERE e.occurred_at > now() - make_interval(secs => :lookback) AND e.kind = ANY(:kinds))
      AND r.status = 'pending' AND c.id = r.campaign_id AND cs.phone_index = r.to_index
      AND (cs.station_id IS NULL OR cs.station_id = r.station_id)
      AND (cs.opted_out OR (cs.marketing_opted_out AND c.purpose = 'marketing'))
    """
)


def cancel_opted_out(session: Session, *, lookback_seconds: int = 900) -> int:
    """Cancel pending (not yet materialised) rows of numbers that opted out lately; returns how many."""
    params = {"lookback": lookback_seconds, "kinds": sorted(k.value for k in OPT_OUT_KINDS)}
    n = int(session.execute(_CANCEL_OPTED_OUT, params).rowcount or 0)  # type: ignore[attr-defined]
    if n:
        log.info("campaign_rows_cancelled_opted_out", count=n)
    return n
