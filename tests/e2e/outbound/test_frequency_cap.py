"""The marketing frequency cap with real processes (issue 16 point 1): real celery workers, the
real send task, PostgreSQL, Redis and the fake Twilio over HTTP.

Texts to one number that fall due at the same moment used to be decided from facts read once
per batch, so all of them passed a cap that one-at-a-time sends held. The property test runs
any mix of marketing texts to one number (due times, stations, campaigns, batches of any size,
a batch published twice) through two worker processes at once, over a history of texts sent
in the last 30 hours, and checks that the texts that went out never exceed the cap in any
rolling 24 hours and that every due text held back is blocked with ``frequency_cap``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.factories import make_station
from tests.support import processes
from tests.support.campaigns import grant_marketing
from tests.support.numbers import numbers_lawful_now
from tests.support.processes import wait_for
from worker.app import app
from worker.db import session_scope
from worker.models import Campaign
from worker.outbox import enqueue
from worker.provider.fake import FakeTwilio
from worker.settings import get_settings

pytestmark = pytest.mark.e2e

DAY = timedelta(hours=24)
# Rate limiting would send texts back to the outbox for the release tick; these tests publish
# the send tasks themselves and are about the cap.
UNPACED = {"OUTBOUND_RATE_LIMIT_ENABLED": "false"}


def _rows(number_index: bytes) -> list[tuple[uuid.UUID, str, str | None, datetime | None, datetime]]:
    with session_scope() as s:
        return [
            (r.id, r.status, r.gate_reason, r.sent_at, r.not_before)
            for r in s.execute(
                text(
                    "SELECT id, status, gate_reason, sent_at, not_before FROM core.outbound_messages "
                    "WHERE to_index = :idx"
                ),
                {"idx": number_index},
            )
        ]


def test_four_texts_due_together_from_four_stations_deliver_three(
    fake_twilio: FakeTwilio, worker_proc: processes.Proc, proc_dir: Path
) -> None:
    """Four marketing texts to one number, due at the same moment from four stations, through beat and
    the worker: three reach Twilio and the fourth is blocked with frequency_cap (the cap is 3)."""
    assert get_settings().OUTBOUND_MARKETING_CAP_PER_24H == 3
    [number] = numbers_lawful_now(1)
    due = datetime.now(UTC) + timedelta(seconds=3)
    with session_scope() as s:
        stations = [make_station(s) for _ in range(4)]
        grant_marketing(s, number)
        ids = [
            enqueue(s, station=station, to=number, body=f"Weekend special from {station.code}", purpose="marketing",
                    idempotency_key=f"cap-e2e-{i}", not_before=due).message.id
            for i, station in enumerate(stations)
        ]  # fmt: skip
    beat = processes.start_beat(proc_dir)
    try:
        wait_for(
            lambda: sum(status in ("sent", "blocked") for _, status, *_ in _rows_by_id(ids)) == 4,
            timeout=45,
            what="the four texts decided and sent",
            log=worker_proc.log_path,
        )
    finally:
        beat.stop()
    outcomes = sorted((status, reason) for _, status, reason, *_ in _rows_by_id(ids))
    assert outcomes == [("blocked", "frequency_cap"), ("sent", None), ("sent", None), ("sent", None)]
    assert len(fake_twilio.sent_to(number)) == 3


def _rows_by_id(ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, str, str | None]]:
    with session_scope() as s:
        return [
            (r.id, r.status, r.gate_reason)
            for r in s.execute(
                text("SELECT id, status, gate_reason FROM core.outbound_messages WHERE id = ANY(:ids)"), {"ids": ids}
            )
        ]


# Minutes before now of texts already sent to the number (kept clear of the 24 h edge, where a
# text's own sending time would decide which side it falls on).
_history_minutes = st.one_of(st.integers(1, 23 * 60 + 50), st.integers(24 * 60 + 10, 30 * 60))


@dataclass(frozen=True)
class DueText:
    """One marketing text of an example."""

    minutes_overdue: int  # due this long ago (0: just now)
    station: int
    campaign: int | None
    future: bool  # not due yet: the send task must leave it alone

    def not_before(self) -> datetime:
        if self.future:
            return datetime.now(UTC) + timedelta(hours=1)
        return datetime.now(UTC) - timedelta(minutes=self.minutes_overdue)


_due_text = st.builds(
    DueText,
    minutes_overdue=st.integers(0, 600),
    station=st.integers(0, 3),
    campaign=st.sampled_from([None, 0, 1]),
    future=st.sampled_from([False, False, False, True]),
)


def _lawful_history(minutes: list[int], cap: int) -> list[int]:
    """The history as sends under the cap could have left it: no 24 h window holds more than ``cap``."""
    kept: list[int] = []
    for m in sorted(minutes, reverse=True):  # oldest first
        if sum(1 for k in kept if k - m < 24 * 60) < cap:
            kept.append(m)
    return kept


def _max_in_any_day(times: list[datetime]) -> int:
    ordered = sorted(times)
    return max((sum(1 for t in ordered[i:] if t - start < DAY) for i, start in enumerate(ordered)), default=0)


def test_two_workers_never_exceed_the_cap_in_any_rolling_day(
    fake_twilio: FakeTwilio, clean_db: str, clean_redis: object, proc_dir: Path
) -> None:
    """For any mix of marketing texts to one number sent by two worker processes at once, the texts that
    went out in any rolling 24 h never exceed the cap, and every due text held back is frequency_cap."""
    cap = get_settings().OUTBOUND_MARKETING_CAP_PER_24H
    with session_scope() as s:
        stations = [make_station(s) for _ in range(4)]
        station_ids = [station.id for station in stations]
        campaigns = []
        for i in range(2):
            campaign = Campaign(station_id=station_ids[i], name=f"Cap campaign {i}", kind="broadcast", template="x",
                                audience={"type": "all_customers"}, schedule={"type": "once"})  # fmt: skip
            s.add(campaign)
            s.flush()
            campaigns.append(campaign.id)
    numbers = iter(numbers_lawful_now(400, minutes=20))
    workers = [processes.start_worker(proc_dir, concurrency=1, env=UNPACED, name=f"cap{i}") for i in (1, 2)]
    examples = {"run": 0, "capped": 0}

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        texts=st.lists(_due_text, min_size=2, max_size=10),
        history=st.lists(_history_minutes, max_size=5),
        batch_sizes=st.lists(st.integers(1, 5), min_size=1, max_size=9),
        publish_twice=st.integers(-1, 8),
    )
    def run(texts: list[DueText], history: list[int], batch_sizes: list[int], publish_twice: int) -> None:
        number = next(numbers)
        history = _lawful_history(history, cap)
        with session_scope() as s:
            grant_marketing(s, number, at=datetime.now(UTC) - timedelta(days=3))
            past = []
            for minutes in history:
                past.append(enqueue(s, station_id=station_ids[0], to=number, body="Earlier offer", purpose="marketing",
                                    idempotency_key=uuid.uuid4().hex).message.id)  # fmt: skip
                s.execute(
                    text(
                        "UPDATE core.outbound_messages SET status = 'sent', gate_decision = 'allowed', "
                        "decided_at = now() - make_interval(mins => :m), sent_at = now() - make_interval(mins => :m) "
                        "WHERE id = :id"
                    ),
                    {"id": past[-1], "m": minutes},
                )
            ids, due_ids = [], []
            for i, t in enumerate(texts):
                message_id = enqueue(
                    s, station_id=station_ids[t.station], to=number, body=f"Offer {i}", purpose="marketing",
                    idempotency_key=uuid.uuid4().hex, not_before=t.not_before(),
                    campaign_id=None if t.campaign is None else campaigns[t.campaign],
                ).message.id  # fmt: skip
                ids.append(message_id)
                if not t.future:
                    due_ids.append(message_id)
            index = s.execute(text("SELECT to_index FROM core.outbound_messages WHERE id = :id"),
                              {"id": ids[0]}).scalar_one()  # fmt: skip
        batches, start = [], 0
        for size in batch_sizes:
            if start >= len(ids):
                break
            batches.append(ids[start : start + size])
            start += size
        if start < len(ids):
            batches.append(ids[start:])
        if 0 <= publish_twice < len(batches):
            batches.append(batches[publish_twice])  # a send task delivered twice
        for batch in batches:
            app.send_task("tasks.send.send_messages", kwargs={"message_ids": [str(i) for i in batch]})

        def settled() -> bool:
            return all(
                status not in ("queued", "sending") and not (status == "pending" and nb <= datetime.now(UTC))
                for _, status, _, _, nb in _rows(bytes(index))
            )

        wait_for(settled, timeout=30, interval=0.05, what="the example's texts decided", log=workers[0].log_path)
        assert all(w.alive for w in workers)
        rows = {r[0]: r for r in _rows(bytes(index))}
        went = [rows[i] for i in due_ids if rows[i][1] == "sent"]
        held = [rows[i] for i in due_ids if rows[i][1] != "sent"]
        assert [(status, reason) for _, status, reason, _, _ in held] == [("blocked", "frequency_cap")] * len(held)
        assert all(rows[i][1] == "pending" for i in ids if i not in due_ids)
        sent_times = [rows[i][3] for i in past] + [sent_at for *_, sent_at, _ in went]
        assert all(t is not None for t in sent_times)
        assert _max_in_any_day(sent_times) <= cap  # type: ignore[arg-type]
        # Not too strict either: every text the cap allowed went.
        recent = sum(1 for m in history if m < 24 * 60)
        assert len(went) == min(len(due_ids), cap - recent)
        assert len(fake_twilio.sent_to(number)) == len(went)
        examples["run"] += 1
        examples["capped"] += bool(held)

    try:
        run()
    finally:
        for w in workers:
            w.stop()
    batches_run = [w.log().count("Task tasks.send.send_messages[") for w in workers]
    print(f"cap property: {examples['run']} examples, {examples['capped']} reached the cap; "
          f"send tasks received per worker: {batches_run}")  # the test's own evidence, shown with -s
    assert examples["run"] >= 20
    assert examples["capped"] >= 4, "too few examples reached the cap to show anything"
    assert all(batches_run), "one worker process took no batch: the two never raced"
