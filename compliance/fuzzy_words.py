"""Misspelling correction toward the revocation vocabulary ("stpo", "unsubscibe", "mesages").

FCC 24-24 (COMPLIANCE.md §3): a revocation must be honoured when a reasonable person would
read it as one, and practitioners advise catching misspellings. So before the phrase tables
are tried a second time, each unknown word within a small edit distance of a table word
(``LanguageTable.fuzzy``) is replaced by it: distance 1 for words up to 7 letters, 2 for
longer ones (the longer the word, the more a reader forgives).

Real words next to a vocabulary word ("step", "shop", "quite", "remote") must never be
"corrected": compliance/fuzzy_exempt.py lists them, generated from English and Spanish
dictionaries by tools/gen_fuzzy_exempt.py.

Candidates come from a symmetric-delete index (every vocabulary word and its one- and
two-letter deletions), so a word costs a handful of dict lookups, not a distance
computation against every vocabulary word; survivors are confirmed with the real distance.
"""

from __future__ import annotations

from collections.abc import Iterable

from compliance.fuzzy_exempt import EXEMPT
from compliance.keyword_patterns import damerau_levenshtein

__all__ = ["Corrector", "max_distance"]

MIN_WORD = 3  # "stp" is still read as "stop"; shorter words carry too little to correct


def max_distance(word: str) -> int:
    return 1 if len(word) <= 7 else 2


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Corrector:
    """Corrects misspelt words of a message toward a fixed vocabulary."""

    __slots__ = ("_index", "_known", "_long_heads", "_max_len")

    def __init__(self, vocabulary: Iterable[str], known: Iterable[str], exempt: frozenset[str] = EXEMPT) -> None:
        index: dict[str, set[str]] = {}
        long_heads: set[str] = set()
        vocab = {w for w in vocabulary if len(w) >= 4}
        for word in vocab:
            variants = {word} | _deletes(word)
            if max_distance(word) == 2:
                long_heads.add(word[0])
                variants |= {d2 for d in _deletes(word) for d2 in _deletes(d)}
            for v in variants:
                index.setdefault(v, set()).add(word)
        self._index = {k: tuple(sorted(v)) for k, v in index.items()}
        self._known = frozenset(known) | vocab | exempt
        self._long_heads = frozenset(long_heads)
        self._max_len = max((len(w) for w in vocab), default=0) + 2

    def correct_word(self, word: str) -> str | None:
        """The vocabulary word ``word`` is a misspelling of, or None."""
        if len(word) < MIN_WORD or len(word) > self._max_len or word in self._known or not word.isalpha():
            return None
        index = self._index
        variants = {word} | _deletes(word)
        if len(word) >= 6 and word[0] in self._long_heads:
            variants |= {d2 for d in _deletes(word) for d2 in _deletes(d)}
        best: str | None = None
        best_distance = 99
        for v in variants:
            for cand in index.get(v, ()):
                d = damerau_levenshtein(word, cand)
                if d <= max_distance(cand) and (d, cand) < (best_distance, best or ""):
                    best, best_distance = cand, d
        return best

    def correct(self, tokens: list[str]) -> list[str] | None:
        """``tokens`` with misspellings replaced, or None when nothing was corrected."""
        out: list[str] | None = None
        for i, tok in enumerate(tokens):
            fixed = self.correct_word(tok)
            if fixed is not None:
                if out is None:
                    out = list(tokens)
                out[i] = fixed
        return out
