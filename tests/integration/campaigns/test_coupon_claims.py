"""Coupon claims under concurrency on the real database: no code twice, the rest skipped as pool_empty."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_station
from tests.support.campaigns import ACTOR, audience, pool_with_codes
from worker.campaigns import coupons, definitions, fanout, lifecycle, recipients
from worker.campaigns.errors import CampaignError
from worker.campaigns.schedules import ScheduleInput
from worker.db import session_scope
from worker.errors import ErrorKind


def test_fifty_concurrent_claims_on_ten_codes_assign_ten_and_skip_forty(clean_db: str) -> None:
    """50 recipients materialised at once, each in its own transaction, against 10 codes: 10 get distinct codes."""
    now = datetime.now(UTC)
    with session_scope() as s:
        station = make_station(s)
        audience(s, station, 50, consent=False)
        pool = pool_with_codes(s, 50, station=station)
        campaign = definitions.create_campaign(s, definitions.CampaignSpec(
            kind="coupon", name="flash", station_code=station.code, template="{brand}: {coupon_code} for you",
            schedule=ScheduleInput(at=now + timedelta(seconds=2)), pool_id=pool), ACTOR, now=now)
        lifecycle.start(s, campaign.id, ACTOR, now=now)
        campaign_id = campaign.id
        # Another campaign took 40 of the codes meanwhile.
        s.execute(text("DELETE FROM feedback.discount_coupons WHERE id IN (SELECT id FROM feedback.discount_coupons "
                       "WHERE pool_id = :p LIMIT 40)"), {"p": pool})
    later = now + timedelta(seconds=3)
    with session_scope() as s:
        fanout.plan_due_runs(s, later)
    with session_scope() as s:
        fanout.expand_chunk(s, later, chunk=100)
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            with session_scope() as s:
                fanout.materialise_chunk(s, later, chunk=1)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with session_scope() as s:
        while fanout.materialise_chunk(s, later, chunk=50).total:  # rows a busy thread skipped, if any
            pass
        counts = recipients.status_counts(s, campaign_id)
        issued = s.execute(text("SELECT code, recipient_id FROM feedback.discount_coupons WHERE pool_id = :p "
                                "AND status = 'issued'"), {"p": pool}).all()
        bodies = s.execute(text("SELECT body FROM core.outbound_messages WHERE campaign_id = :c"),
                           {"c": campaign_id}).scalars().all()
    assert counts.by_state() == {"queued": 10, "skipped": 40}
    assert counts.by_reason() == {"skipped:pool_empty": 40}
    assert len(issued) == 10
    assert len({code for code, _ in issued}) == 10
    assert len({recipient for _, recipient in issued}) == 10
    assert sorted(b.split(": ")[1].split(" ")[0] for b in bodies) == sorted(code for code, _ in issued)


def test_a_campaign_does_not_start_when_its_pool_is_smaller_than_its_audience(clean_db: str) -> None:
    """5 codes for 6 recipients: start is refused with the counts; with a fallback code it starts."""
    now = datetime.now(UTC)
    with session_scope() as s:
        station = make_station(s)
        audience(s, station, 6, consent=False)
        pool = pool_with_codes(s, 5, station=station)
        campaign = definitions.create_campaign(s, definitions.CampaignSpec(
            kind="coupon", name="x", station_code=station.code, template="{coupon_code}",
            schedule=ScheduleInput(at=now + timedelta(hours=1)), pool_id=pool), ACTOR, now=now)
        campaign_id = campaign.id
    with session_scope() as s, pytest.raises(CampaignError, match="has 5 codes for an audience of 6") as refused:
        lifecycle.start(s, campaign_id, ACTOR, now=now)
    assert refused.value.kind is ErrorKind.CONFLICT
    with session_scope() as s:
        s.execute(text("UPDATE feedback.coupon_pools SET fallback_code = 'WELCOME5' WHERE id = :p"), {"p": pool})
        assert lifecycle.start(s, campaign_id, ACTOR, now=now).status == "scheduled"


def test_a_code_redeemed_twice_is_refused_naming_the_first_redemption(clean_db: str) -> None:
    """The second redemption is a Conflict that says when and by whom the code was redeemed."""
    now = datetime.now(UTC)
    with session_scope() as s:
        station = make_station(s)
        [number] = audience(s, station, 1, consent=False)
        pool = pool_with_codes(s, 1, station=station)
        customer = s.execute(text("SELECT id FROM core.customers WHERE station_id = :s"), {"s": station.id}
                             ).scalar_one()
        [code] = coupons.claim(s, pool, [coupons.CodeWant(customer_id=customer, station_id=station.id)])
        assert code is not None
        coupons.redeem(s, code[1].lower(), ACTOR, now=now)
    with session_scope() as s, pytest.raises(CampaignError) as refused:
        coupons.redeem(s, code[1], ACTOR, now=now + timedelta(hours=1))
    assert refused.value.kind is ErrorKind.CONFLICT
    assert f"already redeemed at {now.isoformat()} by marketer" in str(refused.value)
    assert number


def test_an_import_lists_its_rejects_and_a_low_pool_warns_once(clean_db: str) -> None:
    """A POS CSV: codes stored elsewhere and bad lines are listed; a pool below its threshold warns once, again
    only after a refill and a new fall."""
    with session_scope() as s:
        station = make_station(s)
        other = coupons.create_pool(s, ACTOR, name="other", station_code=station.code, source="imported")
        coupons.import_codes(s, other.id, "code\nTAKEN-1\n", ACTOR)
        pool = coupons.create_pool(s, ACTOR, name="pos", station_code=station.code, source="imported",
                                   low_stock_threshold=3)
        report = coupons.import_codes(s, pool.id, "code,expires_on\nNEW-1,\nTAKEN-1,\nNEW-2,2020-13-01\nNEW-1,\n",
                                      ACTOR)
        pool_id = pool.id
    assert report.added == 1
    assert [(r.line, r.reason.split(" ")[0]) for r in report.rejects] == [(3, "the"), (4, "expires_on"),
                                                                          (5, "duplicate")]
    with session_scope() as s:
        assert coupons.check_stock(s) == [("pos", 1)]
    with session_scope() as s:
        assert coupons.check_stock(s) == []
        coupons.import_codes(s, pool_id, "code\nNEW-3\nNEW-4\nNEW-5\n", ACTOR)
    with session_scope() as s:
        assert coupons.check_stock(s) == []  # refilled: 4 available, the warning is re-armed
        s.execute(text("DELETE FROM feedback.discount_coupons WHERE code IN ('NEW-3', 'NEW-4')"))
    with session_scope() as s:
        assert coupons.check_stock(s) == [("pos", 2)]


def _prepared(sql: str) -> tuple[str, list[str]]:
    """``sql`` with its ``%(name)s``/``%(name)b`` parameters as ``$n`` (for PREPARE) and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\(([a-z_]+)\)[sb]", number, sql), names


def test_the_claim_pairs_codes_and_wants_without_a_join_over_every_pair(db_session: Session) -> None:
    """The fan-out claims a chunk of codes per transaction with a prepared (generic) plan.

    Pairing the codes picked with the wants by joining two row sets on a row number let the
    generic plan, with its one-row estimates for a table of freshly generated codes, choose a
    nested loop comparing every code with every want (1,000 x 1,000 per chunk, ~230 ms of the
    fan-out's 100,000-recipient run for each chunk). The plan must have no join filter.
    """
    sql, names = _prepared(coupons._CLAIM)
    types = {"pool": "uuid", "n": "bigint", "valid_days": "int", "customers": "uuid[]", "stations": "uuid[]",
             "recipients": "uuid[]", "reviews": "uuid[]"}
    station = make_station(db_session)
    pool = pool_with_codes(db_session, 200, station=station)
    ids = "ARRAY[" + ", ".join(["gen_random_uuid()"] * 1000) + "]"
    values = {"pool": f"'{pool}'", "n": "1000", "valid_days": "NULL", "customers": ids, "stations": ids,
              "recipients": ids, "reviews": ids}
    db_session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    db_session.execute(text(f"PREPARE claim_plan ({', '.join(types[n] for n in names)}) AS {sql}"))
    try:
        plan = "\n".join(db_session.execute(
            text(f"EXPLAIN EXECUTE claim_plan ({', '.join(values[n] for n in names)})")).scalars())
    finally:
        db_session.execute(text("DEALLOCATE claim_plan"))
    assert "Update on discount_coupons" in plan
    assert "Join Filter" not in plan, plan
