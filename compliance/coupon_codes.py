"""Coupon codes: generated from a CSPRNG over an unambiguous alphabet, or read from a POS export.

Generated codes use ``secrets`` (the operating system's CSPRNG), never ``random``: a code is a
bearer discount, so it must not be guessable from the ones already handed out. The alphabet
leaves out characters people misread when a code is read aloud or typed from a text: 0/O, 1/I/L
and U (Crockford's base32 choices). A pool refuses a length whose code space is too small for
the number of codes asked for (collisions would make generation slow and codes guessable).

Imported codes (a CSV from the POS or e-commerce system) are upper-cased and checked one by one;
each line that cannot be used is listed with its line number and reason, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import date

from compliance.errors import ComplianceError

__all__ = [
    "ALPHABET",
    "CodeError",
    "ImportedCode",
    "Reject",
    "check_generation",
    "generate",
    "normalize_code",
    "read_csv",
]

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
MIN_LENGTH, MAX_LENGTH = 6, 16
MAX_CODE = 32
_PREFIX = re.compile(r"[A-Z0-9]{0,8}")
_IMPORTED = re.compile(r"[A-Z0-9][A-Z0-9-]*")
# A pool's code space must be this many times larger than the codes in it.
_SPACE_FACTOR = 10_000


class CodeError(ComplianceError, ValueError):
    """Raised when codes cannot be generated or read as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class ImportedCode:
    line: int
    code: str
    expires_on: date | None


@dataclass(frozen=True, slots=True)
class Reject:
    line: int
    code: str
    reason: str


def check_generation(prefix: str, length: int, count: int) -> str:
    """The upper-cased prefix; CodeError when prefix, length or count cannot work."""
    value = prefix.strip().upper()
    if not _PREFIX.fullmatch(value):
        raise CodeError(f"prefix {prefix!r}: at most 8 letters or digits")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise CodeError(f"code length must be {MIN_LENGTH}..{MAX_LENGTH} characters (not counting the prefix)")
    if count < 1:
        raise CodeError("generate at least one code")
    if len(ALPHABET) ** length < count * _SPACE_FACTOR:
        raise CodeError(f"{length} characters give too few codes for {count}: use a longer --length")
    return value


def generate(prefix: str, length: int, count: int) -> list[str]:
    """``count`` distinct codes ``prefix`` + ``length`` CSPRNG characters (callers still insert
    them under the unique key: a code can collide with one already stored)."""
    value = check_generation(prefix, length, count)
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(value + "".join(secrets.choice(ALPHABET) for _ in range(length)))
    return sorted(codes)


def normalize_code(raw: str) -> str:
    """A code as stored and looked up: trimmed, upper case."""
    return raw.strip().upper()


def read_csv(text: str) -> tuple[list[ImportedCode], list[Reject]]:
    """Codes from a CSV with a ``code`` column (optional ``expires_on``, YYYY-MM-DD); the rejects."""
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "code" not in fields:
        raise CodeError("the CSV needs a header row with a 'code' column (and optionally 'expires_on')")
    reader.fieldnames = fields
    accepted: list[ImportedCode] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        code = normalize_code(row.get("code") or "")
        reason = _code_problem(code, seen)
        expires: date | None = None
        raw_expiry = (row.get("expires_on") or "").strip()
        if reason is None and raw_expiry:
            try:
                expires = date.fromisoformat(raw_expiry)
            except ValueError:
                reason = f"expires_on {raw_expiry!r} is not a date (YYYY-MM-DD)"
        if reason is not None:
            rejects.append(Reject(line, code, reason))
            continue
        seen[code] = line
        accepted.append(ImportedCode(line, code, expires))
    return accepted, rejects


def _code_problem(code: str, seen: dict[str, int]) -> str | None:
    if not code:
        return "empty code"
    if len(code) > MAX_CODE:
        return f"longer than {MAX_CODE} characters"
    if not _IMPORTED.fullmatch(code):
        return "only letters, digits and '-' may appear in a code"
    if code in seen:
        return f"duplicate of line {seen[code]}"
    return None
