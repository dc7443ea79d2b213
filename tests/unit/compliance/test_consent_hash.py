"""compliance.consent_hash: the ledger's canonical bytes are stable and documented."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from compliance.consent_hash import HashInput, canonical_bytes, canonical_evidence, event_hash, format_ts

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
