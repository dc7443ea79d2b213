"""compliance.delivery_status: callbacks move the delivery status forward only."""

from __future__ import annotations

import itertools

import pytest

from compliance.delivery_status import DELIVERY_RANK, next_status, outbound_status_for

TABLE = [
    # (current, event, expected)
    (None, "queued", "queued"),
    (None, "delivered", "delivered"),
    ("accepted", "queued", "accepted"),
    ("queued", "sending", "sending"),
    ("queued", "sent", "sent"),
    ("sending", "sent", "sent"),
    ("sent", "delivered", "delivered"),
    ("sent", "undelivered", "undelivered"),
    ("sent", "failed", "failed"),
    # out of order: a late "sent" or "queued" never overwrites a final outcome
    ("delivered", "sent", "delivered"),
    ("delivered", "queued", "delivered"),
    ("delivered", "sending", "delivered"),
    ("undelivered", "sent", "undelivered"),
    ("failed", "queued", "failed"),
    ("sent", "sent", "sent"),
    # between final outcomes, a delivery receipt wins; otherwise the first stays
    ("undelivered", "delivered", "delivered"),
    ("failed", "delivered", "delivered"),
    ("delivered", "undelivered", "delivered"),
    ("delivered", "failed", "delivered"),
    ("undelivered", "failed", "undelivered"),
    # read comes after delivery (RCS/WhatsApp)
    ("delivered", "read", "read"),
    ("read", "delivered", "read"),
    ("sent", "read", "read"),
    # canceled only before the carrier has it, and then terminal
    ("scheduled", "canceled", "canceled"),
    ("queued", "canceled", "canceled"),
    ("sent", "canceled", "sent"),
    ("delivered", "canceled", "delivered"),
    ("canceled", "sent", "canceled"),
    ("canceled", "delivered", "canceled"),
    # unknown events change nothing; an unknown current value yields to a known event
    ("sent", "received", "sent"),
    ("sent", "garbage", "sent"),
    (None, "receiving", None),
    ("weird", "sent", "sent"),
]


@pytest.mark.parametrize(("current", "event", "expected"), TABLE)
def test_next_status_table(current: str | None, event: str, expected: str | None) -> None:
    """Each (current, callback) pair ends in the status the table gives."""
    assert next_status(current, event) == expected


STATUSES = [*DELIVERY_RANK, "canceled"]


@pytest.mark.parametrize("order", list(itertools.permutations(["queued", "sent", "delivered"])))
def test_any_arrival_order_of_the_happy_path_ends_delivered(order: tuple[str, ...]) -> None:
    """queued, sent and delivered in any order end as delivered."""
    status: str | None = None
    for event in order:
        status = next_status(status, event)
    assert status == "delivered"


@pytest.mark.parametrize(("a", "b"), list(itertools.product(STATUSES, STATUSES)))
def test_never_moves_backwards(a: str, b: str) -> None:
    """Applying any callback never lowers the rank of a ranked status."""
    after = next_status(a, b)
    assert after is not None
    if a in DELIVERY_RANK and after in DELIVERY_RANK:
        assert DELIVERY_RANK[after] >= DELIVERY_RANK[a]


@pytest.mark.parametrize(
    ("delivery", "outbound"),
    [
        ("queued", "sent"),
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("canceled", "cancelled"),
        ("nonsense", None),
    ],
)
def test_outbound_status_mapping(delivery: str, outbound: str | None) -> None:
    """The outbox's coarse status follows the delivery status (and uses the outbox's spelling)."""
    assert outbound_status_for(delivery) == outbound
