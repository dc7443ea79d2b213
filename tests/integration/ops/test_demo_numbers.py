"""The demos' numbers: never one the database already knows, never the same one twice in a run."""

from __future__ import annotations

import random

from tests.factories import make_customer
from tests.integration.outbound.test_send import add_consent, setup_station
from worker.db import SessionScope
from worker.models import Station
from worker.ops.demo import FreshNumbers


def _raw_draws(seed: int, n: int) -> list[str]:
    """What the seed gives before any check: the exchange's numbers in the picker's order."""
    rng, drawn = random.Random(seed), list[str]()
    while len(drawn) < n:
        candidate = f"+1212555{rng.randrange(1000, 10000)}"
        if candidate not in drawn:
            drawn.append(candidate)
    return drawn


def test_a_number_with_a_ledger_event_or_a_customer_is_skipped(db_scope: SessionScope) -> None:
    """The seed's first number is opted out, its second is a customer: the picker moves past both."""
    first, second, third = _raw_draws(11, 3)
    assert FreshNumbers(random.Random(11), db_scope).new_york() == first  # control: unknown, so taken
    add_consent(None, first, "opt_out", scope=db_scope)
    station_id, _ = setup_station(scope=db_scope)
    with db_scope() as s:
        station = s.get(Station, station_id)
        assert station is not None
        make_customer(s, station, phone_e164=second)

    assert FreshNumbers(random.Random(11), db_scope).new_york() == third


def test_a_run_never_draws_the_same_number_twice(db_scope: SessionScope) -> None:
    """200 draws from each 9,000-number exchange (a repeat is all but certain without the check)."""
    fresh = FreshNumbers(random.Random(3), db_scope)
    drawn = [fresh.new_york() for _ in range(200)] + [fresh.honolulu() for _ in range(200)]
    assert len(set(drawn)) == 400
    assert all(n.startswith("+1212555") for n in drawn[:200])
    assert all(n.startswith("+1808555") for n in drawn[200:])
