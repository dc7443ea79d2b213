"""The far reach of misspelling correction: two edits on short words, and spelling by sound.

Issue 14 point 4: a short revocation word misspelt by two edits ("srpo", "kwuit", "remvo"),
or spelt the way it sounds ("stahp", "unsubskrybe", "no me embien", "ya no kiero resibir"),
must not read as conversation. compliance/fuzzy_words.py forgives one edit (two from 11
letters on); here the reach is wider, so what it finds is never more than doubt: the
classifier caps anything found through it at REVIEW (a person decides, marketing pauses).

Two ways to be near a vocabulary word (both only for words of 4+ letters):
- edit distance 2 (optimal string alignment) from a vocabulary word of at most 8 letters,
  found through a symmetric-deletion index (longer words get two edits from fuzzy_words.py);
- the same sound key: letters a reader confuses by ear folded together (c/k/q, s/z, b/v, qu,
  x = ks, Spanish nv = mb, ce/ci = se/si), an h or w after a vowel dropped ("stahp",
  "stawp"), vowels after the first letter dropped, repeats collapsed.

Real words in that reach ("step", "soup", "hasta", "pasta") are never corrected:
compliance/fuzzy_exempt.py lists every dictionary word either corrector would change
(tools/gen_fuzzy_exempt.py derives it from the English and Spanish system dictionaries).

Speed: the search costs tens of microseconds a word, and the words of short replies repeat
endlessly ("thanks", "sounds", "good"), so each word's answer is remembered (up to
``MEMO_SIZE`` words, then the memory starts over). The answer depends only on the word and
the fixed vocabulary, so remembering it changes no result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from compliance.fuzzy_exempt import EXEMPT
from compliance.keyword_patterns import damerau_levenshtein

__all__ = ["FarCorrector", "sound_key"]

MIN_WORD = 4  # shorter words have too many neighbours at distance 2 to be read as anything
LONG_WORD = 8  # beyond this length the two-edit search is left to compliance/fuzzy_words.py
MEMO_SIZE = 50_000
_MIN_KEY = 3
_SOFT_C = re.compile(r"c(?=[eiy])")
_LETTERS = str.maketrans("cqzvfj", "kksbbh")
_SILENT = re.compile(r"(?<=[aeiouy])[hw]+|(?<=k)w")
_VOWELS = re.compile(r"(?<=.)[aeiouy]+")
_REPEATS = re.compile(r"(.)(?=\1)")


def sound_key(word: str) -> str:
    """``word`` folded to how it sounds (see the module docstring); "" for very short keys."""
    key = word.replace("ph", "b").replace("qu", "k").replace("ck", "k").replace("x", "ks").replace("nv", "mb")
    key = _SOFT_C.sub("s", key).translate(_LETTERS)
    key = _SILENT.sub("", key)
    key = ("a" + key[1:] if key[:1] in "aeiouy" else key) if key else key
    key = _REPEATS.sub("", _VOWELS.sub("", key))
    return key if len(key) >= _MIN_KEY else ""


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    edge = {word}
    for _ in range(depth):
        edge = {w[:i] + w[i + 1 :] for w in edge for i in range(len(w))}
        out |= edge
    return out


class FarCorrector:
    """Finds the vocabulary word an unknown word is two edits from, or sounds like."""

    __slots__ = ("_index", "_known", "_longest", "_memo", "_preferred", "_sounds")

    def __init__(
        self,
        vocabulary: Iterable[str],
        known: Iterable[str],
        exempt: frozenset[str] = EXEMPT,
        preferred: Iterable[str] = (),
    ) -> None:
        vocab = sorted({w for w in vocabulary if len(w) >= MIN_WORD and w.isalpha()})
        self._known = frozenset(known) | frozenset(vocab) | exempt
        self._preferred = frozenset(preferred)  # on a tie, a keyword beats another vocabulary word
        index: dict[str, set[str]] = {}
        sounds: dict[str, set[str]] = {}
        for word in vocab:
            if len(word) <= LONG_WORD:  # longer words already get two edits from compliance/fuzzy_words.py
                for d in _deletes(word, 2):
                    index.setdefault(d, set()).add(word)
            key = sound_key(word)
            if key:
                sounds.setdefault(key, set()).add(word)
        self._index = {k: tuple(sorted(v)) for k, v in index.items()}
        self._longest = max((len(w) for w in vocab if len(w) <= LONG_WORD), default=0)
        self._sounds = {k: tuple(sorted(v)) for k, v in sounds.items()}
        self._memo: dict[str, str | None] = {}

    def known(self, word: str) -> bool:
        return word in self._known

    def correct_word(self, word: str) -> str | None:
        """The vocabulary word ``word`` is near, or None.

        The closest wins; on a tie, one with the same first letter (people rarely miss the
        first), then a keyword, then the alphabet (so the answer never depends on set order).
        """
        if len(word) < MIN_WORD or word in self._known or not word.isalpha():
            return None
        best: tuple[int, bool, bool, str] | None = None
        for d in _deletes(word, 2) if len(word) <= self._longest + 2 else ():
            for cand in self._index.get(d, ()):
                if abs(len(cand) - len(word)) > 2:
                    continue
                dist = damerau_levenshtein(word, cand)
                if dist <= 2:
                    rank = (dist, cand[0] != word[0], cand not in self._preferred, cand)
                    if best is None or rank < best:
                        best = rank
        if best is not None:
            return best[3]
        key = sound_key(word)
        same = self._sounds.get(key, ()) if key else ()
        return same[0] if same else None

    def correct(self, tokens: list[str]) -> list[str] | None:
        """``tokens`` with far misspellings fixed, or None when there were none."""
        out = None
        memo = self._memo
        for i, tok in enumerate(tokens):
            if tok in self._known:
                continue
            if tok in memo:
                fixed = memo[tok]
            else:
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                fixed = memo[tok] = self.correct_word(tok)
            if fixed is not None:
                if out is None:
                    out = list(tokens)
                out[i] = fixed
        return out
