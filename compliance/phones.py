"""Phone numbers: one normalisation to E.164, done once at the edge (phonenumbers).

Everything downstream (blind index, consent, locks) keys on the E.164 string, so two
spellings of one number must never yield two keys.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from compliance.errors import InvalidNumber

__all__ = ["is_short_code", "mask", "normalize", "time_zones"]

DEFAULT_REGION = "US"


def normalize(raw: str, *, region: str = DEFAULT_REGION, require_valid: bool = True) -> str:
    """E.164 for ``raw``; InvalidNumber with a readable reason otherwise.

    ``require_valid=False`` accepts numbers that are possible but not assigned (the
    555-01xx fiction range), which tests and demos use.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidNumber("empty phone number")
    text = raw.strip()
    if len(text) > 32:
        raise InvalidNumber("phone number too long")
    if text.startswith("whatsapp:"):
        text = text.removeprefix("whatsapp:")
    try:
        num = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidNumber(f"not a phone number ({exc.error_type})") from exc
    if not phonenumbers.is_possible_number(num):
        raise InvalidNumber("not a possible phone number")
    if require_valid and not phonenumbers.is_valid_number(num):
        raise InvalidNumber("not a valid (assigned) phone number")
    return str(phonenumbers.format_number(num, PhoneNumberFormat.E164))


def is_short_code(raw: str) -> bool:
    digits = raw.strip()
    return digits.isdigit() and 5 <= len(digits) <= 6


def time_zones(e164: str) -> tuple[str, ...]:
    """Candidate IANA zones for the number; ('Etc/Unknown',) when unknown.

    Toll-free numbers return every zone of the country
    (docs/compliance.md#phone-numbers-and-time-zones).
    """
    from phonenumbers import timezone as pn_tz

    try:
        num = phonenumbers.parse(e164, None)
    except NumberParseException:
        return ("Etc/Unknown",)
    return tuple(pn_tz.time_zones_for_number(num))


def mask(e164: str) -> str:
    """For display and logs: keep the last two digits."""
    digits = e164.lstrip("+")
    return "+" + "*" * max(len(digits) - 2, 0) + digits[-2:]
