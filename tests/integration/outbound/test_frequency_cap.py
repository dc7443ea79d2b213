"""The marketing frequency cap inside one send batch (issue 16 point 1), on the real database and fake Twilio.

A batch decides a number's rows in due order, and each decision counts the marketing texts the
batch already let out to that number, so texts falling due at the same moment cannot all pass
a cap that one-at-a-time sends would hold. tests/e2e/outbound/test_frequency_cap.py checks the
same with real processes (two workers, the release tick).
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.factories import make_station
from tests.integration.outbound.test_send import (
    add_consent,
    customer_with_booking,
    noon_la,
    put,
    row,
    settings_with,
    setup_station,
)
from worker.db import SessionScope
from worker.outbound.send import send_batch
from worker.provider.fake import FakeTwilio

CAPPED = {"OUTBOUND_MARKETING_CAP_PER_24H": 3}


def _stations(db_scope: SessionScope, n: int) -> list[uuid.UUID]:
    with db_scope() as s:
        return [make_station(s).id for _ in range(n)]


def _due(db_scope: SessionScope, ids: list[uuid.UUID], minutes_ago: list[int]) -> None:
    """Set each row's due time this many minutes in the past."""
    with db_scope() as s:
        for message_id, minutes in zip(ids, minutes_ago, strict=True):
            s.execute(
                text("UPDATE core.outbound_messages SET not_before = now() - make_interval(mins => :m) WHERE id = :id"),
                {"id": message_id, "m": minutes},
            )


def test_four_texts_due_together_from_four_stations_send_three(fake_twilio: FakeTwilio, db_scope: SessionScope) -> None:
    """Four marketing texts to one number in one batch, cap 3: the three due first go, the last due is frequency_cap."""
    stations = _stations(db_scope, 4)
    to = customer_with_booking(stations[0], scope=db_scope)
    add_consent(None, to, scope=db_scope)
    ids = [put(station, to, purpose="marketing", scope=db_scope) for station in stations]
    _due(db_scope, ids, [3, 1, 4, 2])  # due order: ids[2], ids[0], ids[3], ids[1]

    results = send_batch(ids, task_id="cap-1", now=noon_la(), settings=settings_with(**CAPPED), scope=db_scope)

    assert [(r.status, r.reason) for r in results] == [
        ("sent", None), ("blocked", "frequency_cap"), ("sent", None), ("sent", None)
    ]
    assert len(fake_twilio.sent_to(to)) == 3
    basis = row(ids[1], scope=db_scope).gate_basis
    assert basis is not None
    assert (basis["marketing_sent_last_24h"], basis["marketing_in_batch"]) == (3, 3)
    assert "frequency_cap:failed" in basis["rules"]
    counted = [row(i, scope=db_scope).gate_basis["marketing_in_batch"] for i in (ids[2], ids[0], ids[3])]  # type: ignore[index]
    assert counted == [0, 1, 2]


def test_the_batch_adds_to_what_went_out_earlier_in_the_day(fake_twilio: FakeTwilio, db_scope: SessionScope) -> None:
    """Two texts sent earlier today and three due now, cap 3: one more goes, two are frequency_cap."""
    station_id, _ = setup_station(scope=db_scope)
    to = customer_with_booking(station_id, scope=db_scope)
    add_consent(None, to, scope=db_scope)
    earlier = [put(station_id, to, purpose="marketing", scope=db_scope) for _ in range(2)]
    assert [r.status for r in send_batch(earlier, now=noon_la(), settings=settings_with(**CAPPED),
                                         scope=db_scope)] == ["sent", "sent"]  # fmt: skip
    ids = [put(station_id, to, purpose="marketing", scope=db_scope) for _ in range(3)]
    _due(db_scope, ids, [3, 2, 1])

    results = send_batch(ids, now=noon_la(), settings=settings_with(**CAPPED), scope=db_scope)

    assert [(r.status, r.reason) for r in results] == [
        ("sent", None), ("blocked", "frequency_cap"), ("blocked", "frequency_cap")
    ]
    assert len(fake_twilio.sent_to(to)) == 3


def test_texts_to_other_numbers_and_other_purposes_do_not_count(
    fake_twilio: FakeTwilio, db_scope: SessionScope
) -> None:
    """In one batch, cap 1: each number gets its one marketing text, and transactional texts never count."""
    station_id, _ = setup_station(scope=db_scope)
    a, b = customer_with_booking(station_id, scope=db_scope), customer_with_booking(station_id, scope=db_scope)
    for number in (a, b):
        add_consent(None, number, scope=db_scope)
    ids = [
        put(station_id, a, scope=db_scope),
        put(station_id, a, purpose="marketing", scope=db_scope),
        put(station_id, b, purpose="marketing", scope=db_scope),
        put(station_id, a, scope=db_scope),
        put(station_id, a, purpose="marketing", scope=db_scope),
    ]
    _due(db_scope, ids, [5, 4, 3, 2, 1])

    results = send_batch(ids, now=noon_la(), settings=settings_with(OUTBOUND_MARKETING_CAP_PER_24H=1), scope=db_scope)

    assert [(r.status, r.reason) for r in results] == [
        ("sent", None), ("sent", None), ("sent", None), ("sent", None), ("blocked", "frequency_cap")
    ]


def test_a_text_the_rate_limit_holds_back_is_not_counted(
    fake_twilio: FakeTwilio, clean_redis: object, db_scope: SessionScope
) -> None:
    """Cap 2, two 1/s senders, two texts each: a station's second text waits for a token (pending, not
    counted), so the other station's first still goes and only the last one due is frequency_cap."""
    first, second = _stations(db_scope, 2)
    to = customer_with_booking(first, scope=db_scope)
    add_consent(None, to, scope=db_scope)
    ids = [put(station, to, purpose="marketing", scope=db_scope) for station in (first, first, second, second)]
    _due(db_scope, ids, [4, 3, 2, 1])
    settings = settings_with(OUTBOUND_RATE_LIMIT_ENABLED=True, OUTBOUND_MARKETING_CAP_PER_24H=2)

    now = noon_la()
    results = send_batch(ids, now=now, settings=settings, scope=db_scope)

    assert [(r.status, r.reason) for r in results] == [
        ("sent", None), ("pending", "rate_limited"), ("sent", None), ("blocked", "frequency_cap")
    ]
    assert len(fake_twilio.sent_to(to)) == 2
    # Deferred from the batch's clock, not the wall clock: after 20:00 UTC noon in LA is already past.
    assert row(ids[1], scope=db_scope).not_before > now
