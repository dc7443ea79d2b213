"""Fan-out on the real database: runs, chunks, outbox rows with their keys, states that sum to the audience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_station
from tests.support.campaigns import ACTOR, audience, opt_out, outbox_rows, pool_with_codes, run_tick
from worker.campaigns import definitions, fanout, lifecycle, recipients
from worker.campaigns.schedules import ScheduleInput
from worker.models import Campaign


def coupon_campaign(session: Session, station_code: str, pool: object, at: datetime, now: datetime,
                    template: str = "{brand}: {first_name}, 20% off with {coupon_code}") -> Campaign:
    spec = definitions.CampaignSpec(kind="coupon", name="winter", station_code=station_code, template=template,
                                    schedule=ScheduleInput(at=at), pool_id=pool)  # type: ignore[arg-type]
    return definitions.create_campaign(session, spec, ACTOR, now=now)


def test_a_coupon_campaign_queues_one_outbox_row_per_recipient_with_its_own_code(db_session: Session) -> None:
    """Each recipient gets one outbox row keyed campaign:<id>:<step>:<customer>:<version>, with a distinct code."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    audience(db_session, station, 12)
    pool = pool_with_codes(db_session, 12, station=station)
    campaign = coupon_campaign(db_session, station.code, pool, now + timedelta(minutes=1), now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    assert run_tick(db_session, now)["runs"] == 0  # not due yet
    later = now + timedelta(minutes=1, seconds=5)
    report = run_tick(db_session, later, chunk=5)
    assert report["runs"] == 1
    rows = outbox_rows(db_session, campaign.id)
    assert len(rows) == 12
    assert all(str(r["idempotency_key"]).startswith(f"campaign:{campaign.id}:1.once:") for r in rows)
    assert all(str(r["idempotency_key"]).endswith(":1") for r in rows)
    assert all(r["purpose"] == "marketing" and "Reply STOP to opt out." in str(r["body"]) for r in rows)
    codes = {str(r["body"]).split("with ")[1].split(" ")[0] for r in rows}
    assert len(codes) == 12
    counts = recipients.status_counts(db_session, campaign.id)
    assert counts.total == 12
    assert counts.by_state() == {"queued": 12}
    again = run_tick(db_session, later + timedelta(seconds=5))
    assert again["materialised"] == 0
    assert len(outbox_rows(db_session, campaign.id)) == 12


def test_a_second_expansion_or_materialisation_adds_nothing(db_session: Session) -> None:
    """Running the expansion and the fan-out again over a finished run creates no row and no outbox row."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    audience(db_session, station, 7)
    campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
        kind="broadcast", name="news", station_code=station.code, template="{brand}: we are open Sunday",
        schedule=ScheduleInput(at=now + timedelta(seconds=30))), ACTOR, now=now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    later = now + timedelta(minutes=1)
    run_tick(db_session, later, chunk=3)
    db_session.execute(text("UPDATE marketing.campaign_runs SET status = 'expanding', cursor = NULL"))
    db_session.execute(text("UPDATE marketing.campaigns SET status = 'running' WHERE id = :c"), {"c": campaign.id})
    while fanout.expand_chunk(db_session, later, chunk=3):
        pass
    fanout.materialise_chunk(db_session, later, chunk=100)
    assert recipients.status_counts(db_session, campaign.id).total == 7
    assert len(outbox_rows(db_session, campaign.id)) == 7


def test_an_opted_out_number_is_cancelled_not_queued_and_counts_still_sum(db_session: Session) -> None:
    """A number that opted out before its row was materialised gets a cancelled row; the rest are queued."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    numbers = audience(db_session, station, 5)
    campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
        kind="broadcast", name="news", station_code=station.code, template="{brand}: news",
        schedule=ScheduleInput(at=now + timedelta(seconds=30))), ACTOR, now=now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    later = now + timedelta(minutes=1)
    fanout.plan_due_runs(db_session, later)
    while fanout.expand_chunk(db_session, later, chunk=10):
        pass
    opt_out(db_session, numbers[0])
    assert recipients.cancel_opted_out(db_session) == 1
    fanout.materialise_chunk(db_session, later, chunk=100)
    counts = recipients.status_counts(db_session, campaign.id)
    assert counts.by_state() == {"cancelled": 1, "queued": 4}
    assert counts.by_reason() == {"cancelled:opted_out": 1}


def test_a_missed_run_is_marked_missed_under_skip(db_session: Session) -> None:
    """A run found an hour after its time under the default skip policy makes missed rows and no outbox row."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    audience(db_session, station, 3)
    campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
        kind="broadcast", name="news", station_code=station.code, template="{brand}: news",
        schedule=ScheduleInput(at=now + timedelta(minutes=1))), ACTOR, now=now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    run_tick(db_session, now + timedelta(hours=1))
    counts = recipients.status_counts(db_session, campaign.id)
    assert counts.by_reason() == {"missed:missed_run": 3}
    assert outbox_rows(db_session, campaign.id) == []
    db_session.refresh(campaign)
    assert campaign.status == "completed"


def test_send_within_sends_a_late_run_inside_its_window(db_session: Session) -> None:
    """With send_within 2 h, a run found an hour late is still sent."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    audience(db_session, station, 2)
    campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
        kind="broadcast", name="news", station_code=station.code, template="{brand}: news",
        schedule=ScheduleInput(at=now + timedelta(minutes=1)), missed_policy="send_within",
        missed_window=timedelta(hours=2)), ACTOR, now=now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    run_tick(db_session, now + timedelta(hours=1))
    assert recipients.status_counts(db_session, campaign.id).by_state() == {"queued": 2}


@pytest.mark.parametrize("fallback", [None, "SORRY10"])
def test_an_empty_pool_skips_the_recipient_or_sends_the_fallback(db_session: Session, fallback: str | None) -> None:
    """Past its last code, a pool without fallback skips recipients (pool_empty); with one, they get the fallback."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    audience(db_session, station, 4)
    pool = pool_with_codes(db_session, 4, station=station, fallback=fallback)
    campaign = coupon_campaign(db_session, station.code, pool, now + timedelta(seconds=30), now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    db_session.execute(text("DELETE FROM feedback.discount_coupons WHERE id IN "
                            "(SELECT id FROM feedback.discount_coupons WHERE pool_id = :p LIMIT 2)"), {"p": pool})
    run_tick(db_session, now + timedelta(minutes=1))
    counts = recipients.status_counts(db_session, campaign.id)
    if fallback is None:
        assert counts.by_state() == {"queued": 2, "skipped": 2}
        assert counts.by_reason() == {"skipped:pool_empty": 2}
    else:
        assert counts.by_state() == {"queued": 4}
        assert sum("SORRY10" in str(r["body"]) for r in outbox_rows(db_session, campaign.id)) == 2


def test_local_time_sends_fire_at_each_recipients_wall_clock_and_a_passed_time_goes_next_day(
    db_session: Session,
) -> None:
    """11:00 local on 7 Dec at 11:30 New York time: the New York recipient is due 11:00 NY on the 8th, LA 11:00 LA
    on the 7th; in March, across the DST change, 11:00 stays 11:00 on the recipient's clock."""
    with freeze_time("2026-12-07 16:30:00+00:00"):
        now = datetime.now(UTC)
        station = make_station(db_session)
        audience(db_session, station, ["+12125550143", "+13105550143"])
        campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
            kind="broadcast", name="local", station_code=station.code, template="{brand}: good morning",
            schedule=ScheduleInput(local_time="11:00", on=datetime(2026, 12, 7).date())), ACTOR, now=now)
        lifecycle.start(db_session, campaign.id, ACTOR, now=now)
        run_tick(db_session, now)
    dues = sorted(db_session.execute(text(
        "SELECT due_at FROM marketing.campaign_recipients WHERE campaign_id = :c"), {"c": campaign.id}).scalars())
    assert dues == [datetime(2026, 12, 7, 19, 0, tzinfo=UTC), datetime(2026, 12, 8, 16, 0, tzinfo=UTC)]
    with freeze_time("2026-03-07 12:00:00+00:00"):
        now = datetime.now(UTC)
        spring = definitions.create_campaign(db_session, definitions.CampaignSpec(
            kind="broadcast", name="dst", station_code=station.code, template="{brand}: spring",
            schedule=ScheduleInput(local_time="11:00", on=datetime(2026, 3, 8).date())), ACTOR, now=now)
        lifecycle.start(db_session, spring.id, ACTOR, now=now)
        run_tick(db_session, now)
    ny = ZoneInfo("America/New_York")
    spring_dues = db_session.execute(text(
        "SELECT due_at FROM marketing.campaign_recipients WHERE campaign_id = :c"), {"c": spring.id}).scalars().all()
    assert {d.astimezone(ny).hour for d in spring_dues if d.astimezone(UTC).hour < 17} == {11}
    assert sorted(d.astimezone(UTC).hour for d in spring_dues) == [15, 18]  # EDT (UTC-4) and PDT (UTC-7)


def test_a_missed_run_under_freezegun_is_marked_missed(db_session: Session) -> None:
    """The worker was down at the fire time: an hour later the run's rows are missed, and nothing is queued."""
    with freeze_time("2026-12-07 15:00:00+00:00") as clock:
        station = make_station(db_session)
        audience(db_session, station, 2)
        campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
            kind="broadcast", name="m", station_code=station.code, template="{brand}: hi",
            schedule=ScheduleInput(at=datetime(2026, 12, 7, 15, 30, tzinfo=UTC))), ACTOR, now=datetime.now(UTC))
        lifecycle.start(db_session, campaign.id, ACTOR, now=datetime.now(UTC))
        clock.move_to("2026-12-07 16:45:00+00:00")
        run_tick(db_session, datetime.now(UTC))
    assert recipients.status_counts(db_session, campaign.id).by_reason() == {"missed:missed_run": 2}


def test_an_edit_bumps_the_version_queued_texts_stay_and_cancel_cancels_them(db_session: Session) -> None:
    """Rows queued before an edit keep their text and version; rows due later use the new text and version 2;
    cancel then cancels every unsent outbox row and pending row."""
    now = datetime.now(UTC)
    station = make_station(db_session)
    audience(db_session, station, ["+12125550144", "+13105550144"])
    campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
        kind="broadcast", name="e", station_code=station.code, template="{brand}: first text",
        schedule=ScheduleInput(local_time="10:00", on=(now + timedelta(days=2)).date())), ACTOR, now=now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    run_tick(db_session, now)
    first_due = min(db_session.execute(text("SELECT due_at FROM marketing.campaign_recipients WHERE campaign_id = :c"),
                                       {"c": campaign.id}).scalars())
    fanout.materialise_chunk(db_session, first_due, chunk=10)
    definitions.edit_templates(db_session, campaign.id, ACTOR, template="{brand}: second text")
    fanout.materialise_chunk(db_session, first_due + timedelta(hours=3, minutes=1), chunk=10)
    rows = outbox_rows(db_session, campaign.id)
    assert sorted((str(r["idempotency_key"])[-2:], "first" in str(r["body"])) for r in rows) == [
        (":1", True), (":2", False)]
    lifecycle.cancel(db_session, campaign.id, ACTOR, now=now)
    assert {r["status"] for r in outbox_rows(db_session, campaign.id)} == {"cancelled"}
    assert recipients.status_counts(db_session, campaign.id).by_reason() == {"cancelled:campaign_cancelled": 2}


def test_a_big_run_is_analyzed_so_the_due_claim_walks_the_due_index(db_session: Session) -> None:
    """After a run of ANALYZE_AFTER_ROWS recipients lands, the due-row claim reads the due index in order.

    Planned on the statistics of the table before the run (here: none), the claim read every
    pending row of the run and sorted them at each chunk (quadratic in the run's size; 100,000
    recipients spent ~140 ms a chunk in an on-disk sort). The run's last expansion analyzes.
    """
    now = datetime.now(UTC)
    station = make_station(db_session)
    size = fanout.ANALYZE_AFTER_ROWS
    # Customers straight in SQL (10,000 through the ORM would dominate the test); the expansion
    # reads only their ids, stations and blind indexes.
    db_session.execute(text(
        "INSERT INTO core.customers (station_id, first_name, phone_encrypted, phone_index, source) "
        "SELECT :station, 'Pat', 'x', sha256(CAST(i AS text)::bytea), 'import' FROM generate_series(1, :n) i"
    ), {"station": station.id, "n": size})
    campaign = definitions.create_campaign(db_session, definitions.CampaignSpec(
        kind="broadcast", name="big", station_code=station.code, template="{brand}: we are open Sunday",
        schedule=ScheduleInput(at=now + timedelta(minutes=1))), ACTOR, now=now)
    lifecycle.start(db_session, campaign.id, ACTOR, now=now)
    later = now + timedelta(minutes=1, seconds=5)
    fanout.plan_due_runs(db_session, later)
    while fanout.expand_chunk(db_session, later, chunk=1000):
        pass
    assert recipients.status_counts(db_session, campaign.id).by_state() == {"pending": size}
    plan = "\n".join(db_session.execute(
        text(f"EXPLAIN {fanout._CLAIM_DUE.text}"), {"now": later, "chunk": 1000, "running": [campaign.id]}
    ).scalars())
    assert "Index Scan using ix_campaign_recipients_due" in plan, plan
    assert "Sort" not in plan, plan
