"""Classify an inbound message as opt-out, opt-in, help, nothing, or "a person should look".

Decision order (first match wins):

1. Normalise: Unicode NFKC, case folding, accents and invisible characters removed,
   punctuation/emoji/symbols turned into spaces, whitespace collapsed, letter repeats
   collapsed ("stoooop" -> "stop"). Empty after that -> NONE ("empty").
2. Exact keyword: the whole message is one opt-out / opt-in / help keyword
   (COMPLIANCE.md §2, Twilio's defaults, plus "opt out" with a space, an FCC per se
   word, COMPLIANCE.md §3).

(This first cut matches exact keywords only; phrases, misspellings and booking context
follow.)
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from dataclasses import dataclass

from compliance.keyword_tables import DEFAULT_TABLES, KeywordTables

__all__ = ["CLASSIFIER_VERSION", "Classification", "Intent", "KeywordTables", "classify", "normalize"]

# Stored with every classification as evidence: bump whenever tables or rules change.
CLASSIFIER_VERSION = "2026.11.1"


class Intent(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class Classification:
    intent: Intent
    matched: str | None  # the keyword or phrase that matched, as written in the tables
    language: str | None  # "en" | "es" | None
    rule: str
    scope_all: bool = False
    version: str = CLASSIFIER_VERSION

    def as_evidence(self) -> dict[str, object]:
        """A JSON-able dict for the consent ledger's evidence column."""
        return {
            "intent": self.intent.value,
            "matched": self.matched,
            "language": self.language,
            "rule": self.rule,
            "scope_all": self.scope_all,
            "classifier_version": self.version,
        }


_NON_WORD = re.compile(r"[\W_]+")
_REPEATS = re.compile(r"([^\W\d_])\1+")


def normalize(text: str) -> str:
    """The matching form of ``text``: lower-case words separated by single spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    text = text.replace("'", "").replace("\u2019", "")
    text = _NON_WORD.sub(" ", text)
    text = _REPEATS.sub(r"\1", text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class _Compiled:
    exact: dict[str, tuple[Intent, str, str, bool]]


@functools.lru_cache(maxsize=32)
def _compile(tables: KeywordTables) -> _Compiled:
    exact: dict[str, tuple[Intent, str, str, bool]] = {}
    for table in tables.languages:
        for intent, words, scope_all in (
            (Intent.OPT_OUT, table.opt_out, False),
            (Intent.OPT_OUT, table.opt_out_all, True),
            (Intent.OPT_IN, table.opt_in, False),
            (Intent.HELP, table.help, False),
        ):
            for word in words:
                exact.setdefault(normalize(word), (intent, word, table.language, scope_all))
    return _Compiled(exact=exact)


def classify(text: str, *, extra: KeywordTables | None = None) -> Classification:
    """Classify one inbound message body. Never raises on any ``str``."""
    tables = DEFAULT_TABLES if extra is None else DEFAULT_TABLES.merged(extra)
    compiled = _compile(tables)
    norm = normalize(text)
    if not norm:
        return Classification(Intent.NONE, None, None, "empty")
    hit = compiled.exact.get(norm)
    if hit is not None:
        intent, word, language, scope_all = hit
        return Classification(intent, word, language, "exact_keyword", scope_all=scope_all)
    return Classification(Intent.NONE, None, None, "no_match")
