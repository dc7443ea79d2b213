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

Rules 11-13 (issue 16 point 6, issue 14 point 4) widen the reach when 2-10 found nothing
stronger than review (an opt-in, a HELP or a "negated" verdict is final); each may raise
none to review or review to opt-out, never the reverse:

11. Texting spellings rewritten to table words (compliance/keyword_rewrite.py: "u" -> "you",
    "w" -> "with", "msgs", "#" -> "number", "st0p", "s t o p pls", "opt ou"), then 2-10 again
    -> "expanded_keyword" / "expanded_<rule>", at full strength [a spelling, not a guess].
12. Window rules (compliance/keyword_window.py, tables in keyword_window_tables.py): classes
    of words in order within a few words of each other, per sentence ("no more of this stuff
    pls", "this # doesnt want ur msgs") -> "window_<name>"; in booking context an opt-out
    drops to review ("window_<name>_booking") and a review to none, except the suspicion rules
    ("how'd u get my number") [a booking does not explain them].
13. Short replies (up to five words; four or five only with a word about texts, the sender
    or a negation) still at none: words two edits from, or sounding like, a vocabulary word
    (compliance/fuzzy_sounds.py: "srpo", "stahp", "no me embien mensajes") -> 2-9 and the
    window rules again -> at most REVIEW, "fuzzy_far_<rule>"; then real words one edit from
    it ("leve me alone") -> REVIEW "real_word_<rule>", only when that completes a phrase.

Booking context: a booking word (booking, party, chef, menu, reserva, ...), a number ("6pm",
"5"), or a booking construction ("stop by", "end of", "what time does it end").

Speed (>= 50k messages/s on one core, bench/keywords.py): every pattern is tried only when
the message holds its rarest required word (compliance/keyword_patterns.py), and a message
holding none of the words any rule needs returns NONE after one set test; rules 11-13 start
with set tests too. No result cache (the far corrector remembers answers per word).
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
from compliance.keyword_window import WindowHit
from compliance.message_text import fold, normalize, sentences

__all__ = ["CLASSIFIER_VERSION", "Classification", "Intent", "KeywordTables", "classify"]

_STOP_EMOJI = frozenset("🛑⛔🚫✋🤚🙅")
_FUZZY_MAX_TOKENS = 25  # misspelling correction only on SMS-sized messages
_WINDOW_MAX_TOKENS = 80  # the window rules read texts of a few segments, not pasted documents
_FAR_MAX_TOKENS = 5  # two-edit and sound-alike correction only on short replies
_HASH_WORD = re.compile(r"#(?![\s#]*\d)")  # "remove my #" (a word), not "order #12" (a number sign)


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
_EXPANDED_RULES = {"exact_keyword": "expanded_keyword", "keyword_with_filler": "expanded_keyword"}
_PHRASE_RULES = frozenset({"phrase", "whole_phrase"})


def _rules_on(c: Compiled, words: list[str]) -> Classification:
    """Rules 2-9 on words that are not the message as typed (no sentence breaks: one sentence)."""
    return c.exact.get(" ".join(words)) or _classify_tokens(c, words, set(words), None, None)


def _upgrade(best: Classification, found: Classification, rule: str) -> Classification:
    """``found`` (under ``rule``) if it says more than ``best``: an opt-out, or a review over nothing."""
    if found.intent is Intent.OPT_OUT or (found.intent is Intent.REVIEW and best.intent is Intent.NONE):
        return dataclasses.replace(found, rule=rule)
    return best


def _window_result(c: Compiled, hit: WindowHit, words: list[str]) -> Classification:
    """A window rule's verdict; booking context lowers an opt-out to review and a review to none."""
    rule = hit.rule
    booked = rule.veto and in_booking_context(c, set(words), " " + " ".join(words) + " ")
    if rule.intent == "opt_out":
        name = f"window_{rule.name}_booking" if booked else f"window_{rule.name}"
        return Classification(Intent.REVIEW if booked else Intent.OPT_OUT, hit.matched, rule.language, name)
    if booked:
        return Classification(Intent.NONE, hit.matched, rule.language, "booking_context")
    return Classification(Intent.REVIEW, hit.matched, rule.language, f"window_{rule.name}")


def _reading(c: Compiled, words: list[str], *, short: bool) -> list[str]:
    """``words`` respelled (compliance/keyword_rewrite.py) and with distance-1 misspellings fixed."""
    words = c.rewriter.rewrite(words, short=short) or words
    return c.corrector.correct(words, set(words), " " + " ".join(words) + " ") or words


def _reach(
    c: Compiled,
    text: str,
    folded: str | None,
    tokens: list[str],
    tokset: set[str],
    padded: str,
    fixed: list[str] | None,
    best: Classification,
) -> Classification:
    """Rules 11-13 of the module docstring, for a message rules 2-10 found no opt-out in.

    ``padded`` is " " + the normalised message + " "; ``fixed`` the tokens with distance-1
    misspellings fixed by rule 10 (None: there were none).
    """
    short = len(tokens) <= _FAR_MAX_TOKENS
    words = fixed or tokens
    hash_sign = "#" in text and _HASH_WORD.search(text) is not None  # normalising drops the sign
    rewrite = hash_sign or c.rewriter.needs(tokens, tokset, padded, short=short)
    far_reach = short and best.intent is Intent.NONE and (len(tokens) <= 3 or not c.far_context.isdisjoint(tokset))
    if not rewrite and not far_reach and fixed is None and c.window.anchors.isdisjoint(tokset):
        return best  # no shorthand, look-alike digit, spelled-out letters or window word: nothing to reach
    if rewrite:
        source = normalize(text.replace("#", " number ")).split(" ") if hash_sign else tokens
        words = _reading(c, source, short=short)
        if words != tokens:
            found = _rules_on(c, words)
            best = _upgrade(best, found, _EXPANDED_RULES.get(found.rule, "expanded_" + found.rule))
            if best.intent is Intent.OPT_OUT:
                return best
    candidates = c.window.candidates(tokset.union(words))
    if candidates:
        if hash_sign:
            folded = fold(text.replace("#", " number "))
        if folded is not None and "\n" not in folded.strip():
            parts = [words]  # one sentence: its reading is the message's
        else:
            parts = [_reading(c, s.split(" "), short=False) for s in sentences(folded or fold(text))]
        hit = c.window.match(parts, candidates)
        if hit is not None:
            found = _window_result(c, hit, words)
            best = _upgrade(best, found, found.rule)
            if best.intent is Intent.OPT_OUT:
                return best
    if not far_reach or best.intent is not Intent.NONE:
        return best
    # Far misspellings and real-word typos: never more than review (a person decides).
    far = c.far.correct(words)
    if far is not None:
        found = _far_rules(c, far)
        if found.intent in (Intent.OPT_OUT, Intent.REVIEW):
            return dataclasses.replace(found, intent=Intent.REVIEW, rule="fuzzy_far_" + found.rule)
    real = c.corrector.correct_real_words(far or words)
    if real is not None:
        found = _far_rules(c, real)
        if found.intent is Intent.OPT_OUT and (found.rule in _PHRASE_RULES or found.rule.startswith("window_")):
            return dataclasses.replace(found, intent=Intent.REVIEW, rule="real_word_" + found.rule)
    return best


def _far_rules(c: Compiled, words: list[str]) -> Classification:
    """Rules 2-9, then the window rules, on a corrected short message (one sentence)."""
    found = _rules_on(c, words)
    if found.intent is Intent.NONE:
        candidates = c.window.candidates(set(words))
        hit = c.window.match([words], candidates) if candidates else None
        if hit is not None:
            found = _window_result(c, hit, words)
    return found


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
    if result.intent is Intent.OPT_OUT:
        return result
    fixed = None
    padded = " " + norm + " "
    if len(tokens) <= _FUZZY_MAX_TOKENS:
        fixed = c.corrector.correct(tokens, tokset, padded)
        if fixed is not None:
            again = _rules_on(c, fixed)
            result = _upgrade(result, again, _FUZZY_RULES.get(again.rule, "fuzzy_" + again.rule))
    intent = result.intent
    if (
        (intent is not Intent.NONE and intent is not Intent.REVIEW)
        or result.rule.endswith("negated")
        or len(tokens) > _WINDOW_MAX_TOKENS
    ):
        return result
    return _reach(c, text, folded if ascii_text else None, tokens, tokset, padded, fixed, result)


@functools.lru_cache(maxsize=64)
def _with_extra(extra: KeywordTables) -> Compiled:
    """The defaults merged with a station's additions, compiled; keyed by the (small) additions
    so a call does not hash the whole merged tables."""
    return compile_tables(DEFAULT_TABLES.merged(extra))


_DEFAULT = compile_tables(DEFAULT_TABLES)
