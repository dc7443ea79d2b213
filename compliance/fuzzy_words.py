"""Misspelling correction toward the revocation vocabulary ("stpo", "unsubscibe", "mesages").

FCC 24-24 (docs/compliance.md#revocation-by-any-reasonable-means): a revocation must be
honoured when a reasonable person would read it as one, and practitioners advise catching
misspellings. So before the tables are tried a second time, each unknown word within a small
edit distance of a table word (``LanguageTable.fuzzy``) is replaced by it: distance 1 (insert,
delete, substitute, swap neighbours), and 2 for words of 11 letters or more (the longer the
word, the more a reader forgives: "unsubcribe", "unsuscrbe").

Real words next to a vocabulary word ("step", "shop", "quite", "remote", "subscribe") are
never "corrected": compliance/fuzzy_exempt.py lists them, generated from English and
Spanish dictionaries by tools/gen_fuzzy_exempt.py.

Speed: every distance-1 neighbour of every vocabulary word is precomputed (a few thousand
strings), so finding the misspelt words of a message is one C-level set intersection. Only
words of 9+ letters that start like a long vocabulary word ("uns", "des") go through
the slower distance-2 search (symmetric deletions confirmed by the real distance).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from compliance.fuzzy_exempt import EXEMPT
from compliance.keyword_patterns import damerau_levenshtein

__all__ = ["Corrector", "max_distance"]

MIN_WORD = 3  # "stp" is still read as "stop"; shorter words carry too little to correct
LONG_WORD = 11  # from this length on, distance 2 is forgiven ("unsubscribe", "desuscribir")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def max_distance(word: str) -> int:
    return 2 if len(word) >= LONG_WORD else 1


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _neighbours(word: str) -> set[str]:
    """Every string at edit distance 1 from ``word`` (optimal string alignment)."""
    out = _deletes(word)
    for i in range(len(word) + 1):
        out.update(word[:i] + ch + word[i:] for ch in _ALPHABET)
    for i in range(len(word)):
        out.update(word[:i] + ch + word[i + 1 :] for ch in _ALPHABET)
    out.update(word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1))
    out.discard(word)
    return out


class Corrector:
    """Corrects misspelt words of a message toward a fixed vocabulary."""

    __slots__ = ("_heads", "_known", "_long", "_long_re", "_near", "_near_real", "_near_words")

    def __init__(self, vocabulary: Iterable[str], known: Iterable[str], exempt: frozenset[str] = EXEMPT) -> None:
        vocab = {w for w in vocabulary if len(w) >= 4}
        table_words = frozenset(known) | vocab
        self._known = table_words | exempt
        near: dict[str, str] = {}
        near_real: dict[str, str] = {}  # real words one edit from the vocabulary ("step", "leaf")
        for word in sorted(vocab):
            for n in _neighbours(word):
                if len(n) < MIN_WORD or n in table_words:
                    continue
                (near_real if n in exempt else near).setdefault(n, word)
        self._near = near
        self._near_real = near_real
        self._near_words = frozenset(near)
        longs = {w for w in vocab if len(w) >= LONG_WORD}
        index: dict[str, set[str]] = {}
        for word in longs:
            for d in _deletes(word):
                for v in {d} | _deletes(d):
                    index.setdefault(v, set()).add(word)
        self._long = {k: tuple(sorted(v)) for k, v in index.items()}
        self._heads = tuple(sorted({w[:3] for w in longs}))
        # Candidates for the distance-2 search, found by one scan of the padded message.
        self._long_re = (
            re.compile(" ((?:" + "|".join(self._heads) + f")[a-z]{{{LONG_WORD - 5},}})(?= )") if self._heads else None
        )

    @property
    def near(self) -> dict[str, str]:
        """Every non-word at distance 1 from the vocabulary, mapped to its vocabulary word."""
        return self._near

    def correct_real_words(self, tokens: list[str]) -> list[str] | None:
        """``tokens`` with real words one edit from the vocabulary replaced ("leaf me alone"), or None.

        Only for a second look whose finding the caller trusts only as a phrase and as review:
        "step" is a word, "step texting me" is still a typo of a revocation.
        """
        out = [self._near_real.get(t, t) for t in tokens]
        return None if out == tokens else out

    def correct_word(self, word: str) -> str | None:
        """The vocabulary word ``word`` is a misspelling of, or None."""
        hit = self._near.get(word)
        if hit is not None:
            return hit
        if len(word) < LONG_WORD - 2 or not word.startswith(self._heads) or word in self._known:
            return None
        # The index holds the vocabulary with up to two letters deleted; the word, with up to one.
        # That finds every word within distance 2 that has at most one letter too many (the
        # common misspellings drop or swap letters), at a fraction of the cost of two deletions.
        variants = {word} | _deletes(word)
        best: tuple[int, str] | None = None
        for v in variants:
            for cand in self._long.get(v, ()):
                d = damerau_levenshtein(word, cand)
                if d <= 2 and (best is None or (d, cand) < best):
                    best = (d, cand)
        return None if best is None else best[1]

    def correct(self, tokens: list[str], tokset: set[str], padded: str) -> list[str] | None:
        """``tokens`` (also given as a set, and as " a b c ") with misspellings fixed, or None."""
        near = self._near_words
        fixes = {} if near.isdisjoint(tokset) else {t: self._near[t] for t in near.intersection(tokset)}
        if self._long_re is not None:
            for tok in self._long_re.findall(padded):
                if tok not in fixes:
                    fixed = self.correct_word(tok)
                    if fixed is not None:
                        fixes[tok] = fixed
        if not fixes:
            return None
        return [fixes.get(t, t) for t in tokens]
