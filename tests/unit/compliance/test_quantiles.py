"""compliance.quantiles: exact nearest-rank percentiles without sorting a copy."""

from __future__ import annotations

import random
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.quantiles import nearest_rank, percentile, percentiles


def _reference(values: list[int], pct: float) -> int:
    return sorted(values)[nearest_rank(len(values), pct) - 1]


def test_empty_is_none() -> None:
    """No values: no percentile."""
    assert percentile(array("q"), 50) is None


def test_wide_range_with_outlier_is_exact() -> None:
    """Microsecond latencies clustered near zero with a ten-day outlier still give the exact median and p99."""
    rng = random.Random(7)
    values = [rng.randrange(5_000, 60_000) for _ in range(20_000)] + [10 * 86_400 * 1_000_000]
    arr = array("q", values)
    for pct in (50, 99, 100):
        assert percentile(arr, pct) == _reference(values, pct)


@given(st.lists(st.integers(min_value=-(2**62), max_value=2**62), min_size=1, max_size=200),
       st.sampled_from([1, 25, 50, 90, 99, 100]))
def test_matches_sorting(values: list[int], pct: float) -> None:
    """For any integers, the answer equals the nearest-rank value of the sorted list."""
    assert percentile(array("q", values), pct) == _reference(values, pct)


def test_values_over_several_sorted_pieces_are_exact() -> None:
    """200,001 values (four pieces of 65,536), duplicates and negatives among them: every asked rank exact."""
    rng = random.Random(11)
    values = [rng.randrange(-1_000, 1_000_000) for _ in range(200_000)] + [rng.choice([0, 5, 5, 5])]
    pcts = [0.001, 1, 25, 50, 75, 99, 99.999, 100]
    assert percentiles(array("q", values), pcts) == [_reference(values, p) for p in pcts]
    assert percentiles(array("q"), pcts) == [None] * len(pcts)


def test_rank_bounds() -> None:
    """Ranks are 1-based and clamped; a percentile outside (0, 100] is refused."""
    assert nearest_rank(10, 50) == 5
    assert nearest_rank(10, 99) == 10
    assert nearest_rank(1, 1) == 1
    with pytest.raises(ValueError, match="pct"):
        nearest_rank(10, 0)
