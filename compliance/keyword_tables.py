"""The keyword and phrase tables of the consent classifier, as data, per language.

Kept apart from the matching code (compliance/keywords.py) so that the words a station
answers to can be read, reviewed and extended in one place. A station extends them without
code changes: build a ``KeywordTables`` with its extra words and pass it as
``classify(text, extra=...)``; ``DEFAULT_TABLES.merged(extra)`` is what gets matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

__all__ = ["DEFAULT_TABLES", "ENGLISH", "SPANISH", "KeywordTables", "LanguageTable", "Phrase"]


@dataclass(frozen=True, slots=True)
class Phrase:
    """A revocation (or review) phrase in the table mini-syntax (see compliance/keywords.py)."""

    pattern: str
    intent: str = "opt_out"  # "opt_out" | "review"
    whole: bool = False  # must be the whole message (polite filler aside), not just inside it
    scope_all: bool = False  # revokes every scope and purpose
    veto: bool = False  # booking context in the message downgrades the match to review


@dataclass(frozen=True, slots=True)
class LanguageTable:
    """Every word list of one language. Words are written naturally; the matcher normalises them."""

    language: str
    opt_out: tuple[str, ...] = ()
    opt_out_all: tuple[str, ...] = ()
    opt_in: tuple[str, ...] = ()
    help: tuple[str, ...] = ()
    filler: tuple[str, ...] = ()
    phrases: tuple[Phrase, ...] = ()

    def merged(self, other: LanguageTable) -> LanguageTable:
        """This table with ``other``'s entries appended (same language)."""
        if other.language != self.language:
            raise ValueError(f"cannot merge language {other.language!r} into {self.language!r}")
        return LanguageTable(
            language=self.language,
            opt_out=_union(self.opt_out, other.opt_out),
            opt_out_all=_union(self.opt_out_all, other.opt_out_all),
            opt_in=_union(self.opt_in, other.opt_in),
            help=_union(self.help, other.help),
            filler=_union(self.filler, other.filler),
            phrases=_union(self.phrases, other.phrases),
        )


_T = TypeVar("_T")


def _union(a: tuple[_T, ...], b: tuple[_T, ...]) -> tuple[_T, ...]:
    return a + tuple(x for x in b if x not in a)


@dataclass(frozen=True, slots=True)
class KeywordTables:
    """The tables of every language the classifier reads."""

    languages: tuple[LanguageTable, ...]

    def merged(self, other: KeywordTables) -> KeywordTables:
        """These tables extended by ``other`` (a station's additions); languages match by code."""
        mine = {t.language: t for t in self.languages}
        for table in other.languages:
            mine[table.language] = mine[table.language].merged(table) if table.language in mine else table
        return KeywordTables(languages=tuple(mine.values()))


# COMPLIANCE.md §2 "Default keywords" (Twilio) and §3 (FCC per se words, incl. "opt out").
ENGLISH = LanguageTable(
    language="en",
    opt_out=("stop", "unsubscribe", "cancel", "end", "quit", "revoke", "optout", "opt out"),
    opt_out_all=("stopall", "stop all"),
    opt_in=("start", "yes", "unstop"),
    help=("help", "info"),
)

SPANISH = LanguageTable(
    language="es",
    opt_out=("alto", "parar", "cancelar", "baja"),
)

DEFAULT_TABLES = KeywordTables(languages=(ENGLISH, SPANISH))
