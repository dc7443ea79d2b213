"""Area code -> state data, state zones, and address parsing (compliance.us_states, compliance.recipient)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import geocoder

from compliance.recipient import locate, staff_attributed
from compliance.us_states import STATE_NAMES, STATE_ZONES, _npa_table, npa_state, state_from_address


def test_table_agrees_with_the_phonenumbers_geocoder() -> None:
    """For every area code in the table, a valid number's geocoder text names the same state."""
    checked = 0
    for npa, state in _npa_table().items():
        for exchange in (201, 202, 212, 234, 255, 303, 345, 404, 456, 505, 567, 606, 678, 707, 789, 808, 890, 909):
            num = phonenumbers.parse(f"+1{npa}{exchange}1234")
            if not phonenumbers.is_valid_number(num):
                continue
            desc = geocoder.description_for_number(num, "en")
            if not desc:
                continue
            m = re.search(r", ([A-Z]{2})$", desc)
            assert (m.group(1) if m else STATE_NAMES.get(desc, phonenumbers.region_code_for_number(num))) == state
            checked += 1
            break
    assert checked > 300


def test_every_state_in_the_table_has_zones() -> None:
    """Each state the table can return has IANA zones that exist."""
    for state in set(_npa_table().values()):
        assert STATE_ZONES[state]
        for zone in STATE_ZONES[state]:
            ZoneInfo(zone)


@pytest.mark.parametrize(
    ("e164", "state"),
    [
        ("+12125550123", "NY"),
        ("+14155552671", "CA"),
        ("+18504335555", "FL"),
        ("+12085550123", "ID"),
        ("+19075550123", "AK"),
        ("+17875550123", "PR"),
        ("+18005551212", None),  # toll-free
        ("+14165550123", None),  # Toronto
        ("+447911123456", None),
    ],
)
def test_npa_state(e164: str, state: str | None) -> None:
    """US and territory area codes resolve; toll-free and foreign numbers do not."""
    assert npa_state(e164) == state


@pytest.mark.parametrize(
    ("address", "state"),
    [
        ("123 Main St, Austin, TX 78701", "TX"),
        ("123 Main St\nAustin, tx 78701-1234", "TX"),
        ("9 Elm Rd, Boise, ID", "ID"),
        ("9 Elm Rd, Portland, Oregon 97201", "OR"),
        ("9 Elm Rd, Portland, Oregon", "OR"),
        ('{"line1": "1 Bay St", "city": "Pensacola", "state": "FL"}', "FL"),
        ('{"line1": "1 Bay St", "state": "Florida"}', "FL"),
        ("1 IN Street, Springfield, IL 62701", "IL"),  # the last state-like token wins
        ("somewhere", None),
        ("", None),
        (None, None),
        ('{"state": 5}', None),
    ],
)
def test_state_from_address(address: str | None, state: str | None) -> None:
    """Common address spellings yield the state; anything unclear yields None, not a guess."""
    assert state_from_address(address) == state


def test_locate_combines_number_and_address() -> None:
    """The libphonenumber vectors (docs/compliance.md#test-vectors), with every zone of a split area code
    added (docs/compliance.md#split-zone-area-codes), and an address that places an otherwise unknown number."""
    assert locate("+19075550123").zones == ("America/Adak", "America/Anchorage")
    assert locate("+16055550123").zones == ("America/Chicago", "America/Denver", "America/North_Dakota/Center")
    assert locate("+12085550123").zones == ("America/Boise", "America/Denver", "America/Los_Angeles")
    assert locate("+18504335555").zones == ("America/Chicago", "America/New_York")
    assert locate("+18502245555").zones == ("America/Chicago", "America/New_York")
    toll_free = locate("+18005551212")
    assert not toll_free.known
    assert toll_free.zones == ("Etc/Unknown",)
    placed = locate("+18005551212", "TX")
    assert placed.known
    assert placed.zones == ("America/Chicago", "America/Denver")
    assert placed.states == ("TX",)
    assert not locate("+15555550100").known
    both = locate("+12125550123", "FL")
    assert both.states == ("FL", "NY")
    assert both.zones == ("America/Chicago", "America/New_York")


def test_staff_state_replaces_the_address_and_keeps_the_numbers_zones() -> None:
    """Staff place a toll-free number; their state wins over the address; a number's own zones
    and area-code state still count (the strictest window wins)."""
    placed = locate("+18005551212", staff_state="CT")
    assert (placed.known, placed.zones, placed.states, placed.sources) == (
        True, ("America/New_York",), ("CT",), ("staff:CT",)
    )
    over_address = locate("+18005551212", "TX", "CT")
    assert (over_address.states, over_address.sources) == (("CT",), ("staff:CT",))
    both = locate("+12125550123", "TX", "CA")
    assert both.states == ("CA", "NY")
    assert both.zones == ("America/Los_Angeles", "America/New_York")
    assert both.sources == ("number:zones", "number:npa=NY", "staff:CA")
    assert locate("+18005551212", "TX", "ZZ").sources == ("address:TX",)


def test_staff_attribution_names_who_and_when() -> None:
    """Only the staff source gains the reviewer and time; other sources are left as they were."""
    at = datetime(2026, 7, 4, 16, 0, tzinfo=UTC)
    located = staff_attributed(locate("+12125550123", staff_state="CA"), by="alice", at=at)
    assert located.sources == ("number:zones", "number:npa=NY", "staff:CA by alice at 2026-07-04T16:00:00+00:00")
    plain = locate("+12125550123", "FL")
    assert staff_attributed(plain, by="alice", at=at) == plain
