"""Exact percentiles of a large array of integers, in little memory and little Python time.

The opt-out report keeps one latency per revocation as integer microseconds in an
``array('q')`` (8 bytes each: 8 MB for a million rows). ``sorted()`` of the whole array
would build a list of a million int objects (about 36 MB more) just to read three numbers,
and the report's memory must stay flat as its range grows. So the values are sorted in
pieces of 65,536, each kept as an ``array('q')`` again (8 more bytes per value, one list of a
piece's ints alive at a time), and a percentile is found by bisecting on the value: how many
values are <= v is a C ``bisect`` per piece, and at most 64 halvings of the value range find
the exact nearest-rank value. The report computes its percentiles at the end, after both
processes are done, so this time is on the wall clock: it replaced a pure-Python counting
pass over every value per percentile (about 0.2 s per percentile over 300,000 values).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence

__all__ = ["nearest_rank", "percentile", "percentiles"]

_PIECE = 1 << 16


def nearest_rank(count: int, pct: float) -> int:
    """The 1-based rank of the ``pct`` percentile among ``count`` values (nearest-rank method)."""
    if count <= 0:
        raise ValueError("no values")
    if not 0 < pct <= 100:
        raise ValueError("pct must be in (0, 100]")
    return max(1, min(count, math.ceil(pct / 100 * count)))


def percentiles(values: Sequence[int], pcts: Iterable[float]) -> list[int | None]:
    """The exact nearest-rank percentiles ``pcts`` of ``values`` (None each when there are none)."""
    wanted = list(pcts)
    if not values:
        return [None for _ in wanted]
    pieces = [array("q", sorted(values[i : i + _PIECE])) for i in range(0, len(values), _PIECE)]
    lowest, highest = min(p[0] for p in pieces), max(p[-1] for p in pieces)
    found: list[int | None] = []
    for pct in wanted:
        rank = nearest_rank(len(values), pct)
        lo, hi = lowest, highest  # the answer is the least v with at least ``rank`` values <= v
        while lo < hi:
            mid = (lo + hi) // 2
            if sum(bisect_right(p, mid) for p in pieces) >= rank:
                hi = mid
            else:
                lo = mid + 1
        found.append(lo)
    return found


def percentile(values: Sequence[int], pct: float) -> int | None:
    """The exact nearest-rank ``pct`` percentile of ``values`` (None when there are none)."""
    return percentiles(values, (pct,))[0]
