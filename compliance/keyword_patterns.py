"""Compile the keyword tables (compliance/keyword_tables.py) into fast lookup structures.

Matching happens on ``" " + normalized + " "`` (see compliance/message_text.py), where every
word is followed by exactly one space; each compiled phrase consumes "word " units, which
gives whole-word matching without ``\\b`` (which would treat digits and letters alike).

Speed: a message is only tried against the phrases whose *anchor* word it contains (the
first required word of the phrase), so a typical message runs zero to three small regular
expressions instead of one large alternation over every phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from compliance.message_text import normalize

__all__ = ["CompiledPattern", "PatternSet", "compile_pattern", "damerau_levenshtein"]

_ELEMENT = re.compile(r"\[[^\]]*\]\??|\S+")


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    regex: re.Pattern[str]
    anchors: frozenset[str] | None  # None: no usable anchor word, always tried
    index: int  # position in its table, so earlier entries win


def _word(raw: str) -> str:
    prefix = raw.endswith("*")
    norm = normalize(raw.rstrip("*"))
    if not norm:
        raise ValueError(f"empty word in keyword pattern: {raw!r}")
    return re.escape(norm).replace("\\ ", " ") + ("[^ ]*" if prefix else "")


def compile_pattern(pattern: str, index: int, *, whole: bool = False) -> CompiledPattern:
    """One mini-syntax pattern (documented in compliance/keyword_tables.py) as a regex + anchors."""
    parts: list[str] = []
    anchors: frozenset[str] | None = None
    start = end = False
    for element in _ELEMENT.findall(pattern):
        if element == "^":
            start = True
            continue
        if element == "$":
            end = True
            continue
        optional = element.endswith("?")
        body = element[:-1] if optional else element
        if body == "~":
            parts.append("(?:[^ ]+ )?" if optional else "[^ ]+ ")
            continue
        if body == "~~":
            parts.append("(?:[^ ]+ ){0,3}")
            continue
        alternatives = body[1:-1].split("|") if body.startswith("[") else [body]
        alts = [" ".join(_word(w) for w in alt.split()) + " " for alt in alternatives if alt.strip()]
        if not alts:
            raise ValueError(f"empty alternative group in keyword pattern: {pattern!r}")
        group = "(?:" + "|".join(alts) + ")"
        parts.append(group + "?" if optional else group)
        firsts = [alt.split()[0] for alt in alternatives if alt.strip()]
        if anchors is None and not optional and not any(f.endswith("*") for f in firsts):
            anchors = frozenset(normalize(f).split()[0] for f in firsts)
    source = ("^ " if start or whole else " ") + "".join(parts) + ("$" if end or whole else "")
    return CompiledPattern(regex=re.compile(source), anchors=anchors, index=index)


_P = TypeVar("_P")


class PatternSet(Generic[_P]):
    """Patterns tried in table order, each only when the message holds one of its anchors."""

    __slots__ = ("_always", "_by_anchor", "_items")

    def __init__(self, items: Iterable[tuple[CompiledPattern, _P]]) -> None:
        self._items = tuple(items)
        by_anchor: dict[str, list[int]] = {}
        always: list[int] = []
        for i, (pat, _) in enumerate(self._items):
            if pat.anchors is None:
                always.append(i)
            else:
                for anchor in pat.anchors:
                    by_anchor.setdefault(anchor, []).append(i)
        self._by_anchor = {k: tuple(v) for k, v in by_anchor.items()}
        self._always = tuple(always)

    def __bool__(self) -> bool:
        return bool(self._items)

    def search(self, tokens: Iterable[str], padded: str) -> tuple[re.Match[str], _P] | None:
        """The first pattern (table order) found in ``padded``, with its payload."""
        hits: set[int] = set(self._always)
        by_anchor = self._by_anchor
        for tok in tokens:
            found = by_anchor.get(tok)
            if found:
                hits.update(found)
        for i in sorted(hits):
            pat, payload = self._items[i]
            m = pat.regex.search(padded)
            if m is not None:
                return m, payload
        return None


def damerau_levenshtein(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance (insert, delete, substitute, swap neighbours)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]
