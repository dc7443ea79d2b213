"""SMS segment counting (compliance.segments): GSM-7 / UCS-2 rules, boundaries and properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compliance.segments import Encoding, SegmentCount, count_segments

EXTENSION = "\f^{}\\[~]|€"
# Characters outside ASCII that GSM-7 still carries, and look-alikes that it does not.
GSM_NON_ASCII = "£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà"
# Curly quotes, dash, ellipsis, no-break space, a combining accent, a BMP symbol, Cyrillic, an emoji.
NOT_GSM = ["ç", "`", "\t", "\u2019", "\u2018", "\u201c", "\u201d", "\u2014", "\u2026", "\u00a0", "\u0301",
           "✓", "ж", "😀"]  # fmt: skip

VECTORS = [
    # (description, body, encoding, segments, units)
    ("empty body is one segment", "", "GSM-7", 1, 0),
    ("one character", "a", "GSM-7", 1, 1),
    ("GSM-7 single segment is full at 160", "a" * 160, "GSM-7", 1, 160),
    ("161 septets need two segments", "a" * 161, "GSM-7", 2, 161),
    ("two concatenated segments hold 153 * 2", "a" * 306, "GSM-7", 2, 306),
    ("one more septet needs a third", "a" * 307, "GSM-7", 3, 307),
    ("three concatenated segments hold 153 * 3", "a" * 459, "GSM-7", 3, 459),
    ("Twilio's 1600-character maximum", "a" * 1600, "GSM-7", 11, 1600),
    ("an extension character is two septets", "€", "GSM-7", 1, 2),
    ("158 + an extension character fill 160 septets", "a" * 158 + "€", "GSM-7", 1, 160),
    ("159 + an extension character are 161 septets", "a" * 159 + "€", "GSM-7", 2, 161),
    ("80 extension characters fill one segment", "€" * 80, "GSM-7", 1, 160),
    ("76 escape pairs per concatenated segment", "[" * 152, "GSM-7", 2, 304),
    ("a 153rd-septet escape pair moves whole", "a" * 152 + "€" + "a" * 152, "GSM-7", 3, 306),
    ("an escape pair ending exactly at 153 stays", "a" * 151 + "€" + "a" * 153, "GSM-7", 2, 306),
    ("form feed is in the extension table", "\f", "GSM-7", 1, 2),
    ("every extension character costs two", EXTENSION, "GSM-7", 1, 20),
    ("accented letters of the basic set are GSM-7", GSM_NON_ASCII, "GSM-7", 1, len(GSM_NON_ASCII)),
    ("CR and LF are GSM-7", "line one\r\nline two\n", "GSM-7", 1, 19),
    ("@ $ _ are GSM-7 though not at their ASCII codes", "@$_", "GSM-7", 1, 3),
    ("UCS-2 single segment is full at 70", "✓" * 70, "UCS-2", 1, 70),
    ("71 UCS-2 units need two segments", "✓" * 71, "UCS-2", 2, 71),
    ("two concatenated UCS-2 segments hold 67 * 2", "✓" * 134, "UCS-2", 2, 134),
    ("one more unit needs a third", "✓" * 135, "UCS-2", 3, 135),
    ("one smart quote makes the whole body UCS-2", "a" * 69 + "’", "UCS-2", 1, 70),
    ("smart quotes over 70 units", "Don’t miss “Hibachi Night” " + "a" * 50, "UCS-2", 2, 77),
    ("the straight apostrophe stays GSM-7", "Don't " + "a" * 154, "GSM-7", 1, 160),
    ("an emoji is a surrogate pair: two units", "😀", "UCS-2", 1, 2),
    ("35 emoji fill one UCS-2 segment", "😀" * 35, "UCS-2", 1, 70),
    ("36 emoji need two", "😀" * 36, "UCS-2", 2, 72),
    ("33 emoji per concatenated segment (66 units)", "😀" * 67, "UCS-2", 3, 134),
    ("an emoji at unit 67 moves whole to the next segment", "✓" * 66 + "😀" + "✓" * 66, "UCS-2", 3, 134),
    ("an emoji ending exactly at 67 stays", "✓" * 65 + "😀" + "✓" * 67, "UCS-2", 2, 134),
    ("GSM characters in a UCS-2 body cost one unit each", "€" * 70 + "ж", "UCS-2", 2, 71),
    ("c-cedilla is not GSM-7 (only the capital is)", "ç", "UCS-2", 1, 1),
    ("the backtick is not GSM-7", "`", "UCS-2", 1, 1),
    ("tab is not GSM-7", "\t", "UCS-2", 1, 1),
    ("a lone surrogate is one UTF-16 unit", "\ud83d", "UCS-2", 1, 1),
]


@pytest.mark.parametrize(
    ("body", "encoding", "segments", "units"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_vectors(body: str, encoding: Encoding, segments: int, units: int) -> None:
    """Each body counts as Twilio sends it: encoding, segments and units."""
    assert count_segments(body) == SegmentCount(encoding, segments, units)


@pytest.mark.parametrize("char", NOT_GSM)
def test_one_non_gsm_character_makes_the_body_ucs2(char: str) -> None:
    """A single character outside GSM 03.38 switches a 100-character body to UCS-2 (two segments)."""
    result = count_segments("a" * 99 + char)
    assert result.encoding == "UCS-2"
    assert result.segments == 2


@pytest.mark.parametrize("char", list(EXTENSION))
def test_extension_characters_never_split_at_the_boundary(char: str) -> None:
    """An extension character whose escape would be septet 153 of a segment starts the next one."""
    assert count_segments("a" * 152 + char + "a" * 152).segments == 3
    assert count_segments("a" * 151 + char + "a" * 153).segments == 2


def _gsm_text() -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from(string.ascii_letters + " .,!?" + EXTENSION + GSM_NON_ASCII), max_size=700)


any_text = st.one_of(_gsm_text(), st.text(max_size=400))


@given(any_text, any_text)
def test_segments_never_decrease_when_text_is_appended(head: str, tail: str) -> None:
    """Appending text never lowers the count (a switch to UCS-2 only raises it)."""
    assert count_segments(head + tail).segments >= count_segments(head).segments


@given(any_text)
def test_never_zero_segments_and_within_packing_bounds(body: str) -> None:
    """At least one segment; concatenated bodies need at least ceil(units/153|67) segments and, since only
    a two-unit pair can leave a unit unused, at most ceil(units/152|66)."""
    result = count_segments(body)
    assert result.segments >= 1
    single, multi = (160, 153) if result.encoding == "GSM-7" else (70, 67)
    if result.units <= single:
        assert result.segments == 1
    else:
        assert -(-result.units // multi) <= result.segments <= -(-result.units // (multi - 1))


@given(st.text(alphabet=string.ascii_letters + string.digits, max_size=1700))
def test_alphanumeric_bodies_match_the_simple_rule(body: str) -> None:
    """For ASCII letters and digits: GSM-7, one septet each, 160 in one segment, else 153 per segment."""
    n = len(body)
    expected = 1 if n <= 160 else -(-n // 153)
    assert count_segments(body) == SegmentCount("GSM-7", expected, n)


@given(st.text(alphabet=st.characters(min_codepoint=0x0400, max_codepoint=0x04FF), max_size=700))
def test_bmp_non_gsm_bodies_match_the_simple_ucs2_rule(body: str) -> None:
    """For Cyrillic (one UTF-16 unit each, none GSM-7): 70 in one segment, else 67 per segment."""
    n = len(body)
    expected = 1 if n <= 70 else -(-n // 67)
    assert count_segments(body) == SegmentCount("UCS-2" if body else "GSM-7", expected, n)
