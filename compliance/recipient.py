"""Where a recipient could be: candidate time zones and states, from the number and the address.

Quiet hours are judged at the recipient's location (47 CFR 64.1200(c)(1)), which we never
know for sure. So we collect every place the person could plausibly be and require the
window to hold in all of them (docs/compliance.md#phone-numbers-and-time-zones):

- the number's zones (phonenumbers; some area codes span zones, e.g. Idaho Boise + LA), every
  zone its area code's territory spans when that is more than one (compliance/split_zones.py:
  phonenumbers falls back to one zone for most of 850's or 270's exchanges), and its area
  code's state (compliance/us_states.py);
- the customer's address state, when on file, with every zone of that state;
- or, instead of the address, the state a person on staff gave for a text the gate held
  (``msgworker send release``, worker/outbound/held.py): they asked or know better than a stored
  address, and the number's own zones still count, so the strictest window still wins.

A toll-free, invalid or otherwise non-geographic number says nothing about place (phonenumbers
answers every zone of the country, or ``Etc/Unknown``). Unless an address or staff fill the
gap, the location is *unknown*, and the gate holds marketing to it for review instead of guessing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType
from phonenumbers import timezone as pn_tz
from phonenumbers.phonenumberutil import is_number_type_geographical, national_significant_number

from compliance.split_zones import area_code_zones
from compliance.us_states import STATE_ZONES, npa_state

__all__ = ["UNKNOWN_ZONE", "RecipientLocation", "locate", "staff_attributed"]

UNKNOWN_ZONE = "Etc/Unknown"
_NON_GEOGRAPHIC = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
    }
)


@dataclass(frozen=True, slots=True)
class RecipientLocation:
    """Candidate zones and states; ``known`` is False when nothing locates the recipient."""

    zones: tuple[str, ...]
    states: tuple[str, ...]
    known: bool
    # How we know, for the decision's basis: ("number:zones", "number:npa=FL", "number:npa_zones=850" (the
    # area code spans zones: compliance/split_zones.py), "address:TX",
    # "staff:TX by alice at 2026-07-04T16:00:00+00:00").
    sources: tuple[str, ...] = ()


def _number_place(e164: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    try:
        num = phonenumbers.parse(e164, None)
    except NumberParseException:
        return (), (), ()
    # number_type is UNKNOWN for an invalid number (one check instead of is_valid_number + type).
    kind = phonenumbers.number_type(num)
    if kind == PhoneNumberType.UNKNOWN or kind in _NON_GEOGRAPHIC:
        return (), (), ()
    # For a geographic type (US numbers are FIXED_LINE_OR_MOBILE) skip the second type check
    # time_zones_for_number would make; other types (a UK mobile) get the country's zones.
    if num.country_code is not None and is_number_type_geographical(kind, num.country_code):
        found = pn_tz.time_zones_for_geographical_number(num)
    else:
        found = pn_tz.time_zones_for_number(num)
    zones = tuple(z for z in found if z != UNKNOWN_ZONE)
    if not zones:
        return (), (), ()
    state = npa_state(e164) if num.country_code == 1 else None
    sources = ("number:zones",) + ((f"number:npa={state}",) if state else ())
    npa = national_significant_number(num)[:3] if num.country_code == 1 else ""
    spanned = area_code_zones(npa)
    if spanned:
        zones, sources = zones + spanned, (*sources, f"number:npa_zones={npa}")
    return zones, ((state,) if state else ()), sources


@functools.lru_cache(maxsize=65536)
def locate(e164: str, address_state: str | None = None, staff_state: str | None = None) -> RecipientLocation:
    """Every zone and state the recipient could be in, from the number and the address state,
    or the state staff gave instead of the address.

    Cached: a recipient is located again for every text it gets, and the answer only changes
    with the phonenumbers data.
    """
    zones, states, sources = _number_place(e164)
    # Staff's state replaces the address (a person checked); the number's own zones still count.
    for kind, place in (("staff", staff_state), ("address", address_state)):
        if place and place in STATE_ZONES:
            zones = zones + STATE_ZONES[place]
            states = (*states, place)
            sources = (*sources, f"{kind}:{place}")
            break
    unique_zones = tuple(sorted(set(zones)))
    if not unique_zones:
        return RecipientLocation(zones=(UNKNOWN_ZONE,), states=(), known=False, sources=("unknown",))
    return RecipientLocation(zones=unique_zones, states=tuple(sorted(set(states))), known=True, sources=sources)


def staff_attributed(location: RecipientLocation, *, by: str, at: datetime) -> RecipientLocation:
    """The location with its staff source naming who gave the state and when, so the decision's
    basis shows a person's word, not the data, placed the recipient (unchanged without one)."""
    sources = tuple(
        f"{s} by {by} at {at.isoformat()}" if s.startswith("staff:") else s for s in location.sources
    )
    return replace(location, sources=sources)
