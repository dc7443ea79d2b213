"""Spell a message's words the way the tables are written, before the rules run again.

Texting has its own spellings that are not mistakes and that a reader resolves without a
thought: shorthand ("u", "ur", "w/", "msgs", "hmu"), letters spaced out for emphasis
("s t o p pls", "u n s u b s c r i b e"), digits for look-alike letters ("st0p", "qu1t",
"5TOP") and a keyword split in two ("opt ou", "re move"). The tables hold full words, so
each of these is rewritten to them (issue 16 point 6, issue 14 point 4). A rewrite is not a
guess: the classification that follows keeps its full strength.

Only rewrites that land on a table word are kept (a spaced-out "a b c" or a "4u" stay as they
are), so this never invents a revocation word out of ordinary text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

from compliance.keyword_window_tables import ABBREVIATIONS
from compliance.message_text import normalize

__all__ = ["Rewriter"]

_LEET = {"o": "0", "i": "1", "e": "3", "a": "4", "s": "5", "t": "7"}  # a letter -> the digit that looks like it
_WHY_NEXT = frozenset({"r", "are", "u", "you", "do", "does", "is", "am", "did"})
# Keywords people split in two: the joined pair is read as the keyword.
_SPLIT_TARGETS = ("optout", "unsubscribe", "unsub", "remove", "desuscribir", "desuscribirme")
_SINGLE_RUN = re.compile(r"(?:^| )[a-z](?: [a-z]){2,}(?= |$)")
_SINGLE_RUN_PADDED = re.compile(r" [a-z] [a-z] [a-z] ")  # the same test on " a b c ", cheaper


def _leet_spellings(word: str) -> set[str]:
    """``word`` with any of its letters that have a look-alike digit written as that digit."""
    out = {""}
    for ch in word:
        out = {p + ch for p in out} | ({p + _LEET[ch] for p in out} if ch in _LEET else set())
    return out


class Rewriter:
    """Rewrites texting spellings toward the table vocabulary (see the module docstring)."""

    __slots__ = (
        "_abbreviations", "_filler", "_heads", "_keywords", "_leet", "_near", "_tails", "_targets", "_vocabulary",
        "trigger_words",
    )

    def __init__(
        self, keywords: Iterable[str], vocabulary: Iterable[str], filler: Iterable[str], near: Mapping[str, str]
    ) -> None:
        self._keywords = frozenset(keywords)
        self._vocabulary = frozenset(vocabulary) | self._keywords
        self._filler = frozenset(filler)
        self._near = near  # a misspelling at distance 1 -> its vocabulary word (compliance/fuzzy_words.py)
        self._abbreviations = {k: tuple(normalize(v).split()) for k, v in ABBREVIATIONS.items()}
        self._targets = frozenset(_SPLIT_TARGETS)
        # Every first and second half a split keyword can have ("opt" + "ou", "re" + "move"): the
        # target or one of its distance-1 misspellings, cut after two letters or more.
        spellings = self._targets | {k for k, v in near.items() if v in self._targets}
        self._heads = frozenset(w[:i] for w in spellings for i in range(2, len(w) - 1))
        self._tails = frozenset(w[i:] for w in spellings for i in range(2, len(w) - 1))
        # Every vocabulary word spelt with look-alike digits ("st0p", "5t0p", "qu1t"), computed
        # once: finding them in a message is then a set test, and "5pm" or "14th" never are.
        self._leet = {v: w for w in self._vocabulary for v in _leet_spellings(w) if v != w}
        # A message holding one of these words may be rewritten (the other triggers are a run of
        # single letters or a split keyword: see needs()).
        self.trigger_words = frozenset(self._abbreviations) | {"y"} | frozenset(self._leet)

    def _known(self, word: str) -> str | None:
        """``word`` as a vocabulary word (itself, with repeats collapsed, or its distance-1 fix)."""
        squeezed = normalize(word)
        if squeezed in self._vocabulary:
            return squeezed
        return self._near.get(squeezed)


    def _join_letters(self, tokens: list[str]) -> list[str]:
        """Runs of three or more single letters joined, when that spells a keyword (plus filler)."""
        out: list[str] = []
        i = 0
        while i < len(tokens):
            j = i
            while j < len(tokens) and len(tokens[j]) == 1 and tokens[j].isalpha():
                j += 1
            if j - i >= 3:
                out.extend(self._spell(tokens[i:j]))
                i = j
            else:
                out.append(tokens[i])
                i += 1
        return out

    def _spell(self, letters: list[str]) -> list[str]:
        joined = "".join(letters)
        whole = self._known(joined)
        if whole is not None:
            return [whole]
        for cut in range(len(joined) - 1, 1, -1):  # "stoppls" = "stop" + "pls"
            head, tail = normalize(joined[:cut]), normalize(joined[cut:])
            if head in self._keywords and tail in self._filler:
                return [head, *tail.split()]
        return letters

    def rewrite(self, tokens: list[str], *, short: bool) -> list[str] | None:
        """``tokens`` respelled, or None when nothing changed. ``short``: also rejoin split keywords."""
        out = self._join_letters(tokens) if _SINGLE_RUN.search(" ".join(tokens)) else list(tokens)
        expanded: list[str] = []
        for i, tok in enumerate(out):
            if tok == "y" and i == 0 and len(out) > 1 and out[1] in _WHY_NEXT:
                expanded.append("why")
                continue
            full = self._abbreviations.get(tok)
            if full is not None:
                expanded.extend(full)
                continue
            plain = self._leet.get(tok)
            if plain is not None:
                expanded.append(plain)
                continue
            expanded.append(tok)
        if short:
            expanded = self._join_pairs(expanded)
        return None if expanded == tokens else expanded

    def _split_keyword(self, first: str, second: str) -> str | None:
        """The keyword two words spell together ("opt" + "ou", "re" + "move"), or None."""
        joined = first + second[1:] if first[-1:] == second[:1] else first + second  # the tables' one-letter repeats
        target = joined if joined in self._targets else self._near.get(joined)
        return target if target in self._targets else None

    def _join_pairs(self, tokens: list[str]) -> list[str]:
        """"opt ou", "opr out", "re move", "un sub": two words that together spell a split keyword."""
        out: list[str] = []
        i = 0
        while i < len(tokens):
            target = self._split_keyword(tokens[i], tokens[i + 1]) if i + 1 < len(tokens) else None
            if target is not None:
                out.append(target)
                i += 2
            else:
                out.append(tokens[i])
                i += 1
        return out

    def needs(self, tokens: list[str], tokset: AbstractSet[str], padded: str, *, short: bool) -> bool:
        """Whether rewrite() can change this message at all (cheap checks first)."""
        return (
            not self.trigger_words.isdisjoint(tokset)
            or _SINGLE_RUN_PADDED.search(padded) is not None
            or (
                short
                and not self._heads.isdisjoint(tokset)
                and not self._tails.isdisjoint(tokset)
                and any(self._split_keyword(a, b) is not None for a, b in itertools.pairwise(tokens))
            )
        )
