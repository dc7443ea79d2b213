"""Compile the keyword tables (compliance/keyword_tables.py) into fast lookup structures.

Matching happens on ``" " + normalized + " "`` (see compliance/message_text.py), where every
word is followed by exactly one space; each compiled phrase consumes "word " units, which
gives whole-word matching without ``\\b`` (which would treat digits and letters alike).

Speed: a message is only tried against the phrases whose *anchor* it contains (one word of
the phrase's rarest required group, e.g. "texting" rather than "me"), and only when it also
holds a word of every other required group; so a typical message runs zero or one small
regular expression instead of one large alternation over every phrase.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Generic, TypeVar

from compliance.message_text import normalize

__all__ = ["CompiledPattern", "PatternSet", "compile_pattern", "damerau_levenshtein", "word_score"]

_ELEMENT = re.compile(r"\[[^\]]*\]\??|\S+")


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    regex: re.Pattern[str]
    # The words of which a message must hold one for the pattern to possibly match: whole
    # words, and word starts (from ``word*``). Both empty: no usable anchor, always tried.
    anchors: frozenset[str]
    prefixes: frozenset[str]
    # Every literal word, and whether those are all the pattern can match (no ``word*``, ``~``):
    # a message whose words are not all among them cannot match a whole-message pattern.
    words: frozenset[str]
    closed: bool
    # Every required group of whole words: a message must hold one word of each to match.
    required: tuple[frozenset[str], ...] = ()


def _word(raw: str) -> str:
    prefix, suffix = raw.endswith("*"), raw.startswith("*")
    norm = normalize(raw.strip("*"))
    if not norm:
        raise ValueError(f"empty word in keyword pattern: {raw!r}")
    return ("[^ ]*" if suffix else "") + re.escape(norm).replace("\\ ", " ") + ("[^ ]*" if prefix else "")


# Words too common in ordinary messages to be a good anchor when the pattern offers another.
_COMMON = frozenset(
    {
        "a", "an", "the", "to", "do", "i", "me", "my", "we", "us", "you", "u", "it", "is", "in", "on", "at",
        "of", "for", "and", "or", "no", "so", "that", "this", "please", "pls", "de", "la", "el", "lo", "los",
        "las", "que", "mi", "y", "en", "por", "con", "se", "te", "tu", "su", "ya", "from", "sent", "have",
        "has", "had", "will", "with", "what", "when", "your", "our", "just", "get", "got", "can", "are",
        "was", "be", "more", "these", "those", "them", "they", "all", "any", "some", "here", "there", "out",
        "up", "if", "how", "who", "why", "were", "been", "am", "im", "its", "thats", "one", "not", "but",
    }
)


def word_score(word: str) -> int:
    """How good an anchor ``word`` (table spelling) is: longer and less common is better."""
    if word.startswith("*"):
        return -1  # a word end ("*ing") cannot anchor
    if word.endswith("*"):
        return len(word) - 2  # a word start costs a regex scan: slightly worse than a whole word
    return 0 if word in _COMMON else len(word)


def _anchor_score(words: frozenset[str], prefixes: frozenset[str]) -> int:
    """Higher is a rarer anchor: the shortest (or most common) alternative decides."""
    scores = [0 if w in _COMMON else len(w) for w in words] + [len(p) - 1 for p in prefixes]
    return min(scores, default=0)


def compile_pattern(pattern: str, *, whole: bool = False) -> CompiledPattern:
    """One mini-syntax pattern (documented in compliance/keyword_tables.py) as a regex + anchors."""
    parts: list[str] = []
    candidates: list[tuple[int, int, frozenset[str], frozenset[str]]] = []
    required: list[frozenset[str]] = []
    words: set[str] = set()
    closed = True
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
            closed = False
            continue
        if body == "~~":
            parts.append("(?:[^ ]+ ){0,3}")
            closed = False
            continue
        alternatives = body[1:-1].split("|") if body.startswith("[") else [body]
        alts = [" ".join(_word(w) for w in alt.split()) + " " for alt in alternatives if alt.strip()]
        if not alts:
            raise ValueError(f"empty alternative group in keyword pattern: {pattern!r}")
        group = "(?:" + "|".join(alts) + ")"
        parts.append(group + "?" if optional else group)
        for alt in alternatives:
            for w in alt.split():
                closed = closed and "*" not in w
                words.update(normalize(w.strip("*")).split())
        if not optional:
            # Each alternative is anchored on its rarest word ("no more" on "more").
            picks = [max(alt.split(), key=word_score) for alt in alternatives if alt.strip()]
            if not any(w.startswith("*") for w in picks):
                exact = frozenset(normalize(w).split()[0] for w in picks if not w.endswith("*"))
                starts = frozenset(normalize(w.rstrip("*")).split()[0] for w in picks if w.endswith("*"))
                candidates.append((_anchor_score(exact, starts), -len(candidates), exact, starts))
                if not starts:
                    required.append(exact)
    source = ("^ " if start or whole else " ") + "".join(parts) + ("$" if end or whole else "")
    # Anchor on the required group whose words are rarest in ordinary messages.
    anchor_words, prefixes = max(candidates)[2:] if candidates else (frozenset(), frozenset())
    return CompiledPattern(
        regex=re.compile(source),
        anchors=anchor_words,
        prefixes=prefixes,
        words=frozenset(words),
        closed=closed,
        required=tuple(sorted(required, key=len)),
    )


_P = TypeVar("_P")


class PatternSet(Generic[_P]):
    """Patterns tried in table order, each only when the message holds one of its anchors.

    Finding the candidate patterns is a set intersection (whole-word anchors) plus one regex
    scan (word-start anchors), both in C; most messages end there with no regex run.
    """

    __slots__ = ("_always", "_anchor_words", "_by_anchor", "_by_prefix", "_items", "_prefix_re", "vocabulary")

    def __init__(self, items: Iterable[tuple[CompiledPattern, _P]]) -> None:
        self._items = tuple(items)
        by_anchor: dict[str, list[int]] = {}
        by_prefix: dict[str, list[int]] = {}
        always: list[int] = []
        for i, (pat, _) in enumerate(self._items):
            if not pat.anchors and not pat.prefixes:
                always.append(i)
            for anchor in pat.anchors:
                by_anchor.setdefault(anchor, []).append(i)
            for prefix in pat.prefixes:
                by_prefix.setdefault(prefix, []).append(i)
        self._by_anchor = {k: tuple(v) for k, v in by_anchor.items()}
        self._anchor_words = frozenset(by_anchor)
        # A word matched by the longest prefix also starts with any shorter prefix of that prefix.
        self._by_prefix = {
            k: tuple(sorted({i for q, v in by_prefix.items() if k.startswith(q) for i in v})) for k in by_prefix
        }
        self._prefix_re = (
            re.compile(" (" + "|".join(re.escape(p) for p in sorted(by_prefix, key=len, reverse=True)) + ")")
            if by_prefix
            else None
        )
        self._always = tuple(always)
        # All the words the patterns can match, or None if some pattern matches open-ended words.
        self.vocabulary: frozenset[str] | None = (
            frozenset(w for pat, _ in self._items for w in pat.words)
            if all(pat.closed for pat, _ in self._items)
            else None
        )

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def anchor_words(self) -> frozenset[str]:
        return self._anchor_words

    @property
    def prefixes(self) -> frozenset[str]:
        return frozenset(self._by_prefix)

    @property
    def always(self) -> bool:
        """Some pattern has no anchor and is tried on every message."""
        return bool(self._always)

    def may_match(self, tokset: AbstractSet[str], padded: str) -> bool:
        """False when no pattern can match (no anchor present): a cheap pre-check."""
        return bool(
            self._always
            or not self._anchor_words.isdisjoint(tokset)
            or (self._prefix_re is not None and self._prefix_re.search(padded) is not None)
        )

    def search(self, tokset: AbstractSet[str], padded: str) -> tuple[re.Match[str], _P] | None:
        """The first pattern (table order) found in ``padded``, with its payload."""
        words = self._anchor_words.intersection(tokset)
        prefixes = self._prefix_re.findall(padded) if self._prefix_re is not None else ()
        if not words and not prefixes and not self._always:
            return None
        hits: set[int] = set(self._always)
        for w in words:
            hits.update(self._by_anchor[w])
        for p in prefixes:
            hits.update(self._by_prefix[p])
        items = self._items
        for i in sorted(hits) if len(hits) > 1 else hits:
            pat, payload = items[i]
            for group in pat.required:
                if group.isdisjoint(tokset):
                    break  # a required word is missing: the regex cannot match
            else:
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
