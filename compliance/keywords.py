"""Classify an inbound message as opt-out, opt-in, help, nothing, or "a person should look".

The law (FCC 24-24, COMPLIANCE.md §3) says a consumer may revoke consent by any reasonable
means and that a reply holding "stop", "quit", "end", "revoke", "opt out", "cancel" or
"unsubscribe" is per se reasonable; other wording counts when a reasonable person would read
it as revocation. Twilio's own matcher is narrower: one whole-body keyword (COMPLIANCE.md §2).
So this classifier is wider than Twilio, and its one hard promise runs the other way too:
booking talk ("I need to cancel my booking", "can the chef stop by at 5") is never an opt-out.

Decision order (first rule that fires wins; reasons in brackets):

 1. Normalise (compliance/message_text.py). Nothing left -> NONE "empty" / "no_words"
    (emoji only), except a stop-sign emoji alone -> REVIEW "stop_emoji".
 2. Whole message is a keyword -> its intent, "exact_keyword" [Twilio parity: Twilio has
    already blocked the number for these, so the ledger must agree]. Opt-in words (START, YES,
    UNSTOP) count only here [issue: "yes, 6pm works" is not an opt-in].
 3. Whole message is a keyword plus polite filler ("stop please", "STOP STOP", "s t o p")
    -> opt-out / help, "keyword_with_filler" [FCC reasonable person; Twilio would not].
    Keywords with a booking meaning (CANCEL, END, CANCELAR) -> REVIEW here.
 4. Negated revocation ("don't unsubscribe me") -> REVIEW "negated" [the words are there,
    the meaning is the opposite]; in booking talk -> NONE "booking_context".
 5. A revocation phrase anywhere ("stop texting me", "no me envíen más mensajes") -> OPT_OUT
    "phrase" ("whole_phrase" for dismissals that count only as the whole message: "leave me
    alone", "wrong number"). Phrases marked ``veto`` drop to REVIEW "phrase_in_booking_context"
    when the message also holds booking context ("cancel the reminder for Friday's tasting").
 6. One sentence of the message is an opt-out keyword ("Thanks. STOP") -> OPT_OUT
    "sentence_keyword"; REVIEW if the message holds booking context ("Stop, I meant 7pm").
 7. A review phrase ("who is this", "not interested", "spam") -> REVIEW "review_phrase".
 8. An opt-out word inside a sentence (stop, cancel, end, quit, cancelar, parar) that none of
    the above explained: booking context -> NONE "booking_context"; otherwise REVIEW
    "keyword_in_text" [when in doubt a person decides; marketing pauses meanwhile].
 9. Otherwise NONE "no_match".
10. If the result of 3-9 is not an opt-out, misspelt words are corrected toward the tables'
    vocabulary (compliance/fuzzy_words.py) and 2-9 run again; an opt-out (or a review where
    there was none) then wins with rule "fuzzy_keyword" / "fuzzy_phrase" / "fuzzy_<rule>".

Booking context: a booking word (booking, party, chef, menu, reserva, ...), a number ("6pm",
"5"), or a booking construction ("stop by", "end of", "what time does it end").
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from dataclasses import dataclass

from compliance.fuzzy_words import Corrector
from compliance.keyword_patterns import CompiledPattern, PatternSet, compile_pattern
from compliance.keyword_tables import DEFAULT_TABLES, KeywordTables, Phrase
from compliance.message_text import normalize, sentences

__all__ = ["CLASSIFIER_VERSION", "Classification", "Intent", "KeywordTables", "classify"]

# Stored with every classification as evidence: bump whenever tables or rules change.
CLASSIFIER_VERSION = "2026.11.2"

_STOP_EMOJI = frozenset("🛑⛔🚫✋🤚🙅")
_FUZZY_MAX_TOKENS = 25  # misspelling correction only on SMS-sized messages
_CORE_MAX_TOKENS = 8  # keyword + filler messages are short
_DIGIT = re.compile(r"\d")


class Intent(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"
    REVIEW = "review"  # ambiguous: a person should look


@dataclass(frozen=True, slots=True)
class Classification:
    intent: Intent
    matched: str | None  # the keyword or phrase that matched, normalised
    language: str | None  # "en" | "es" | None
    rule: str  # which rule decided (see the module docstring)
    scope_all: bool = False  # STOPALL / "stop all" / "todos": revoke every scope and purpose
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


@dataclass(frozen=True, slots=True)
class _Keyword:
    kind: str  # "opt_out" | "bare" | "opt_in" | "help"
    word: str
    language: str
    scope_all: bool


@dataclass(frozen=True, slots=True)
class _PhraseHit:
    phrase: Phrase
    language: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    keywords: dict[str, _Keyword]
    exact: dict[str, Classification]
    filler: frozenset[str]
    sentence_words: frozenset[str]
    negations: PatternSet[str]
    phrases: PatternSet[_PhraseHit]
    whole_phrases: PatternSet[_PhraseHit]
    review_phrases: PatternSet[_PhraseHit]
    booking_words: frozenset[str]
    booking_phrases: PatternSet[str]
    triggers: dict[str, str]
    corrector: Corrector


_KIND_INTENT = {"opt_out": Intent.OPT_OUT, "bare": Intent.OPT_OUT, "opt_in": Intent.OPT_IN, "help": Intent.HELP}


@functools.lru_cache(maxsize=64)
def _compile(tables: KeywordTables) -> _Compiled:
    """Tables -> lookup structures; once per distinct tables value (the default, each station's)."""
    keywords: dict[str, _Keyword] = {}
    negations: list[tuple[CompiledPattern, str]] = []
    booking: list[tuple[CompiledPattern, str]] = []
    phrases: list[tuple[CompiledPattern, _PhraseHit]] = []
    wholes: list[tuple[CompiledPattern, _PhraseHit]] = []
    reviews: list[tuple[CompiledPattern, _PhraseHit]] = []
    filler: set[str] = set()
    booking_words: set[str] = set()
    triggers: dict[str, str] = {}
    vocabulary: set[str] = set()
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
                keywords.setdefault(normalize(word), _Keyword(kind, normalize(word, squeeze=False), lang, scope_all))
        filler.update(normalize(w) for w in table.filler)
        for p in table.phrases:
            target = reviews if p.intent == "review" else wholes if p.whole else phrases
            target.append((compile_pattern(p.pattern, len(target), whole=p.whole), _PhraseHit(p, lang)))
        for n in table.negations:
            negations.append((compile_pattern(n, len(negations)), lang))
        for b in table.booking_phrases:
            booking.append((compile_pattern(b, len(booking)), lang))
        booking_words.update(normalize(w) for w in table.booking_words)
        for t in table.triggers:
            triggers.setdefault(normalize(t), lang)
        vocabulary.update(normalize(w) for w in table.fuzzy)
    exact = {
        k: Classification(_KIND_INTENT[kw.kind], kw.word, kw.language, "exact_keyword", scope_all=kw.scope_all)
        for k, kw in keywords.items()
    }
    known = set(keywords) | filler | booking_words | set(triggers)
    known.update(w for k in keywords for w in k.split())
    return _Compiled(
        keywords=keywords,
        exact=exact,
        filler=frozenset(filler),
        sentence_words=frozenset(k.split()[0] for k, kw in keywords.items() if kw.kind in ("opt_out", "bare")),
        negations=PatternSet(negations),
        phrases=PatternSet(phrases),
        whole_phrases=PatternSet(wholes),
        review_phrases=PatternSet(reviews),
        booking_words=frozenset(booking_words),
        booking_phrases=PatternSet(booking),
        triggers=triggers,
        corrector=Corrector(vocabulary, known),
    )


def _core(c: _Compiled, tokens: list[str]) -> list[str]:
    """``tokens`` without repeats ("stop stop") and leading/trailing filler ("please stop now")."""
    if 2 <= len(tokens) <= 4:
        joined = "".join(tokens)  # "s t o p", "S.T.O.P", "sto p", "un subscribe"
        kw = c.keywords.get(joined)
        if kw is not None and kw.kind in ("opt_out", "bare"):
            return [joined]
    deduped = [t for i, t in enumerate(tokens) if i == 0 or t != tokens[i - 1]]
    i, j = 0, len(deduped)
    filler = c.filler
    changed = True
    while changed and i < j:
        changed = False
        for k in (3, 2, 1):
            if i + k <= j and " ".join(deduped[i : i + k]) in filler:
                i, changed = i + k, True
                break
            if i + k <= j and " ".join(deduped[j - k : j]) in filler:
                j, changed = j - k, True
                break
    return deduped[i:j]


class _Context:
    """Booking context of one message, computed at most once and only when a rule needs it."""

    __slots__ = ("_c", "_padded", "_tokens", "_value")

    def __init__(self, c: _Compiled, tokens: list[str], padded: str) -> None:
        self._c, self._tokens, self._padded = c, tokens, padded
        self._value: bool | None = None

    def __bool__(self) -> bool:
        if self._value is None:
            c = self._c
            self._value = (
                not c.booking_words.isdisjoint(self._tokens)
                or _DIGIT.search(self._padded) is not None
                or c.booking_phrases.search(self._tokens, self._padded) is not None
            )
        return self._value


def _classify_tokens(c: _Compiled, tokens: list[str], text: str | None) -> Classification:
    """Rules 3-9 of the module docstring on a normalised, non-empty message."""
    key: str | None = None
    if len(tokens) <= _CORE_MAX_TOKENS:
        core = _core(c, tokens)
        key = " ".join(core)
        kw = c.keywords.get(key) if core != tokens else None
        if kw is not None:
            if kw.kind == "opt_in":  # "yes please", "yes yes": opt-in is only ever the bare word
                return Classification(Intent.NONE, kw.word, kw.language, "opt_in_not_exact")
            intent = Intent.REVIEW if kw.kind == "bare" else _KIND_INTENT[kw.kind]
            return Classification(intent, kw.word, kw.language, "keyword_with_filler", scope_all=kw.scope_all)
    padded = " " + " ".join(tokens) + " "
    booking = _Context(c, tokens, padded)

    negated = c.negations.search(tokens, padded)
    if negated is not None:
        m, lang = negated
        if booking:
            return Classification(Intent.NONE, m.group().strip(), lang, "booking_context")
        return Classification(Intent.REVIEW, m.group().strip(), lang, "negated")

    phrase = c.phrases.search(tokens, padded)
    if phrase is None and key:
        phrase = c.whole_phrases.search(key.split(" "), " " + key + " ")
    if phrase is not None:
        m, hit = phrase
        if hit.phrase.veto and booking:
            return Classification(Intent.REVIEW, m.group().strip(), hit.language, "phrase_in_booking_context")
        rule = "whole_phrase" if hit.phrase.whole else "phrase"
        return Classification(Intent.OPT_OUT, m.group().strip(), hit.language, rule, scope_all=hit.phrase.scope_all)

    bare_sentence: _Keyword | None = None
    if text is not None and not c.sentence_words.isdisjoint(tokens):
        for sentence in sentences(text):
            kw = c.keywords.get(" ".join(_core(c, sentence.split(" "))))
            if kw is None or kw.kind not in ("opt_out", "bare"):
                continue
            if kw.kind == "opt_out":
                intent = Intent.REVIEW if booking else Intent.OPT_OUT
                return Classification(intent, kw.word, kw.language, "sentence_keyword", scope_all=kw.scope_all)
            bare_sentence = bare_sentence or kw

    review = c.review_phrases.search(tokens, padded)
    if review is not None:
        m, hit = review
        if hit.phrase.veto and booking:
            return Classification(Intent.NONE, m.group().strip(), hit.language, "booking_context")
        return Classification(Intent.REVIEW, m.group().strip(), hit.language, "review_phrase")

    for tok in tokens:
        trigger_lang = c.triggers.get(tok)
        if trigger_lang is not None:
            if booking:
                return Classification(Intent.NONE, tok, trigger_lang, "booking_context")
            return Classification(Intent.REVIEW, tok, trigger_lang, "keyword_in_text")
    if bare_sentence is not None and not booking:
        return Classification(Intent.REVIEW, bare_sentence.word, bare_sentence.language, "sentence_keyword")
    return Classification(Intent.NONE, None, None, "no_match")


_FUZZY_RULES = {"exact_keyword": "fuzzy_keyword", "keyword_with_filler": "fuzzy_keyword", "phrase": "fuzzy_phrase"}


def classify(text: str, *, extra: KeywordTables | None = None) -> Classification:
    """Classify one inbound message body (rules in the module docstring). Never raises on a str.

    Args:
        text: the message body as received.
        extra: a station's additions to the default tables (merged, not replacing them).
    """
    c = _DEFAULT if extra is None else _compile(DEFAULT_TABLES.merged(extra))
    norm = normalize(text)
    if not norm:
        if not text.strip():
            return Classification(Intent.NONE, None, None, "empty")
        if any(ch in _STOP_EMOJI for ch in text):
            return Classification(Intent.REVIEW, None, None, "stop_emoji")
        return Classification(Intent.NONE, None, None, "no_words")
    hit = c.exact.get(norm)
    if hit is not None:
        return hit
    tokens = norm.split(" ")
    result = _classify_tokens(c, tokens, text)
    if result.intent is Intent.OPT_OUT or len(tokens) > _FUZZY_MAX_TOKENS:
        return result
    fixed = c.corrector.correct(tokens)
    if fixed is None:
        return result
    again = c.exact.get(" ".join(fixed)) or _classify_tokens(c, fixed, None)
    if again.intent is Intent.OPT_OUT or (again.intent is Intent.REVIEW and result.intent is Intent.NONE):
        rule = _FUZZY_RULES.get(again.rule, "fuzzy_" + again.rule)
        return dataclasses.replace(again, rule=rule)
    return result


_DEFAULT = _compile(DEFAULT_TABLES)
