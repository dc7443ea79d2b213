"""Area codes that span time zones (compliance.split_zones, compliance.nanpa_zones) and quiet hours at their edges."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as pn_tz

from compliance.consent_rules import ConsentSnapshot
from compliance.gate import BlockReason, Outcome, SendFacts, SendPurpose, evaluate_send
from compliance.nanpa_zones import SUPPLEMENTS, build, render
from compliance.package_data import read_table
from compliance.quiet_hours import local_window
from compliance.recipient import locate
from compliance.split_zones import COLUMNS, DATA_FILE, SplitAreaCode, index, split_area_codes
from compliance.us_states import _npa_table

TABLE = split_area_codes()
CONSENTED = ConsentSnapshot(marketing_consent=True, last_event_id=None)
# A Wednesday in summer: no state's Sunday or holiday rule, and Arizona's Navajo Nation is on daylight time.
DAY = date(2026, 7, 1)
# NANPA assigned 729 (Tennessee, 423's overlay) in 2025; phonenumbers 9.0.43 does not know it yet,
# so it is not in us_npa_states.csv and a 729 number cannot be placed at all.
NEWER_THAN_PHONENUMBERS = {"729"}


def _offset(zone: str, day: date = DAY) -> timedelta:
    offset = datetime.combine(day, time(12), tzinfo=UTC).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return offset


def _local(day: date, minutes: int, zone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone)) + timedelta(minutes=minutes)


def _sample(npa: str, lacking: timedelta) -> str | None:
    """A valid number of the area code that phonenumbers alone places in the table's zones but not at
    ``lacking`` (so today's code would miss that zone), else any it places within them; None if none."""
    offsets = {_offset(z) for z in TABLE[npa].zones}
    fallback = None
    for exchange in range(200, 1000):
        num = phonenumbers.parse(f"+1{npa}{exchange}4567")
        if not phonenumbers.is_valid_number(num):
            continue
        own = {_offset(z) for z in pn_tz.time_zones_for_number(num)}
        if not own <= offsets:
            continue
        if lacking not in own:
            return f"+1{npa}{exchange}4567"
        fallback = fallback or f"+1{npa}{exchange}4567"
    return fallback


def _edges(npa: str) -> tuple[str, str]:
    by_offset = sorted(TABLE[npa].zones, key=_offset)
    return by_offset[-1], by_offset[0]  # east (clock ahead), west


def _decide(e164: str, now: datetime) -> tuple[Outcome, datetime | None]:
    facts = SendFacts(purpose=SendPurpose.MARKETING, location=locate(e164), business=CONSENTED)
    decision = evaluate_send(facts, now.astimezone(UTC))
    return decision.outcome, decision.defer_until


PLACEABLE = sorted(set(TABLE) - NEWER_THAN_PHONENUMBERS)


def test_the_table_parses_with_one_row_per_area_code_and_iana_zones() -> None:
    """Every row has the five columns, a three-digit code listed once, two or more real IANA zones
    that keep different clocks on some day, a source and an ISO check date."""
    rows = read_table(DATA_FILE)
    assert rows
    assert all(tuple(row) == COLUMNS for row in rows)
    codes = [row["npa"] for row in rows]
    assert len(codes) == len(set(codes)) == len(TABLE)
    for entry in TABLE.values():
        assert re.fullmatch(r"[2-9]\d\d", entry.npa)
        assert len(entry.zones) == len(set(entry.zones)) >= 2, entry.npa
        assert any(len({_offset(z, day) for z in entry.zones}) >= 2 for day in (date(2026, 1, 14), DAY)), entry.npa
        assert entry.source.startswith(("NANPA NPA report 2025-11-26: TIME_ZONE=", "supplement (NANPA TIME_ZONE="))
        date.fromisoformat(entry.checked_on)


def test_every_code_is_a_us_area_code_with_the_same_state() -> None:
    """Each code is in us_npa_states.csv with the table's state, except a code phonenumbers does not know
    yet, which must still be unknown to it (when it learns the code, regenerate us_npa_states.csv)."""
    npa_states = _npa_table()
    assert set(TABLE) - set(npa_states) == NEWER_THAN_PHONENUMBERS
    for npa in PLACEABLE:
        assert TABLE[npa].states == (npa_states[npa],), npa
    for npa in NEWER_THAN_PHONENUMBERS:
        assert not any(
            phonenumbers.is_valid_number(phonenumbers.parse(f"+1{npa}{exchange}4567")) for exchange in range(200, 1000)
        )


def test_the_issues_examples_are_in_the_table() -> None:
    """850 (Florida panhandle) and 270 (western Kentucky) span Eastern and Central; 915 (El Paso) Central
    and Mountain; 928 Arizona's standard time and the Navajo Nation's daylight time."""
    assert TABLE["850"].zones == ("America/Chicago", "America/New_York")
    assert TABLE["270"].zones == ("America/Chicago", "America/New_York")
    assert TABLE["915"].zones == ("America/Chicago", "America/Denver")
    assert TABLE["928"].zones == ("America/Denver", "America/Phoenix")
    assert "352" not in TABLE  # north-central Florida keeps Eastern time only


@pytest.mark.parametrize("npa", PLACEABLE)
def test_morning_edge_waits_for_the_window_to_open_in_the_later_zone(npa: str) -> None:
    """When the window opens in the zone ahead, it is still closed in the zone behind: a marketing text is
    deferred to the minute it opens there, and goes at that minute."""
    east, west = _edges(npa)
    e164 = _sample(npa, lacking=_offset(west))
    assert e164 is not None
    window = local_window(DAY, TABLE[npa].states)
    assert window is not None
    assert set(TABLE[npa].zones) <= set(locate(e164).zones)
    opens_west = _local(DAY, window.start, west)
    assert _decide(e164, _local(DAY, window.start, east)) == (Outcome.DEFERRED, opens_west)
    assert _decide(e164, opens_west) == (Outcome.ALLOWED, None)


@pytest.mark.parametrize("npa", PLACEABLE)
def test_evening_edge_stops_when_the_window_closes_in_the_earlier_zone(npa: str) -> None:
    """Half an hour before closing in the zone behind, it is already closed in the zone ahead: deferred to
    the next morning; two minutes before closing in the zone ahead, it goes."""
    east, west = _edges(npa)
    e164 = _sample(npa, lacking=_offset(east))
    assert e164 is not None
    window = local_window(DAY, TABLE[npa].states)
    tomorrow = local_window(DAY + timedelta(days=1), TABLE[npa].states)
    assert window is not None
    assert tomorrow is not None
    opens_tomorrow = _local(DAY + timedelta(days=1), tomorrow.start, west)
    assert _decide(e164, _local(DAY, window.end - 30, west)) == (Outcome.DEFERRED, opens_tomorrow)
    assert _decide(e164, _local(DAY, window.end - 2, east)) == (Outcome.ALLOWED, None)


def test_the_issues_example_850_at_eight_eastern() -> None:
    """A Tallahassee-exchange 850 number (phonenumbers: Eastern only) at 08:00 Eastern is 07:00 in Pensacola:
    deferred to 08:00 Central, and its location says the area code added the zone."""
    located = locate("+18502245555")
    assert located.zones == ("America/Chicago", "America/New_York")
    assert "number:npa_zones=850" in located.sources
    assert "number:npa_zones=212" not in " ".join(locate("+12125550123").sources)
    eight_eastern = datetime(2026, 7, 1, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    assert _decide("+18502245555", eight_eastern) == (
        Outcome.DEFERRED,
        datetime(2026, 7, 1, 8, 0, tzinfo=ZoneInfo("America/Chicago")),
    )


@pytest.mark.parametrize(
    ("now_utc", "expected_utc"),
    [
        # Saturday 20:30 CST before spring forward is 21:30 EST: closed; Sunday opens at 08:00 CDT (13:00 UTC).
        (datetime(2026, 3, 8, 2, 30, tzinfo=UTC), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        # Sunday 07:30 EDT is 06:30 CDT: wait for 08:00 CDT.
        (datetime(2026, 3, 8, 11, 30, tzinfo=UTC), datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        # Saturday 20:30 CDT before fall back is 21:30 EDT: closed; Sunday opens at 08:00 CST (14:00 UTC).
        (datetime(2026, 11, 1, 1, 30, tzinfo=UTC), datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),
    ],
)
def test_indiana_812_across_daylight_saving_changes(now_utc: datetime, expected_utc: datetime) -> None:
    """An Evansville-area 812 number phonenumbers calls Eastern waits for 08:00 Central on the day clocks change."""
    e164 = _sample("812", lacking=_offset("America/Chicago"))
    assert e164 is not None
    assert _decide(e164, now_utc) == (Outcome.DEFERRED, expected_utc)


def test_arizona_928_differs_only_while_the_navajo_nation_keeps_daylight_time() -> None:
    """At 20:30 Arizona time a 928 number phonenumbers calls Phoenix-only is deferred in July (21:30 on the
    Navajo Nation) and allowed in January (both on MST)."""
    e164 = _sample("928", lacking=_offset("America/Denver"))
    assert e164 is not None
    assert locate(e164).zones == ("America/Denver", "America/Phoenix")
    phoenix = ZoneInfo("America/Phoenix")
    assert _decide(e164, datetime(2026, 7, 1, 20, 30, tzinfo=phoenix)) == (
        Outcome.DEFERRED,
        datetime(2026, 7, 2, 8, 0, tzinfo=phoenix),
    )
    assert _decide(e164, datetime(2026, 1, 14, 20, 30, tzinfo=phoenix)) == (Outcome.ALLOWED, None)


@pytest.mark.parametrize("npa", sorted(NEWER_THAN_PHONENUMBERS))
def test_a_code_phonenumbers_does_not_know_is_held_not_guessed(npa: str) -> None:
    """A number in a listed code phonenumbers cannot validate yet is not placed by the table alone: the
    gate holds its marketing as zone_unknown."""
    located = locate(f"+1{npa}2345678")
    assert not located.known
    facts = SendFacts(purpose=SendPurpose.MARKETING, location=located, business=CONSENTED)
    decision = evaluate_send(facts, datetime(2026, 7, 1, 16, 0, tzinfo=UTC))
    assert (decision.outcome, decision.reason) == (Outcome.BLOCKED, BlockReason.ZONE_UNKNOWN)


def test_a_code_listed_twice_is_refused() -> None:
    """Indexing rows with the same code twice raises instead of keeping one of them silently."""
    row = SplitAreaCode("850", ("FL",), ("America/Chicago", "America/New_York"), "test", "2026-12-05").to_row()
    assert index([row])["850"].zones == ("America/Chicago", "America/New_York")
    with pytest.raises(ValueError, match="850 is listed twice"):
        index([row, row])


# --- building the table from NANPA's report -------------------------------------------------------

NANPA_HEADER = (
    "NPA_ID,type_of_code,ASSIGNABLE,EXPLANATION,RESERVED,ASSIGNED,ASSIGNMENT_DT,USE,LOCATION,COUNTRY,"
    "IN_SERVICE,IN_SERVICE_DT,STATUS,PLANNING_LETTERS,NOTES,OVERLAY,OVERLAY_COMPLEX,PARENT_NPA_ID,SERVICE,"
    "TIME_ZONE,AREA_SERVED,MAP,IN_JEOPARDY,RELIEF_PLANNING_IN_PROGRESS,HOME_NPA_LOCAL_CALLS,HOME_NPA_TOLL_CALLS,"
    "FOREIGN_NPA_LOCAL_CALLS,FOREIGN_NPA_TOLL_CALLS,PERM_HNPA_LOCAL_CALLS,PERM_HNPA_TOLL_CALLS,"
    "PERM_HNPA_FOREIGN_LOCAL_CALLS,DIALING_PLAN_NOTES"
)


def _report(rows: list[tuple[str, str, str, str, str]], first_line: str = "File Date,11/26/2025") -> str:
    """A report in NANPA's layout: (npa, location, country, time zone, overlay complex) per row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=NANPA_HEADER.split(","), restval="", lineterminator="\r\n")
    out.write(first_line + "\r\n")
    writer.writeheader()
    for npa, location, country, zone, overlay in rows:
        writer.writerow(
            {
                "NPA_ID": npa, "ASSIGNED": "Yes", "USE": "G", "LOCATION": location, "COUNTRY": country,
                "TIME_ZONE": zone, "OVERLAY_COMPLEX": overlay,
            }
        )  # fmt: skip
    return out.getvalue()


SAMPLE = [
    ("208", "ID", "US", "MP", "208/986"),
    ("212", "NY", "US", "E", "212/332/646/917"),
    ("775", "NV", "US", "PT/MT only for W Wendover", ""),
    ("807", "ONTARIO", "CANADA", "EC", ""),
    ("808", "HI", "US", "(UTC-10)", ""),
    ("850", "FL", "US", "EC", "448/850"),
    ("448", "FL", "US", "EC", "448/850"),
    ("907", "AK", "US", "AK", ""),
    ("928", "AZ", "US", "M", ""),
    ("986", "ID", "US", "P", "208/986"),
]


def test_build_reads_letters_prose_and_overlays_and_adds_the_supplements() -> None:
    """US codes with two or more letters are split; an overlay takes its complex's letters (986 over 208);
    the West Wendover prose reads as Pacific + Mountain; one-zone and Canadian codes stay out; the
    Alaska and Arizona supplements join with their own sources."""
    file_date, rows = build(_report(SAMPLE), "2026-12-05")
    assert file_date == "2025-11-26"
    got = {r.npa: (r.states, r.zones, r.source) for r in rows}
    assert [r.npa for r in rows] == ["208", "448", "775", "850", "907", "928", "986"]
    assert got["208"] == (
        ("ID",),
        ("America/Denver", "America/Los_Angeles"),
        "NANPA NPA report 2025-11-26: TIME_ZONE=MP",
    )
    assert got["986"][1] == ("America/Denver", "America/Los_Angeles")
    assert got["986"][2] == "NANPA NPA report 2025-11-26: TIME_ZONE=P; overlay 208/986 with 208 (MP)"
    assert got["775"][1] == ("America/Denver", "America/Los_Angeles")
    assert got["850"][1] == got["448"][1] == ("America/Chicago", "America/New_York")
    assert {npa: zones for npa, _, zones, _ in SUPPLEMENTS} == {"907": got["907"][1], "928": got["928"][1]}
    assert all(r.checked_on == "2026-12-05" for r in rows)


@pytest.mark.parametrize(
    ("rows", "first_line", "message"),
    [
        (SAMPLE, "NPA_ID,type_of_code", "not NANPA's NPA report"),
        ([("212", "NY", "US", "Eastern mostly", "")], "File Date,11/26/2025", "212: TIME_ZONE 'Eastern mostly'"),
        ([("808", "HI", "US", "(UTC-10)", "808/999"), ("999", "HI", "US", "P", "808/999")], "File Date,11/26/2025",
         "mix letters"),
        ([("928", "AZ", "US", "MP", "")], "File Date,11/26/2025", "928: NANPA now splits it"),
    ],
)  # fmt: skip
def test_build_refuses_what_it_cannot_read(
    rows: list[tuple[str, str, str, str, str]], first_line: str, message: str
) -> None:
    """Not a NANPA report, prose nobody has read, letters mixed with an offset, or NANPA now splitting a
    supplemented code: each stops the build with the reason, instead of a guessed table."""
    with pytest.raises(ValueError, match=re.escape(message)):
        build(_report(rows, first_line), "2026-12-05")


def test_render_writes_provenance_then_rows_the_loader_reads_back() -> None:
    """The rendered file names the report's date and SHA-256, and its rows index to what build returned."""
    report = _report(SAMPLE).encode()
    text = render(report, "2026-12-05")
    assert "File Date 2025-11-26" in text
    assert f"SHA-256 {hashlib.sha256(report).hexdigest()}" in text
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert index(rows) == {r.npa: r for r in build(_report(SAMPLE), "2026-12-05")[1]}


def test_the_shipped_table_is_a_rendered_report() -> None:
    """The shipped file starts with the provenance header render writes: the date of the NANPA report it
    was built from and that file's SHA-256."""
    from importlib import resources

    head = resources.files("compliance").joinpath("data", DATA_FILE).read_text(encoding="utf-8").splitlines()[:6]
    assert head[3].endswith("File Date 2025-11-26,")
    assert re.fullmatch(r"# SHA-256 [0-9a-f]{64}\. .*", head[4])
    assert head[5] == ",".join(COLUMNS)
