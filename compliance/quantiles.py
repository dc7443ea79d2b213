"""Exact percentiles of a large array of integers, without sorting a copy of it.

The opt-out report keeps one latency per revocation as integer microseconds in an
``array('q')`` (8 bytes each: 8 MB for a million rows). ``sorted()`` would build a list of
a million int objects (about 36 MB more) just to read three numbers, and the report's memory
must stay flat as its range grows. So a percentile is found by narrowing a value window:
count the values per bucket over the window (65,536 buckets), keep the bucket that holds
the wanted rank, repeat inside it. Each pass reads the array once and narrows the window by
a factor of 65,536, so even a 64-bit range needs at most four passes, and the answer is the
exact nearest-rank value, not an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["nearest_rank", "percentile"]

_BUCKETS = 1 << 16


def nearest_rank(count: int, pct: float) -> int:
    """The 1-based rank of the ``pct`` percentile among ``count`` values (nearest-rank method)."""
    if count <= 0:
        raise ValueError("no values")
    if not 0 < pct <= 100:
        raise ValueError("pct must be in (0, 100]")
    return max(1, min(count, math.ceil(pct / 100 * count)))


def percentile(values: Sequence[int], pct: float) -> int | None:
    """The exact nearest-rank ``pct`` percentile of ``values`` (None when there are none)."""
    if not values:
        return None
    rank = nearest_rank(len(values), pct)  # among values in [lo, hi]
    lo, hi = min(values), max(values)
    while lo < hi:
        width = (hi - lo) // _BUCKETS + 1
        counts = [0] * _BUCKETS
        for v in values:
            if lo <= v <= hi:
                counts[(v - lo) // width] += 1
        seen = 0
        for bucket, n in enumerate(counts):
            if seen + n >= rank:
                rank -= seen
                lo, hi = lo + bucket * width, min(hi, lo + bucket * width + width - 1)
                break
            seen += n
        if width == 1:
            break
    return lo
