"""worker.reports.prefetch._loads: evidence read by orjson must be the objects json.loads gives."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.reports.prefetch import _loads

_text = st.text(max_size=20)
_numbers = st.integers(min_value=-(2**80), max_value=2**80) | st.floats(allow_nan=False, allow_infinity=False)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=15,
)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 in Python; not here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=500, deadline=None)
@given(value=_json)
def test_the_objects_are_json_loads_objects(value: Any) -> None:
    # PostgreSQL writes jsonb with ", " and ": " and keeps non-ASCII as UTF-8.
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    raw = text.encode("utf-8", "surrogatepass")
    assert _same(_loads(raw), json.loads(text))
    assert _same(_loads(text), json.loads(text))


def test_numbers_orjson_would_change_are_read_by_json() -> None:
    """orjson turns an integer past 64 bits into a float; the evidence must keep it exact."""
    cases = ('{"n": 123456789012345678901234567890}', "[-9223372036854775809]", '{"a": "x", "b": 18446744073709551616}')
    for text in cases:
        assert _same(_loads(text.encode()), json.loads(text))
    assert _loads(b'{"sid": "SM00000000000000000000000000001234", "n": 12}') == {
        "sid": "SM00000000000000000000000000001234",
        "n": 12,
    }


def test_a_lone_surrogate_escape_is_read_as_json_reads_it() -> None:
    assert _loads(b'{"a": "\\ud800"}') == {"a": "\ud800"}
