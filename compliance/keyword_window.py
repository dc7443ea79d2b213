"""Find revocation intent across a window of words (the rules: compliance/keyword_window_tables.py).

The phrase tables (compliance/keyword_tables.py) need the words of a revocation next to each
other; people put fillers, shorthand and extra words between them ("ok im done w these
msgs"). Here each word of a sentence is tagged with the classes it belongs to (a stop verb, a
reference to texts or to this number, a negation ...), and a rule fires when its classes
appear in order, each within a few words of the previous one, inside one sentence.

Speed: a rule is tried only when the message holds, for each of its classes, a word of some
member (set tests, in C), and the rules are indexed by the rarest of their classes (the
rule's ``anchor``), so most messages are rejected by one set intersection.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from compliance.keyword_patterns import word_score
from compliance.keyword_window_tables import CLASSES, RULES, WindowRule
from compliance.message_text import normalize

__all__ = ["WINDOW", "WindowHit", "WindowMatcher"]

_END = "$"
_LONGEST = 5  # members are at most this many words


@dataclass(frozen=True, slots=True)
class WindowHit:
    rule: WindowRule
    matched: str  # the words from the first step to the last, normalised


@dataclass(frozen=True, slots=True)
class _Step:
    classes: frozenset[str]  # empty: the end of the sentence
    gap: int


class WindowMatcher:
    """Tags the words of a sentence with their classes and runs the window rules over them."""

    __slots__ = ("_anchors", "_breaks", "_by_anchor", "_longest", "_members", "_needs", "_rarest", "_rules", "_steps")

    def __init__(self, classes: dict[str, tuple[str, ...]], rules: Iterable[WindowRule]) -> None:
        members: dict[tuple[str, ...], set[str]] = {}
        rarest: dict[str, set[str]] = {}  # per class, the rarest word of each member
        longest: dict[str, int] = {}  # per first word, its longest member
        for name, words in classes.items():
            for member in words:
                key = tuple(normalize(member).split())
                if not key or len(key) > _LONGEST:
                    raise ValueError(f"window class {name}: bad member {member!r}")
                members.setdefault(key, set()).add(name)
                # The rarest word; among common ones the last ("can you not" -> "not", "to me" -> "me").
                rarest.setdefault(name, set()).add(max(reversed(key), key=word_score))
                longest[key[0]] = max(longest.get(key[0], 0), len(key))
        self._members = {k: frozenset(v) for k, v in members.items()}
        self._longest = longest
        self._rarest = {k: frozenset(v) for k, v in rarest.items()}
        self._breaks = frozenset(k[0] for k, v in members.items() if "BREAK" in v and len(k) == 1)
        self._rules = tuple(rules)
        self._steps: list[tuple[_Step, ...]] = []
        needs: list[tuple[frozenset[str], ...]] = []
        by_anchor: dict[str, set[int]] = {}
        for index, rule in enumerate(self._rules):
            steps = []
            need = []
            for cls, gap in rule.steps:
                names = frozenset() if cls == _END else frozenset(cls.split("|"))
                unknown = names - rarest.keys()
                if unknown:
                    raise ValueError(f"window rule {rule.name}: unknown class {sorted(unknown)}")
                steps.append(_Step(names, gap))
                if names:
                    need.append(frozenset(w for n in names for w in rarest[n]))
            anchor = rule.anchor or next(cls for cls, _ in reversed(rule.steps) if cls != _END)
            for name in anchor.split("|"):
                if name not in rarest:
                    raise ValueError(f"window rule {rule.name}: unknown anchor class {name}")
                for word in rarest[name]:
                    by_anchor.setdefault(word, set()).add(index)
            self._steps.append(tuple(steps))
            needs.append(tuple(need))
        self._needs = tuple(needs)
        self._by_anchor = {k: tuple(sorted(v)) for k, v in by_anchor.items()}
        # A message holding none of these cannot match any rule: the fast exit.
        self._anchors = frozenset(by_anchor)

    def rarest(self, name: str) -> frozenset[str]:
        """The rarest word of each member of class ``name``: a message holding a member holds one."""
        return self._rarest[name]

    @property
    def anchors(self) -> frozenset[str]:
        """A message holding none of these words matches no window rule."""
        return self._anchors

    def candidates(self, tokset: AbstractSet[str]) -> list[int]:
        """The rules whose every class has a word in the message, in table order."""
        found = self._anchors.intersection(tokset)
        if not found:
            return []
        indexes = {i for w in found for i in self._by_anchor[w]}
        needs = self._needs
        return sorted(i for i in indexes if all(not group.isdisjoint(tokset) for group in needs[i]))

    def _tag(self, tokens: list[str]) -> list[list[tuple[int, frozenset[str]]]]:
        """For each word position, the (end, classes) of every member starting there."""
        n = len(tokens)
        spans: list[list[tuple[int, frozenset[str]]]] = [[] for _ in range(n)]
        hidden_until = 0
        longest = self._longest
        for i in range(n):
            for length in range(min(longest.get(tokens[i], 0), n - i), 0, -1):
                classes = self._members.get(tuple(tokens[i : i + length]))
                if classes is None:
                    continue
                if "IGNORE" in classes:
                    hidden_until = max(hidden_until, i + length)
                    spans[i].clear()
                    break
                if i >= hidden_until:
                    spans[i].append((i + length, classes))
        return spans

    def match(self, sentences: Iterable[list[str]], rules: list[int]) -> WindowHit | None:
        """The first of ``rules`` (indexes, table order) that fires in one of ``sentences``."""
        tagged = [(tokens, self._tag(tokens)) for tokens in sentences]
        for index in rules:
            steps = self._steps[index]
            rule = self._rules[index]
            for tokens, spans in tagged:
                found = self._find(tokens, spans, steps, rule.not_after)
                if found is not None:
                    return WindowHit(rule, " ".join(tokens[found[0] : found[1]]))
        return None

    def _find(
        self,
        tokens: list[str],
        spans: list[list[tuple[int, frozenset[str]]]],
        steps: tuple[_Step, ...],
        not_after: tuple[str, ...],
    ) -> tuple[int, int] | None:
        first = steps[0].classes
        for start in range(len(tokens)):
            for end, classes in spans[start]:
                if first.isdisjoint(classes) or (not_after and self._ends_at(spans, start, not_after)):
                    continue
                last = self._follow(tokens, spans, steps, 1, end)
                if last is not None:
                    return start, last
        return None

    def _follow(
        self, tokens: list[str], spans: list[list[tuple[int, frozenset[str]]]], steps: tuple[_Step, ...], k: int,
        pos: int,
    ) -> int | None:
        """Where the match ends if steps[k:] can follow from word ``pos``, else None."""
        if k == len(steps):
            return pos
        step = steps[k]
        if not step.classes:
            return pos if len(tokens) - pos <= step.gap else None
        for at in range(pos, min(pos + step.gap, len(tokens) - 1) + 1):
            if at > pos and tokens[at - 1] in self._breaks:
                return None  # the window never crosses "and", "but", "if" ...
            for end, classes in spans[at]:
                if not step.classes.isdisjoint(classes):
                    last = self._follow(tokens, spans, steps, k + 1, end)
                    if last is not None:
                        return last
        return None

    @staticmethod
    def _ends_at(spans: list[list[tuple[int, frozenset[str]]]], start: int, names: tuple[str, ...]) -> bool:
        """A member of one of ``names`` ends right before word ``start`` ("ill" before "stop")."""
        for i in range(max(0, start - _LONGEST), start):
            for end, classes in spans[i]:
                if end == start and any(n in classes for n in names):
                    return True
        return False


WINDOW = WindowMatcher(CLASSES, RULES)
