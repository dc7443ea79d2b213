"""``campaign preview``: the send gate's dry run over the audience, at the planned send time.

Nothing is written. Each recipient's facts are read the way the send path reads them (consent
rows covering the send, the frequency count in the 24 h before the planned time, the
relationship, an undeliverable mark, where the number and address place the person) and
``compliance.gate.evaluate_send`` decides, at the time the text would be sent: the campaign's
fire time, each recipient's own for a local-time send, the next day at the delay's local time
for review requests. The answer is counts by outcome and reason, a few masked numbers per
reason, when deferred texts would go, the coupon pool's cover, and the segment count of the
template filled with the longest values the audience has.

The real decision still happens at send time, under the number's lock: consent can change in
between, so a preview is a forecast, not a promise.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.campaign_schedule import local_fire_at, parse_hhmm
from compliance.gate import SendFacts, SendPurpose, evaluate_send
from compliance.phones import mask
from compliance.recipient import locate
from compliance.segments import count_segments
from compliance.templates import render
from compliance.us_states import state_from_address
from worker import pii
from worker.campaigns import schedules
from worker.campaigns.audience import AUDIENCE_SQL
from worker.campaigns.consent_view import consent_rows
from worker.campaigns.definitions import get_campaign, steps_of
from worker.models import Campaign
from worker.outbound.facts import gate_policy

__all__ = ["Preview", "preview"]

SAMPLES_PER_REASON = 3
_CHUNK = 5000


@dataclass
class Preview:
    campaign_id: uuid.UUID
    planned_at: datetime | None
    audience: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    deferred_from: datetime | None = None
    deferred_to: datetime | None = None
    segments: int = 0
    encoding: str = "GSM-7"
    longest_text: int = 0
    pool_available: int | None = None
    pool_short_by: int = 0

    def add(self, outcome: str, e164: str | None, when: datetime | None = None) -> None:
        self.audience += 1
        self.outcomes[outcome] += 1
        samples = self.samples.setdefault(outcome, [])
        if e164 and len(samples) < SAMPLES_PER_REASON:
            samples.append(mask(e164))
        if when is not None:
            self.deferred_from = min(self.deferred_from or when, when)
            self.deferred_to = max(self.deferred_to or when, when)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign_id": str(self.campaign_id),
            "planned_at": self.planned_at.isoformat() if self.planned_at else None,
            "audience": self.audience,
            "outcomes": dict(sorted(self.outcomes.items())),
            "samples": self.samples,
            "deferred": None if self.deferred_from is None or self.deferred_to is None else {
                "from": self.deferred_from.isoformat(), "to": self.deferred_to.isoformat()},
            "segments": self.segments,
            "encoding": self.encoding,
            "longest_text": self.longest_text,
            "pool_available": self.pool_available,
            "pool_short_by": self.pool_short_by,
        }


_FACTS = text(
    """
    SELECT u.idx,
      (SELECT n.error_code FROM compliance.undeliverable_numbers n WHERE n.phone_index = u.idx) AS undeliverable,
      (SELECT count(*) FROM core.outbound_messages o WHERE o.to_index = u.idx AND o.purpose = 'marketing'
         AND o.status IN ('sending', 'sent', 'delivered', 'undelivered', 'unknown')
         AND o.decided_at > CAST(:planned AS timestamptz) - interval '24 hours'
         AND o.decided_at <= CAST(:planned AS timestamptz)) AS marketing_24h
    FROM unnest(CAST(:indexes AS bytea[])) AS u(idx)
    """
)
_RELATIONSHIP = text(
    """
    SELECT cu.id FROM core.customers cu WHERE cu.id = ANY(:ids) AND (
      EXISTS (SELECT 1 FROM core.bookings b WHERE b.customer_id = cu.id AND b.deleted_at IS NULL)
      OR EXISTS (SELECT 1 FROM core.message_threads t JOIN core.messages m ON m.thread_id = t.id
                 WHERE t.customer_id = cu.id AND m.direction = 'inbound'))
    """
)


def _planned(campaign: Campaign, now: datetime) -> datetime | None:
    """The campaign-wide send time (None: each recipient has their own)."""
    kind = campaign.schedule["type"]
    if kind in ("local", "relative"):
        return None
    if campaign.next_run_at is not None:
        return max(campaign.next_run_at, now)
    return schedules.first_fire(campaign.schedule, now) if kind == "once" else \
        schedules.next_fire(campaign.schedule, now) or now


def preview(session: Session, campaign_id: uuid.UUID, *, now: datetime) -> Preview:
    campaign = get_campaign(session, campaign_id)
    planned = _planned(campaign, now)
    result = Preview(campaign.id, planned)
    policy = gate_policy()
    zones_of = {sid: tz for sid, tz in session.execute(text("SELECT id, timezone FROM identity.stations"))}
    sql = text(f"SELECT a.* FROM ({AUDIENCE_SQL}) a WHERE (CAST(:cursor AS uuid) IS NULL OR a.id > "  # noqa: S608
               "CAST(:cursor AS uuid)) ORDER BY a.id LIMIT :chunk")
    cursor: uuid.UUID | None = None
    seen: set[bytes] = set()
    longest_name, longest_wide = "", ""
    while True:
        rows = session.execute(sql, {"station": campaign.station_id, "cursor": cursor, "chunk": _CHUNK}).all()
        if not rows:
            break
        cursor = rows[-1].id
        fresh = [r for r in rows if r.phone_index is None or bytes(r.phone_index) not in seen]
        seen.update(bytes(r.phone_index) for r in fresh if r.phone_index is not None)
        indexes = [bytes(r.phone_index) for r in fresh if r.phone_index is not None]
        consent = consent_rows(session, indexes)
        related = set(session.execute(_RELATIONSHIP, {"ids": [r.id for r in fresh]}).scalars()) \
            if campaign.purpose == "transactional" else set()
        for r in fresh:
            name = r.first_name or ""
            if len(name) > len(longest_name):
                longest_name = name
            if len(name) > len(longest_wide) and count_segments(name).encoding == "UCS-2":
                longest_wide = name
        facts_by_index = {}
        for start in range(0, len(indexes), _CHUNK):
            part = indexes[start:start + _CHUNK]
            at = planned or now
            for idx, undeliverable, count in session.execute(_FACTS, {"indexes": part, "planned": at}):
                facts_by_index[bytes(idx)] = (undeliverable, int(count))
        for r in fresh:
            _judge(result, campaign, r, consent, facts_by_index, related, zones_of, planned, now, policy)
    _segments(session, campaign, result, longest_name, longest_wide)
    _pool_cover(session, campaign, result)
    return result


def _judge(result: Preview, campaign: Campaign, r: Any, consent: Any, facts_by_index: dict[bytes, tuple[Any, int]],
           related: set[uuid.UUID], zones_of: dict[uuid.UUID, str], planned: datetime | None, now: datetime,
           policy: Any) -> None:
    if r.phone_index is None or r.phone_encrypted is None:
        result.add("skipped:no_phone", None)
        return
    e164 = pii.decrypt(r.phone_encrypted, kind="phone")
    address = pii.decrypt(r.address_encrypted, kind="address") if r.address_encrypted else None
    location = locate(e164, state_from_address(address))
    at = planned
    if at is None:
        zones = location.zones if location.known else (zones_of[r.station_id],)
        if campaign.schedule["type"] == "local":
            day = datetime.fromisoformat(campaign.schedule["on"]).date()
            at = local_fire_at(day, parse_hhmm(campaign.schedule["at"]), zones, now,
                               passed=campaign.local_passed_policy)
            if at is None:
                result.add("skipped:local_time_passed", e164)
                return
        else:
            at = schedules.relative_due(campaign.schedule, now, zones)
    index = bytes(r.phone_index)
    undeliverable, marketing_24h = facts_by_index.get(index, (None, 0))
    scopes = consent.get(index, {})
    facts = SendFacts(
        purpose=SendPurpose(campaign.purpose), location=location, is_campaign=True,
        business=scopes.get(None), station=scopes.get(r.station_id),
        has_relationship=r.id in related or campaign.purpose != "transactional",
        marketing_sent_last_24h=marketing_24h, undeliverable_code=undeliverable,
    )
    decision = evaluate_send(facts, at, policy)
    label = decision.outcome.value if decision.reason is None else f"{decision.outcome.value}:{decision.reason.value}"
    result.add(label, e164, decision.defer_until)


def _segments(session: Session, campaign: Campaign, result: Preview, name: str, wide_name: str) -> None:
    stations = session.execute(text(
        "SELECT name, brand_name FROM identity.stations WHERE deleted_at IS NULL AND "
        "(CAST(:s AS uuid) IS NULL OR id = CAST(:s AS uuid))"), {"s": campaign.station_id}).all()
    longest_station = max((s.name for s in stations), key=len, default="")
    longest_brand = max((s.brand_name for s in stations), key=len, default="")
    code = session.execute(text(
        "SELECT COALESCE(max(length(code)), 0) FROM feedback.discount_coupons WHERE pool_id = :p"),
        {"p": campaign.pool_id}).scalar_one() if campaign.pool_id else 0
    templates = [campaign.template, *(s.template for s in steps_of(session, campaign.id).values())]
    for first in {name, wide_name}:
        values = {"first_name": first, "brand": longest_brand, "station_name": longest_station,
                  "coupon_code": "W" * int(code), "review_link": campaign.review_link or "", "booking_date": "Sep 30"}
        for template in templates:
            body = render(template, values)
            count = count_segments(body)
            if (count.segments, count.encoding == "UCS-2") > (result.segments, result.encoding == "UCS-2"):
                result.segments, result.encoding = count.segments, count.encoding
            result.longest_text = max(result.longest_text, len(body))


def _pool_cover(session: Session, campaign: Campaign, result: Preview) -> None:
    if campaign.pool_id is None:
        return
    available = int(session.execute(text(
        "SELECT count(*) FROM feedback.discount_coupons WHERE pool_id = :p AND status = 'available'"),
        {"p": campaign.pool_id}).scalar_one())
    fallback = session.execute(text("SELECT fallback_code FROM feedback.coupon_pools WHERE id = :p"),
                               {"p": campaign.pool_id}).scalar_one()
    result.pool_available = available
    wanting = sum(n for k, n in result.outcomes.items() if not k.startswith("skipped") and not k.startswith("blocked"))
    result.pool_short_by = 0 if fallback else max(0, wanting - available)
