"""The consent ledger's hash format: canonical JSON in, SHA-256 out.

Every event in compliance.consent_events carries ``hash = sha256(canonical(event))``,
where the canonical form includes the previous event's hash for the same number
(``prev_hash``). Changing, inserting or deleting one event therefore breaks the link to
the next one, and ``msgworker ledger verify`` can name it.

The format must give the same bytes in every process, on every machine, years later,
and an auditor must be able to recompute it without our code (docs/consent-ledger.md
spells it out). So:

- JSON, keys sorted, no whitespace (``separators=(",", ":")``), ASCII only
  (``ensure_ascii=True``: non-ASCII as ``\\uXXXX``), no NaN/Infinity.
- Timestamps: UTC, microseconds, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Naive datetimes are
  refused (an opt-out's "when" must be unambiguous).
- UUIDs as lowercase hyphenated strings; bytes as lowercase hex.
- The phone number appears only as its blind index (hex): not the plaintext (the ledger
  must not need it), not the ciphertext (ciphertexts change when keys rotate).
- Evidence is normalised by :func:`canonical_evidence` BEFORE it is stored, so what is
  in the JSONB column is exactly what was hashed. Floats are refused: JSONB keeps
  numbers as decimals and a float's text form is not stable across implementations.
- The event's ``seq`` is not hashed: the database assigns it at insert time. The chain
  order is the seq order per number, which the per-number lock makes equal to the order
  in which the hashes were computed.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import orjson

__all__ = [
    "HASH_VERSION",
    "HashInput",
    "HashedRow",
    "canonical_bytes",
    "canonical_evidence",
    "event_hash",
    "format_ts",
    "quick_ts",
    "stored_hash_matches",
]

HASH_VERSION = 1


def format_ts(value: datetime) -> str:
    """A timestamp as the ledger hashes it: UTC with microseconds and a trailing Z."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    # isoformat with fixed microseconds, in UTC: "...+00:00" -> "...Z" (faster than strftime).
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def quick_ts(value: datetime) -> str:
    """:func:`format_ts`'s text in a quarter of its time, for reports of a million rows.

    orjson writes RFC 3339 with a Z for UTC and leaves out a zero fraction, which is put
    back. format_ts stays the definition the ledger hashes by; tests hold the two equal.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    utc = value.astimezone(UTC)
    text = orjson.dumps(utc, option=orjson.OPT_UTC_Z)[1:-1].decode("ascii")
    return text if utc.microsecond else text[:-1] + ".000000Z"


def canonical_evidence(value: Any) -> Any:
    """Evidence in the only shapes the ledger stores: str, int, bool, None, lists, objects.

    datetimes become ledger timestamps, dates ISO dates, UUIDs strings, bytes hex, enums
    their value. NUL characters are replaced by U+FFFD (PostgreSQL's JSONB cannot hold
    them, and a hostile SMS body must not be able to stop an opt-out being recorded).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return canonical_evidence(value.value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        raise ValueError("floats are not allowed in ledger evidence (use a string or an integer)")
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"evidence keys must be strings, not {type(key).__name__}")
            out[key.replace("\x00", "\ufffd")] = canonical_evidence(item)
        return out
    if isinstance(value, list | tuple):
        return [canonical_evidence(v) for v in value]
    raise ValueError(f"cannot store {type(value).__name__} in ledger evidence")


@dataclass(frozen=True, slots=True)
class HashInput:
    """Exactly the fields that are hashed (see the module docstring)."""

    id: uuid.UUID
    phone_index: bytes
    station_id: uuid.UUID | None
    kind: str
    purpose: str
    source: str
    evidence: Mapping[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    idempotency_key: str | None
    prev_hash: bytes | None


def canonical_bytes(event: HashInput, *, evidence_is_canonical: bool = False) -> bytes:
    """The exact bytes that are hashed for ``event``.

    ``evidence_is_canonical``: the caller already ran canonical_evidence on it (a
    performance shortcut for bulk recording; the output is the same either way).
    """
    evidence = event.evidence if evidence_is_canonical else canonical_evidence(event.evidence)
    return _canonical_json(_document(event, event.phone_index, event.prev_hash, evidence, quick=False))


def _canonical_json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def _quick_time(value: datetime) -> datetime | str:
    """A time as orjson can be handed it: as it is, unless on a whole second, which orjson
    writes without the fraction the format has (provider timestamps often are: Twilio's)."""
    return value if value.microsecond else quick_ts(value)


def _document(
    row: HashedRow, phone_index: bytes, prev_hash: bytes | None, evidence: Mapping[str, Any], *, quick: bool
) -> dict[str, Any]:
    """The hashed fields as one document. ``quick``: for orjson, which writes a UUID as str()
    does and a UTC time as the format does (given OPT_UTC_Z), so both are handed over as they
    are (times on a whole second excepted); otherwise every value as the definition writes it."""
    station = row.station_id
    return {
        "v": HASH_VERSION,
        "id": row.id if quick else str(row.id),
        "phone_index": phone_index.hex(),
        "station_id": station if quick or station is None else str(station),
        "kind": row.kind,
        "purpose": row.purpose,
        "source": row.source,
        "evidence": evidence,
        "occurred_at": _quick_time(row.occurred_at) if quick else format_ts(row.occurred_at),
        "recorded_at": _quick_time(row.recorded_at) if quick else format_ts(row.recorded_at),
        "idempotency_key": row.idempotency_key,
        "prev_hash": prev_hash.hex() if prev_hash is not None else None,
    }


def event_hash(event: HashInput, *, evidence_is_canonical: bool = False) -> bytes:
    """SHA-256 (32 bytes) of the event's canonical bytes."""
    return hashlib.sha256(canonical_bytes(event, evidence_is_canonical=evidence_is_canonical)).digest()


class HashedRow(Protocol):
    """A stored event as the checks read it (an ORM row, a named tuple, a report's LedgerEvent)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def station_id(self) -> uuid.UUID | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def idempotency_key(self) -> str | None: ...


# OPT_UTC_Z: a time with a zero UTC offset ends in Z, as the format's do. orjson writes a time
# with another offset ("+02:00") otherwise than the format does; its hash then differs and the
# row takes the long way below.
_QUICK = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z


def stored_hash_matches(row: HashedRow, phone_index: bytes, prev_hash: bytes | None, stored: bytes) -> bool:
    """Whether ``stored`` is the hash of this stored row (its evidence as read back from JSONB).

    The same verdict as comparing with :func:`event_hash`, faster: the ledger check of a
    report re-hashes a million events. orjson writes the canonical form's bytes for nearly
    every stored row (sorted keys, no whitespace, UUIDs and UTC times as the format has
    them), in a tenth of json's time. Where it writes something else (non-ASCII text, which
    the format escapes; an integer past 64 bits; a time read in a zone other than UTC), the hash
    differs and the row is hashed again the defined way, so the answer never rests on
    orjson. And a match cannot be wrong: bytes that hash to the stored value are the
    canonical bytes that were hashed, and JSON text determines the value it encodes.
    """
    try:
        quick: bytes | None = orjson.dumps(_document(row, phone_index, prev_hash, row.evidence, quick=True),
                                           option=_QUICK)  # fmt: skip
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError; naive times: the long way says why
        quick = None
    if quick is not None and hashlib.sha256(quick).digest() == stored:
        return True
    # JSONB gives back exactly the normalised evidence that was stored; anything a tamperer
    # put there (a float, say) simply hashes differently.
    reference = _canonical_json(_document(row, phone_index, prev_hash, row.evidence, quick=False))
    return hashlib.sha256(reference).digest() == stored
