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
import functools
import re

from compliance.keyword_compile import (
    CORE_MAX_TOKENS,
    KIND_INTENT,
    Compiled,
    Keyword,
    Rule,
    compile_tables,
    in_booking_context,
    strip_filler,
)
from compliance.keyword_result import CLASSIFIER_VERSION, NO_MATCH, Classification, Intent
from compliance.keyword_tables import DEFAULT_TABLES, KeywordTables
from compliance.message_text import fold, sentences

__all__ = ["CLASSIFIER_VERSION", "Classification", "Intent", "KeywordTables", "classify"]

_STOP_EMOJI = frozenset("🛑⛔🚫✋🤚🙅")
_FUZZY_MAX_TOKENS = 25  # misspelling correction only on SMS-sized messages


def _classify_tokens(
    c: Compiled, tokens: list[str], tokset: set[str], text: str | None, folded: str | None
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
    interesting = c.interesting_short if n <= CORE_MAX_TOKENS else c.interesting
    if interesting is not None and interesting.isdisjoint(tokset):
        starts = c.interesting_starts
        if starts is None or starts.search(" " + " ".join(tokens)) is None:
            return NO_MATCH
    if n <= CORE_MAX_TOKENS and tokset <= c.core_vocabulary and not c.keyword_words.isdisjoint(tokset):
        kw = c.keywords.get(" ".join(strip_filler(c, tokens)))
        if kw is not None:
            if kw.kind == "opt_in":  # "yes please", "yes yes": opt-in is only ever the bare word
                return Classification(Intent.NONE, kw.word, kw.language, "opt_in_not_exact")
            intent = Intent.REVIEW if kw.kind == "bare" else KIND_INTENT[kw.kind]
            return Classification(intent, kw.word, kw.language, "keyword_with_filler", scope_all=kw.scope_all)
    padded = " " + " ".join(tokens) + " "

    found = c.rules.search(tokset, padded)
    if (found is None or found[1].kind == "review") and n <= CORE_MAX_TOKENS:
        vocab = c.whole_vocabulary
        if (tokset <= vocab) if vocab is not None else c.whole_phrases.may_match(tokset, padded):
            key = " ".join(strip_filler(c, tokens))
            found = c.whole_phrases.search(set(key.split(" ")), " " + key + " ") or found
    review: tuple[re.Match[str], Rule] | None = None
    if found is not None:
        m, rule = found
        matched = m.group().strip()
        if rule.kind == "negation":
            if rule.phrase.veto and in_booking_context(c, tokset, padded):
                return Classification(Intent.NONE, matched, rule.language, "booking_context")
            return Classification(Intent.REVIEW, matched, rule.language, "negated")
        if rule.kind == "phrase":
            if rule.phrase.veto and in_booking_context(c, tokset, padded):
                return Classification(Intent.REVIEW, matched, rule.language, "phrase_in_booking_context")
            return Classification(
                Intent.OPT_OUT, matched, rule.language, "whole_phrase" if rule.phrase.whole else "phrase",
                scope_all=rule.phrase.scope_all,
            )
        review = found

    bare_sentence: Keyword | None = None
    multi = c.sentence_phrases
    if text is not None and (not c.sentence_words.isdisjoint(tokset) or (multi is not None and multi.search(padded))):
        for sentence in sentences(folded if folded is not None else fold(text)):
            kw = c.keywords.get(sentence)
            if kw is None:
                words = sentence.split(" ")
                if len(words) > CORE_MAX_TOKENS or not c.core_vocabulary.issuperset(words):
                    continue  # a word that is neither keyword nor filler: not "keyword + filler"
                kw = c.keywords.get(" ".join(strip_filler(c, words)))
            if kw is None or kw.kind not in ("opt_out", "bare"):
                continue
            if kw.kind == "opt_out":
                intent = Intent.REVIEW if in_booking_context(c, tokset, padded) else Intent.OPT_OUT
                return Classification(intent, kw.word, kw.language, "sentence_keyword", scope_all=kw.scope_all)
            bare_sentence = bare_sentence or kw

    if review is not None:
        m, rule = review
        if rule.phrase.veto and in_booking_context(c, tokset, padded):
            return Classification(Intent.NONE, m.group().strip(), rule.language, "booking_context")
        return Classification(Intent.REVIEW, m.group().strip(), rule.language, "review_phrase")

    if not c.trigger_words.isdisjoint(tokset):
        tok = next(t for t in tokens if t in c.trigger_words)  # the first one, in message order
        if in_booking_context(c, tokset, padded):
            return Classification(Intent.NONE, tok, c.triggers[tok], "booking_context")
        return Classification(Intent.REVIEW, tok, c.triggers[tok], "keyword_in_text")
    if bare_sentence is not None and not in_booking_context(c, tokset, padded):
        return Classification(Intent.REVIEW, bare_sentence.word, bare_sentence.language, "sentence_keyword")
    return NO_MATCH


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
def _with_extra(extra: KeywordTables) -> Compiled:
    """The defaults merged with a station's additions, compiled; keyed by the (small) additions
    so a call does not hash the whole merged tables."""
    return compile_tables(DEFAULT_TABLES.merged(extra))


_DEFAULT = compile_tables(DEFAULT_TABLES)
