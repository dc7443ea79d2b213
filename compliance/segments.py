"""How many SMS segments a body costs: the unit Twilio paces senders in and bills by.

Twilio's per-sender MPS limits count segments per second
(docs/compliance.md#throughput-and-segments), so the rate limiter takes one token per segment,
and the fake Twilio reports ``num_segments`` from the same count.

The rules, from the standards and Twilio's documentation:

- 3GPP TS 23.038 (formerly GSM 03.38) §6.2.1: the GSM 7-bit default alphabet (128 characters,
  one septet each) and its extension table, reached through the escape code 0x1B, so each of
  the ten extension characters (form feed, ``^ { } \\ [ ~ ] |`` and ``€``) costs two septets.
- A body with any character outside those two tables cannot be sent as GSM-7 and goes as
  UCS-2 (Twilio sends UTF-16, so a character beyond the Basic Multilingual Plane, e.g. most
  emoji, is a surrogate pair: two 16-bit units). One smart quote or one emoji is enough.
- One SMS carries 140 octets: 160 septets or 70 16-bit units. A longer body is concatenated
  (3GPP TS 23.040 §9.2.3.24.1): each part carries a 6-octet User Data Header, leaving 153
  septets (1072 bits / 7) or 67 units (1072 bits / 16) per segment.
- A segment boundary never falls inside an escape pair or a surrogate pair (the receiver
  could not decode a half); the part that would straddle moves whole to the next segment,
  so such bodies can need more segments than ``ceil(units / 153)`` suggests.

Sources: https://www.twilio.com/docs/glossary/what-sms-character-limit (160/153, 70/67);
https://www.twilio.com/docs/glossary/what-is-ucs-2-character-encoding (fallback to UCS-2 on
any non-GSM-7 character, the 6-byte UDH); Twilio's open-source segment calculator
(github.com/TwilioDevEd/message-segment-calculator: extension characters as escape pairs,
characters packed whole into segments).

Choices made here, deliberately:

- The empty body is one segment, as Twilio's calculator counts it: an SMS with no text is
  still one message on the wire, and a send must never cost zero tokens.
- No Smart Encoding: a Messaging Service with Twilio's Smart Encoding on replaces smart quotes
  and similar characters with GSM-7 ones before sending, so the real count can be lower than
  ours. Counting high only makes us pace a little slower, never faster than the sender's rate.
- No national language shift tables (Turkish, Spanish, Portuguese...): Twilio does not use
  them for US traffic.
- A grapheme made of several code points (a ZWJ emoji family, a flag) is split between code
  points if it straddles a boundary; only the surrogate pair of one code point is kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Encoding", "SegmentCount", "count_segments"]

Encoding = Literal["GSM-7", "UCS-2"]

# The GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1), in code order 0x00..0x7F; 0x1B (the
# escape to the extension table) has no character of its own and is left out.
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table (3GPP TS 23.038 §6.2.1.1): each is ESC + a code, two septets.
_GSM_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
_GSM: Final = _GSM_BASIC | _GSM_EXTENSION

# (single-segment capacity, capacity of each part of a concatenated message), in units.
_LIMITS: Final[dict[Encoding, tuple[int, int]]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """A body's encoding, its segment count, and its length in that encoding's units.

    ``units`` is septets for GSM-7 (extension characters count two) and UTF-16 code units for
    UCS-2 (a character beyond the BMP counts two).
    """

    encoding: Encoding
    segments: int
    units: int


def _unit_costs(body: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in _GSM_EXTENSION else 1 for c in body]
    return [2 if ord(c) > 0xFFFF else 1 for c in body]


def _pack(costs: list[int], capacity: int) -> int:
    """Segments needed when each character's units must stay in one segment (greedy is optimal:
    order is fixed, so filling each segment as far as possible never needs more segments)."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments


def count_segments(body: str) -> SegmentCount:
    """The segments Twilio sends ``body`` as (GSM-7 if every character allows, else UCS-2)."""
    if _GSM.issuperset(body):
        encoding: Encoding = "GSM-7"
        doubles = sum(body.count(c) for c in _GSM_EXTENSION)
    else:
        encoding = "UCS-2"
        # A lone surrogate (possible in a Python str) is one unit, as UTF-16 would carry it.
        doubles = len(body.encode("utf-16-le", "surrogatepass")) // 2 - len(body)
    units = len(body) + doubles
    single, multi = _LIMITS[encoding]
    if units <= single:
        return SegmentCount(encoding, 1, units)
    if doubles == 0:
        return SegmentCount(encoding, -(-units // multi), units)
    return SegmentCount(encoding, _pack(_unit_costs(body, encoding), multi), units)
