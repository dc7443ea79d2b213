"""worker.phone.PhoneNumber: one parse, one blind index and one ciphertext per number, never shown whole."""

from __future__ import annotations

from typing import Any

import pytest

from compliance.errors import InvalidNumber
from worker import pii
from worker.phone import PhoneNumber, as_number

NUMBER = "+14155550123"


def test_spellings_of_one_number_are_one_number() -> None:
    """Any spelling parses to the E.164 form and its blind index; a PhoneNumber passes through as_number untouched."""
    parsed = PhoneNumber.parse("(415) 555-0123")
    assert parsed == PhoneNumber.parse(NUMBER)
    assert (parsed.e164, parsed.index) == (NUMBER, pii.blind_index(NUMBER, kind="phone"))
    assert as_number(parsed) is parsed
    with pytest.raises(InvalidNumber):
        as_number("ACME")


def test_index_and_ciphertext_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """However many rows use the number, its HMAC and its encryption run once each, and the ciphertext decrypts."""
    calls: list[str] = []
    for method in ("blind_index", "encrypt"):
        real = getattr(pii.KeyRing, method)

        def counting(ring: pii.KeyRing, value: str, *, kind: str, real: Any = real, method: str = method) -> Any:
            calls.append(method)
            return real(ring, value, kind=kind)

        monkeypatch.setattr(pii.KeyRing, method, counting)
    number = PhoneNumber.parse(NUMBER)
    assert calls == []  # nothing computed until a row needs it
    assert {number.index for _ in range(3)} == {number.index}
    assert len({number.encrypted for _ in range(3)}) == 1
    assert sorted(calls) == ["blind_index", "encrypt"]
    assert pii.decrypt(number.encrypted, kind="phone") == NUMBER


def test_repr_masks_the_number() -> None:
    """A PhoneNumber in a log line or a traceback shows only the last two digits."""
    shown = repr(PhoneNumber.parse(NUMBER))
    assert "555012" not in shown
    assert shown.endswith("23)")
