"""Coupon codes: CSPRNG over an unambiguous alphabet, sizes checked, CSV imports with every reject listed."""

from __future__ import annotations

from datetime import date

import pytest

from compliance.coupon_codes import ALPHABET, CodeError, generate, read_csv


def test_generated_codes_are_distinct_prefixed_and_unambiguous() -> None:
    """2,000 codes: all distinct, prefixed, of the asked length, never 0/O/1/I/L/U."""
    codes = generate("hh", 8, 2000)
    assert len(set(codes)) == 2000
    assert all(c.startswith("HH") and len(c) == 10 for c in codes)
    assert set("".join(c[2:] for c in codes)) <= set(ALPHABET)
    assert not set("0O1ILU") & set(ALPHABET)


def test_generation_uses_the_operating_systems_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    """Codes come from secrets (a CSPRNG), not random: patching secrets.choice changes them."""
    import compliance.coupon_codes as codes_module

    monkeypatch.setattr(codes_module.secrets, "choice", lambda alphabet: alphabet[0])
    assert codes_module.generate("", 6, 1) == ["222222"]


@pytest.mark.parametrize(("prefix", "length", "count", "why"), [
    ("TOO-LONG-PREFIX", 8, 1, "prefix"), ("A B", 8, 1, "prefix"), ("", 5, 1, "length"), ("", 17, 1, "length"),
    ("", 6, 100_000, "too few codes"),
])
def test_generation_refuses_what_cannot_work(prefix: str, length: int, count: int, why: str) -> None:
    """A bad prefix, a length out of range, or a code space too small for the count is refused, saying why."""
    with pytest.raises(CodeError, match=why):
        generate(prefix, length, count)


def test_a_pos_csv_is_read_with_every_reject_listed_by_line() -> None:
    """Good lines are taken (upper-cased, with expiry); empty, malformed, duplicate and bad-date lines are listed."""
    text = ("Code,Expires_On\nsave10-a,2027-01-31\n\nSAVE10-B,\nsave10-a,\nbad code!,\nSAVE10-C,31/01/2027\n"
            + "X" * 33 + ",\n")
    accepted, rejects = read_csv(text)
    assert [(c.code, c.expires_on) for c in accepted] == [("SAVE10-A", date(2027, 1, 31)), ("SAVE10-B", None)]
    assert [(r.line, r.reason.split(" ")[0]) for r in rejects] == [
        (5, "duplicate"), (6, "only"), (7, "expires_on"), (8, "longer"),
    ]


def test_a_csv_without_a_code_column_is_refused() -> None:
    """The header must name the code column."""
    with pytest.raises(CodeError, match="'code' column"):
        read_csv("coupon\nA1\n")
