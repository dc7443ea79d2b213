"""compliance.consent_hash: the ledger's canonical bytes are stable and documented."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.consent_hash import (
    HashInput,
    canonical_bytes,
    canonical_evidence,
    event_hash,
    format_ts,
    quick_ts,
    stored_hash_matches,
)

BASE = HashInput(
    id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
    phone_index=bytes(range(32)),
    station_id=None,
    kind="opt_out",
    purpose="all",
    source="sms_keyword",
    evidence={"raw_body": "STOP", "b": 1, "a": [True, None]},
    occurred_at=datetime(2026, 3, 2, 15, 0, 0, 123, tzinfo=UTC),
    recorded_at=datetime(2026, 3, 2, 15, 0, 1, tzinfo=UTC),
    idempotency_key="sms:SM1:opt_out",
    prev_hash=None,
)


def test_canonical_bytes_match_the_documented_format() -> None:
    """The exact bytes in docs/consent-ledger.md: sorted keys, no spaces, Z timestamps with microseconds."""
    expected = (
        b'{"evidence":{"a":[true,null],"b":1,"raw_body":"STOP"},'
        b'"id":"00000000-0000-4000-8000-000000000001",'
        b'"idempotency_key":"sms:SM1:opt_out","kind":"opt_out",'
        b'"occurred_at":"2026-03-02T15:00:00.000123Z",'
        b'"phone_index":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
        b'"prev_hash":null,"purpose":"all","recorded_at":"2026-03-02T15:00:01.000000Z",'
        b'"source":"sms_keyword","station_id":null,"v":1}'
    )
    assert canonical_bytes(BASE) == expected
    assert event_hash(BASE) == hashlib.sha256(expected).digest()


def test_hash_ignores_key_order_and_timezone_spelling() -> None:
    """Evidence key order and the offset a timestamp is written in do not change the hash."""
    eastern = timezone(timedelta(hours=-5))
    other = HashInput(
        **{
            **{f: getattr(BASE, f) for f in BASE.__dataclass_fields__},
            "evidence": {"b": 1, "a": [True, None], "raw_body": "STOP"},
            "occurred_at": BASE.occurred_at.astimezone(eastern),
        }
    )
    assert event_hash(other) == event_hash(BASE)


@pytest.mark.parametrize("field", ["kind", "purpose", "evidence", "prev_hash", "station_id", "idempotency_key"])
def test_every_field_is_covered(field: str) -> None:
    """Changing any hashed field changes the hash."""
    changes = {
        "kind": "opt_in",
        "purpose": "marketing",
        "evidence": {"raw_body": "STOP!"},
        "prev_hash": b"\x01" * 32,
        "station_id": uuid.uuid4(),
        "idempotency_key": "sms:SM2:opt_out",
    }
    other = HashInput(**{**{f: getattr(BASE, f) for f in BASE.__dataclass_fields__}, field: changes[field]})
    assert event_hash(other) != event_hash(BASE)


def test_canonical_evidence_normalises_and_refuses() -> None:
    """Evidence keeps JSON-safe shapes, replaces NUL, and refuses floats and naive datetimes."""
    u = uuid.uuid4()
    out = canonical_evidence({"u": u, "b": b"\x01\xff", "t": datetime(2026, 1, 1, tzinfo=UTC), "s": "a\x00b"})
    assert out == {"u": str(u), "b": "01ff", "t": "2026-01-01T00:00:00.000000Z", "s": "a\ufffdb"}
    with pytest.raises(ValueError, match="floats"):
        canonical_evidence({"x": 1.5})
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ts(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_evidence({1: "x"})


# --- The ledger check's fast path (stored_hash_matches, quick_ts) ---------------------------------
# Hypothesis throws at it what the fast path must hand over to the definition: non-ASCII and
# control text (the format escapes it, orjson does not), DEL, integers past 64 bits, times with a
# zero fraction and in other zones. The verdict must be the definition's every time.

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]),
)  # fmt: skip


@dataclass(frozen=True)
class _Row:
    """A stored row as the checks read it (attributes of compliance.consent_hash.HashedRow)."""

    id: uuid.UUID
    station_id: uuid.UUID | None
    kind: str
    purpose: str
    source: str
    evidence: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    idempotency_key: str | None


@settings(max_examples=400, deadline=None)
@given(
    evidence=st.dictionaries(_text, _json, max_size=6),
    occurred=_times,
    recorded=_times,
    key=st.none() | _text,
    station=st.none() | st.uuids(),
    prev=st.none() | st.binary(min_size=32, max_size=32),
    tamper=st.sampled_from([None, "evidence", "kind", "time", "prev", "key"]),
)
def test_the_fast_check_gives_the_definitions_verdict(
    evidence: dict[str, Any], occurred: datetime, recorded: datetime, key: str | None,
    station: uuid.UUID | None, prev: bytes | None, tamper: str | None,
) -> None:  # fmt: skip
    evidence = canonical_evidence(evidence)
    event = HashInput(uuid.uuid4(), bytes(range(32)), station, "opt_out", "all", "sms_keyword", evidence,
                      occurred, recorded, key, prev)  # fmt: skip
    stored = event_hash(event, evidence_is_canonical=True)
    row = _Row(event.id, station, "opt_out", "all", "sms_keyword", evidence, occurred, recorded, key)
    assert stored_hash_matches(row, event.phone_index, prev, stored)
    if tamper == "evidence":
        row = replace(row, evidence={**evidence, "x": 1.5 if "x" in evidence else 1})
    elif tamper == "kind":
        row = replace(row, kind="opt_in")
    elif tamper == "time":
        row = replace(row, occurred_at=occurred + timedelta(microseconds=1))
    elif tamper == "key":
        row = replace(row, idempotency_key=(key or "") + "x")
    elif tamper == "prev":
        prev = None if prev is not None else bytes(32)
    if tamper is not None:
        expected = event_hash(
            HashInput(row.id, event.phone_index, row.station_id, row.kind, row.purpose, row.source, row.evidence,
                      row.occurred_at, row.recorded_at, row.idempotency_key, prev),
            evidence_is_canonical=True,
        ) == stored  # fmt: skip
        assert not expected
        assert stored_hash_matches(row, event.phone_index, prev, stored) is expected


def test_the_fast_check_still_finds_an_altered_row_that_orjson_cannot_write() -> None:
    """A float the definition refuses to hash: the fast path fails, the definition says why."""
    stored = event_hash(BASE)
    row = _Row(BASE.id, None, BASE.kind, BASE.purpose, BASE.source, {**BASE.evidence, "b": 2**65},
               BASE.occurred_at, BASE.recorded_at, BASE.idempotency_key)  # fmt: skip
    assert not stored_hash_matches(row, BASE.phone_index, None, stored)
    genuine = replace(row, evidence=dict(BASE.evidence))
    assert stored_hash_matches(genuine, BASE.phone_index, None, stored)


@settings(max_examples=500, deadline=None)
@given(value=_times)
def test_quick_ts_writes_exactly_what_format_ts_writes(value: datetime) -> None:
    assert quick_ts(value) == format_ts(value)
    assert quick_ts(value.replace(microsecond=0)) == format_ts(value.replace(microsecond=0))


def test_quick_ts_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quick_ts(datetime(2026, 1, 1, 12, 0))


@settings(max_examples=300, deadline=None)
@given(
    evidence=st.dictionaries(st.text(alphabet="abcxyz_", max_size=8), st.text(alphabet="0123456789 abc", max_size=20)),
    occurred=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    station=st.none() | st.uuids(),
)
def test_the_fast_path_writes_the_canonical_bytes_for_an_ordinary_row(
    evidence: dict[str, str], occurred: datetime, station: uuid.UUID | None
) -> None:
    """What makes the fast path fast: for a row read in UTC with ASCII evidence, orjson's bytes ARE the
    definition's (no second hashing), times included, on a whole second too (provider timestamps)."""
    from compliance.consent_hash import _QUICK, _document

    event = HashInput(uuid.uuid4(), bytes(range(32)), station, "opt_out", "all", "sms_keyword", evidence,
                      occurred, occurred.replace(microsecond=0), "key", bytes(32))  # fmt: skip
    row = _Row(event.id, station, "opt_out", "all", "sms_keyword", evidence, event.occurred_at, event.recorded_at,
               "key")  # fmt: skip
    quick = orjson.dumps(_document(row, event.phone_index, event.prev_hash, evidence, quick=True), option=_QUICK)
    assert quick == canonical_bytes(event)
