"""Classify an inbound message as opt-out, opt-in, help, nothing, or "a person should look".

The law (FCC 24-24; docs/compliance.md#revocation-by-any-reasonable-means) says a consumer may
revoke consent by any reasonable means and that a reply holding "stop", "quit", "end",
"revoke", "opt out", "cancel" or "unsubscribe" is per se reasonable; other wording counts when
a reasonable person would read it as revocation. Twilio's own matcher is narrower: one
whole-body keyword (docs/compliance.md#twilio-keyword-matching).
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
    the meaning is the opposite]; in booking talk -> NONE "booking_context". A request about
    someone else's phone ("stop texting my wife") -> REVIEW "negated" even in booking talk.
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

Speed (>= 50k messages/s on one core, bench/keywords.py): every pattern is tried only when
the message holds its rarest required word (compliance/keyword_patterns.py), and a message
holding none of the words any rule needs returns NONE after one set test. No result cache.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from dataclasses import dataclass

from compliance.fuzzy_words import Corrector
from compliance.keyword_patterns import CompiledPattern, PatternSet, compile_pattern, word_score
from compliance.keyword_tables import DEFAULT_TABLES, KeywordTables, Phrase
from compliance.message_text import fold, normalize, sentences

__all__ = ["CLASSIFIER_VERSION", "Classification", "Intent", "KeywordTables", "classify"]

# Stored with every classification as evidence: bump whenever tables or rules change.
CLASSIFIER_VERSION = "2026.11.3"

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


_NO_MATCH = Classification(Intent.NONE, None, None, "no_match")  # the common result, allocated once


@dataclass(frozen=True, slots=True)
class _Keyword:
    kind: str  # "opt_out" | "bare" | "opt_in" | "help"
    word: str
    language: str
    scope_all: bool


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str  # "negation" | "phrase" | "review": the order in which they are tried
    phrase: Phrase
    language: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    keywords: dict[str, _Keyword]
    exact: dict[str, Classification]
    filler: frozenset[str]
    # A message can only be "keyword + filler" if all its words are keyword or filler words.
    core_vocabulary: frozenset[str]
    keyword_words: frozenset[str]
    sentence_words: frozenset[str]  # one-word opt-out keywords
    sentence_phrases: re.Pattern[str] | None  # several-word ones ("no more", "opt out")
    rules: PatternSet[_Rule]  # negations, then phrases, then review phrases (rules 4, 5, 7)
    whole_phrases: PatternSet[_Rule]
    whole_vocabulary: frozenset[str] | None
    booking_words: frozenset[str]
    booking_phrases: PatternSet[str]
    triggers: dict[str, str]
    trigger_words: frozenset[str]
    # Fast path: a message holding none of these words (and no word start below) can only be
    # NONE by rules 3-9, since every one of them needs one of its words.
    interesting: frozenset[str] | None  # None: some pattern has no anchor, no fast path
    interesting_short: frozenset[str] | None  # the same for messages of _CORE_MAX_TOKENS words or fewer
    interesting_starts: re.Pattern[str] | None
    corrector: Corrector


_KIND_INTENT = {"opt_out": Intent.OPT_OUT, "bare": Intent.OPT_OUT, "opt_in": Intent.OPT_IN, "help": Intent.HELP}


@functools.lru_cache(maxsize=64)
def _compile(tables: KeywordTables) -> _Compiled:
    """Tables -> lookup structures; once per distinct tables value (the default, each station's)."""
    keywords: dict[str, _Keyword] = {}
    rules: dict[str, list[tuple[CompiledPattern, _Rule]]] = {"negation": [], "phrase": [], "review": []}
    wholes: list[tuple[CompiledPattern, _Rule]] = []
    booking: list[tuple[CompiledPattern, str]] = []
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
        for n in table.negations:
            negation = n if isinstance(n, Phrase) else Phrase(n, intent="review", veto=True)
            rules["negation"].append((compile_pattern(negation.pattern), _Rule("negation", negation, lang)))
        for p in table.phrases:
            rule = _Rule("review" if p.intent == "review" else "phrase", p, lang)
            if p.whole and p.intent != "review":
                wholes.append((compile_pattern(p.pattern, whole=True), rule))
            else:
                rules[rule.kind].append((compile_pattern(p.pattern), rule))
        booking.extend((compile_pattern(b), lang) for b in table.booking_phrases)
        booking_words.update(normalize(w) for w in table.booking_words)
        for t in table.triggers:
            triggers.setdefault(normalize(t), lang)
        vocabulary.update(normalize(w) for w in table.fuzzy)
    exact = {
        k: Classification(_KIND_INTENT[kw.kind], kw.word, kw.language, "exact_keyword", scope_all=kw.scope_all)
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
    return _Compiled(
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
        corrector=Corrector(vocabulary, known),
    )


def _core(c: _Compiled, tokens: list[str]) -> list[str]:
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


def _booking(c: _Compiled, tokset: set[str], padded: str) -> bool:
    """Booking context: a booking word, a number, or a booking construction ("stop by")."""
    return (
        not c.booking_words.isdisjoint(tokset)
        or _DIGIT.search(padded) is not None
        or c.booking_phrases.search(tokset, padded) is not None
    )


def _classify_tokens(
    c: _Compiled, tokens: list[str], tokset: set[str], text: str | None, folded: str | None
) -> Classification:
    """Rules 3-9 of the module docstring on a normalised, non-empty message.

    ``text`` is the original (None: skip the sentence rule); ``folded`` its fold() with sentence
    breaks when already computed (ASCII), else None.
    """
    n = len(tokens)
    if 2 <= n <= 4:
        joined = c.keywords.get("".join(tokens))  # "s t o p", "S.T.O.P", "sto p", "un subscribe"
        if joined is not None and joined.kind in ("opt_out", "bare"):
            return Classification(
                Intent.OPT_OUT, joined.word, joined.language, "keyword_with_filler", scope_all=joined.scope_all
            )
    interesting = c.interesting_short if n <= _CORE_MAX_TOKENS else c.interesting
    if interesting is not None and interesting.isdisjoint(tokset):
        starts = c.interesting_starts
        if starts is None or starts.search(" " + " ".join(tokens)) is None:
            return _NO_MATCH
    if n <= _CORE_MAX_TOKENS and tokset <= c.core_vocabulary and not c.keyword_words.isdisjoint(tokset):
        kw = c.keywords.get(" ".join(_core(c, tokens)))
        if kw is not None:
            if kw.kind == "opt_in":  # "yes please", "yes yes": opt-in is only ever the bare word
                return Classification(Intent.NONE, kw.word, kw.language, "opt_in_not_exact")
            intent = Intent.REVIEW if kw.kind == "bare" else _KIND_INTENT[kw.kind]
            return Classification(intent, kw.word, kw.language, "keyword_with_filler", scope_all=kw.scope_all)
    padded = " " + " ".join(tokens) + " "

    found = c.rules.search(tokset, padded)
    if (found is None or found[1].kind == "review") and n <= _CORE_MAX_TOKENS:
        vocab = c.whole_vocabulary
        if (tokset <= vocab) if vocab is not None else c.whole_phrases.may_match(tokset, padded):
            key = " ".join(_core(c, tokens))
            found = c.whole_phrases.search(set(key.split(" ")), " " + key + " ") or found
    review: tuple[re.Match[str], _Rule] | None = None
    if found is not None:
        m, rule = found
        matched = m.group().strip()
        if rule.kind == "negation":
            if rule.phrase.veto and _booking(c, tokset, padded):
                return Classification(Intent.NONE, matched, rule.language, "booking_context")
            return Classification(Intent.REVIEW, matched, rule.language, "negated")
        if rule.kind == "phrase":
            if rule.phrase.veto and _booking(c, tokset, padded):
                return Classification(Intent.REVIEW, matched, rule.language, "phrase_in_booking_context")
            return Classification(
                Intent.OPT_OUT, matched, rule.language, "whole_phrase" if rule.phrase.whole else "phrase",
                scope_all=rule.phrase.scope_all,
            )
        review = found

    bare_sentence: _Keyword | None = None
    multi = c.sentence_phrases
    if text is not None and (not c.sentence_words.isdisjoint(tokset) or (multi is not None and multi.search(padded))):
        for sentence in sentences(folded if folded is not None else fold(text)):
            kw = c.keywords.get(sentence)
            if kw is None:
                words = sentence.split(" ")
                if len(words) > _CORE_MAX_TOKENS or not c.core_vocabulary.issuperset(words):
                    continue  # a word that is neither keyword nor filler: not "keyword + filler"
                kw = c.keywords.get(" ".join(_core(c, words)))
            if kw is None or kw.kind not in ("opt_out", "bare"):
                continue
            if kw.kind == "opt_out":
                intent = Intent.REVIEW if _booking(c, tokset, padded) else Intent.OPT_OUT
                return Classification(intent, kw.word, kw.language, "sentence_keyword", scope_all=kw.scope_all)
            bare_sentence = bare_sentence or kw

    if review is not None:
        m, rule = review
        if rule.phrase.veto and _booking(c, tokset, padded):
            return Classification(Intent.NONE, m.group().strip(), rule.language, "booking_context")
        return Classification(Intent.REVIEW, m.group().strip(), rule.language, "review_phrase")

    if not c.trigger_words.isdisjoint(tokset):
        tok = next(t for t in tokens if t in c.trigger_words)  # the first one, in message order
        if _booking(c, tokset, padded):
            return Classification(Intent.NONE, tok, c.triggers[tok], "booking_context")
        return Classification(Intent.REVIEW, tok, c.triggers[tok], "keyword_in_text")
    if bare_sentence is not None and not _booking(c, tokset, padded):
        return Classification(Intent.REVIEW, bare_sentence.word, bare_sentence.language, "sentence_keyword")
    return _NO_MATCH


_FUZZY_RULES = {"exact_keyword": "fuzzy_keyword", "keyword_with_filler": "fuzzy_keyword", "phrase": "fuzzy_phrase"}


def classify(text: str, *, extra: KeywordTables | None = None) -> Classification:
    """Classify one inbound message body (rules in the module docstring). Never raises on a str.

    Args:
        text: the message body as received.
        extra: a station's additions to the default tables (merged, not replacing them).
    """
    c = _DEFAULT if extra is None else _with_extra(extra)
    ascii_text = text.isascii()
    folded = fold(text, breaks=ascii_text)  # ASCII gets sentence breaks for free; others on demand
    norm = " ".join(folded.split())
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
    tokset = set(tokens)
    result = _classify_tokens(c, tokens, tokset, text, folded if ascii_text else None)
    if result.intent is Intent.OPT_OUT or len(tokens) > _FUZZY_MAX_TOKENS:
        return result
    fixed = c.corrector.correct(tokens, tokset, " " + norm + " ")
    if fixed is None:
        return result
    again = c.exact.get(" ".join(fixed)) or _classify_tokens(c, fixed, set(fixed), None, None)
    if again.intent is Intent.OPT_OUT or (again.intent is Intent.REVIEW and result.intent is Intent.NONE):
        return dataclasses.replace(again, rule=_FUZZY_RULES.get(again.rule, "fuzzy_" + again.rule))
    return result


@functools.lru_cache(maxsize=64)
def _with_extra(extra: KeywordTables) -> _Compiled:
    """The defaults merged with a station's additions, compiled; keyed by the (small) additions
    so a call does not hash the whole merged tables."""
    return _compile(DEFAULT_TABLES.merged(extra))


_DEFAULT = _compile(DEFAULT_TABLES)
