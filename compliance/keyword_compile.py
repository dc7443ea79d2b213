"""The keyword tables compiled into the lookup structures the classifier runs on.

Split from compliance/keywords.py (which holds the decision order) to keep each module small;
``compile_tables`` runs once per distinct tables value (the defaults, each station's merge).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from compliance.fuzzy_sounds import FarCorrector
from compliance.fuzzy_words import Corrector
from compliance.keyword_patterns import CompiledPattern, PatternSet, compile_pattern, word_score
from compliance.keyword_result import Classification, Intent
from compliance.keyword_rewrite import Rewriter
from compliance.keyword_tables import KeywordTables, Phrase
from compliance.keyword_window import WINDOW, WindowMatcher
from compliance.keyword_window_tables import ABBREVIATIONS, CLASSES
from compliance.message_text import normalize

__all__ = [
    "CORE_MAX_TOKENS",
    "KIND_INTENT",
    "Compiled",
    "Keyword",
    "Rule",
    "compile_tables",
    "far_vocabulary",
    "fuzzy_vocabulary",
    "in_booking_context",
    "strip_filler",
]

CORE_MAX_TOKENS = 8  # keyword + filler messages are short
# Words nearly every short reply holds: no sign that a misspelt revocation might be in it.
_EVERY_REPLY = frozenset(
    (
        "you", "to", "can", "a", "the", "of", "do", "is", "it", "i", "my", "that", "this", "up", "from", "could",
        "would", "even", "ever", "does", "all", "any", "here", "with",
    )
)
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class Keyword:
    kind: str  # "opt_out" | "bare" | "opt_in" | "help"
    word: str
    language: str
    scope_all: bool


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # "negation" | "phrase" | "review": the order in which they are tried
    phrase: Phrase
    language: str


@dataclass(frozen=True, slots=True)
class Compiled:
    keywords: dict[str, Keyword]
    exact: dict[str, Classification]
    filler: frozenset[str]
    # A message can only be "keyword + filler" if all its words are keyword or filler words.
    core_vocabulary: frozenset[str]
    keyword_words: frozenset[str]
    sentence_words: frozenset[str]  # one-word opt-out keywords
    sentence_phrases: re.Pattern[str] | None  # several-word ones ("no more", "opt out")
    rules: PatternSet[Rule]  # negations, then phrases, then review phrases (rules 4, 5, 7)
    whole_phrases: PatternSet[Rule]
    whole_vocabulary: frozenset[str] | None
    booking_words: frozenset[str]
    booking_phrases: PatternSet[str]
    triggers: dict[str, str]
    trigger_words: frozenset[str]
    # Fast path: a message holding none of these words (and no word start below) can only be
    # NONE by rules 3-9, since every one of them needs one of its words.
    interesting: frozenset[str] | None  # None: some pattern has no anchor, no fast path
    interesting_short: frozenset[str] | None  # the same for messages of CORE_MAX_TOKENS words or fewer
    interesting_starts: re.Pattern[str] | None
    corrector: Corrector
    # The wider reach (compliance/keyword_rewrite.py, keyword_window.py, fuzzy_sounds.py).
    rewriter: Rewriter
    window: WindowMatcher
    far: FarCorrector
    reach_words: frozenset[str]  # a long message holding none of these skips the rewrite and window stages
    # A short reply of four or five words is searched for far misspellings only when it holds one
    # of these (a reference to texts or to the sender, a negation, a keyword): "no me ebien mensajes".
    far_context: frozenset[str]


def fuzzy_vocabulary(tables: KeywordTables) -> set[str]:
    """The words misspellings are corrected toward at distance 1 (compliance/fuzzy_words.py)."""
    return {normalize(w) for table in tables.languages for w in table.fuzzy}


def far_vocabulary(tables: KeywordTables) -> set[str]:
    """The words far misspellings (two edits, sound) are corrected toward (compliance/fuzzy_sounds.py).

    The fuzzy vocabulary and every single-word opt-out keyword, except the short ones with an
    everyday booking meaning ("end", "para", "fin"): those are read only as typed.
    """
    words = fuzzy_vocabulary(tables)
    for table in tables.languages:
        words.update(normalize(w) for w in (*table.opt_out, *table.opt_out_all, *table.opt_out_bare))
        words.difference_update(normalize(w) for w in table.opt_out_bare if len(normalize(w)) < 5)
    return {w for w in words if " " not in w}


KIND_INTENT = {"opt_out": Intent.OPT_OUT, "bare": Intent.OPT_OUT, "opt_in": Intent.OPT_IN, "help": Intent.HELP}


@functools.lru_cache(maxsize=64)
def compile_tables(tables: KeywordTables) -> Compiled:
    """Tables -> lookup structures; once per distinct tables value (the default, each station's)."""
    keywords: dict[str, Keyword] = {}
    rules: dict[str, list[tuple[CompiledPattern, Rule]]] = {"negation": [], "phrase": [], "review": []}
    wholes: list[tuple[CompiledPattern, Rule]] = []
    booking: list[tuple[CompiledPattern, str]] = []
    filler: set[str] = set()
    booking_words: set[str] = set()
    triggers: dict[str, str] = {}
    literal_words: set[str] = set()  # every word a pattern names: known words, never "corrected" far
    for table in tables.languages:
        lang = table.language
        for kind, words, scope_all in (
            ("opt_out", table.opt_out, False),
            ("opt_out", table.opt_out_all, True),
            ("bare", table.opt_out_bare, False),
            ("opt_in", table.opt_in, False),
            ("help", table.help, False),
        ):
            for word in words:
                keywords.setdefault(normalize(word), Keyword(kind, normalize(word, squeeze=False), lang, scope_all))
        filler.update(normalize(w) for w in table.filler)
        for n in table.negations:
            negation = n if isinstance(n, Phrase) else Phrase(n, intent="review", veto=True)
            rules["negation"].append((compile_pattern(negation.pattern), Rule("negation", negation, lang)))
        for p in table.phrases:
            rule = Rule("review" if p.intent == "review" else "phrase", p, lang)
            if p.whole and p.intent != "review":
                wholes.append((compile_pattern(p.pattern, whole=True), rule))
            else:
                rules[rule.kind].append((compile_pattern(p.pattern), rule))
        booking.extend((compile_pattern(b), lang) for b in table.booking_phrases)
        booking_words.update(normalize(w) for w in table.booking_words)
        for t in table.triggers:
            triggers.setdefault(normalize(t), lang)
    for pattern in [p for g in rules.values() for p, _ in g] + [p for p, _ in wholes] + [p for p, _ in booking]:
        literal_words.update(pattern.words)
    exact = {
        k: Classification(KIND_INTENT[kw.kind], kw.word, kw.language, "exact_keyword", scope_all=kw.scope_all)
        for k, kw in keywords.items()
    }
    filler_words = frozenset(w for f in filler for w in f.split())
    multi = [k for k, kw in keywords.items() if kw.kind in ("opt_out", "bare") and " " in k]
    known = set(keywords) | filler | booking_words | set(triggers)
    known.update(w for k in keywords for w in k.split())
    whole_set = PatternSet(wholes)
    rule_set = PatternSet(rules["negation"] + rules["phrase"] + rules["review"])
    # Long messages can only match rules, triggers and sentence keywords; short ones also whole
    # phrases and "keyword + filler" (which need every keyword word).
    interesting = (
        None
        if rule_set.always
        else rule_set.anchor_words
        | frozenset(triggers)
        | frozenset(max(k.split(), key=word_score) for k, kw in keywords.items() if kw.kind in ("opt_out", "bare"))
    )
    interesting_short = (
        None
        if interesting is None or whole_set.always
        else interesting | whole_set.anchor_words | frozenset(w for k in keywords for w in k.split())
    )
    starts = rule_set.prefixes | whole_set.prefixes
    vocabulary = fuzzy_vocabulary(tables)
    keyword_words = {w for k, kw in keywords.items() if kw.kind in ("opt_out", "bare") for w in k.split()}
    window_words = {w for members in CLASSES.values() for m in members for w in normalize(m).split()}
    abbreviations = set(ABBREVIATIONS) | {w for v in ABBREVIATIONS.values() for w in normalize(v).split()}
    # Words some rule names as written are never misspellings of another ("removed", "message").
    table_words = known | literal_words | window_words | abbreviations
    corrector = Corrector(vocabulary, table_words)
    rewriter = Rewriter(keyword_words, vocabulary, filler, corrector.near)
    return Compiled(
        keywords=keywords,
        exact=exact,
        filler=frozenset(filler),
        core_vocabulary=frozenset(w for k in keywords for w in k.split()) | filler_words,
        keyword_words=frozenset(w for k in keywords for w in k.split()),
        sentence_words=frozenset(k for k, kw in keywords.items() if kw.kind in ("opt_out", "bare") and " " not in k),
        sentence_phrases=re.compile(" (?:" + "|".join(sorted(map(re.escape, multi))) + ") ") if multi else None,
        rules=rule_set,
        whole_phrases=whole_set,
        whole_vocabulary=None if whole_set.vocabulary is None else whole_set.vocabulary | filler_words,
        booking_words=frozenset(booking_words),
        booking_phrases=PatternSet(booking),
        triggers=triggers,
        trigger_words=frozenset(triggers),
        interesting=interesting,
        interesting_short=interesting_short,
        interesting_starts=re.compile(" (?:" + "|".join(sorted(map(re.escape, starts))) + ")") if starts else None,
        corrector=corrector,
        rewriter=rewriter,
        window=WINDOW,
        far=FarCorrector(far_vocabulary(tables), table_words, preferred=keyword_words),
        reach_words=rewriter.trigger_words | WINDOW.anchors,
        far_context=frozenset(
            w
            for name in ("REF", "CONTACT", "CONTACTME", "OBJ", "NEG", "NEG_ES", "SEND_ES", "NUM_ES", "LIST", "LIST_ES")
            for m in CLASSES[name]
            for w in normalize(m).split()
        ).union(keyword_words).difference(_EVERY_REPLY),
    )


def strip_filler(c: Compiled, tokens: list[str]) -> list[str]:
    """``tokens`` without repeats ("stop stop") and leading/trailing filler ("please stop now")."""
    if len(set(tokens)) < len(tokens):
        tokens = [t for i, t in enumerate(tokens) if i == 0 or t != tokens[i - 1]]
    filler = c.filler
    i, j = 0, len(tokens)
    while i < j:  # filler phrases are one to three words long; the longest match is stripped first
        if i + 2 < j and " ".join(tokens[i : i + 3]) in filler:
            i += 3
        elif i + 1 < j and f"{tokens[i]} {tokens[i + 1]}" in filler:
            i += 2
        elif tokens[i] in filler:
            i += 1
        else:
            break
    while i < j:
        if j - 3 >= i and " ".join(tokens[j - 3 : j]) in filler:
            j -= 3
        elif j - 2 >= i and f"{tokens[j - 2]} {tokens[j - 1]}" in filler:
            j -= 2
        elif tokens[j - 1] in filler:
            j -= 1
        else:
            break
    return tokens[i:j]


def in_booking_context(c: Compiled, tokset: set[str], padded: str) -> bool:
    """Booking context: a booking word, a number, or a booking construction ("stop by")."""
    return (
        not c.booking_words.isdisjoint(tokset)
        or _DIGIT.search(padded) is not None
        or c.booking_phrases.search(tokset, padded) is not None
    )

