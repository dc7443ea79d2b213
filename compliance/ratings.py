"""A reply to a review request, read as a rating: great, good, okay or could_be_better.

The request asks for 1 (great) to 4 (could be better). A reply is rated only when it says one
thing clearly, in English or Spanish:

- a lone digit 1-4, alone or leading the reply ("4", "4!", "#2", "3 - food was cold"), and no
  other digit anywhere;
- or words that all point to one rating ("great!", "could be better", "muy bien"), with emoji
  of the same leaning ("muy bien 👍"); or, with no such word, emoji that all point to one.

Anything else is left unrated for a person (``None``): two ratings ("1 or 2", "great but could
be better"), a negation ("not great", "no muy bien"), a number out of range ("5", "10/10"), or
any word of an opt-out ("stop", "parar", "unsubscribe"). The consent classifier runs before this
(worker/consent/inbound.py), so STOP always beats a rating; the last rule keeps a reply like
"4 stop" from being rated even when the classifier let it through.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["RATINGS", "parse_rating"]

RATINGS: Final = ("great", "good", "okay", "could_be_better")
_BY_DIGIT: Final = {"1": "great", "2": "good", "3": "okay", "4": "could_be_better"}

# Phrases first (longest match wins over the words inside them), accents stripped.
_PHRASES: Final[dict[str, str]] = {
    "could be better": "could_be_better",
    "could have been better": "could_be_better",
    "not so good": "could_be_better",
    "podria mejorar": "could_be_better",
    "puede mejorar": "could_be_better",
    "pudo ser mejor": "could_be_better",
    "podria ser mejor": "could_be_better",
    "muy bien": "great",
    "muy bueno": "great",
    "muy buena": "great",
    "mas o menos": "okay",
    "so so": "okay",
    "so-so": "okay",
}
_WORDS: Final[dict[str, str]] = {
    **dict.fromkeys(
        ("great", "excellent", "amazing", "awesome", "perfect", "fantastic", "outstanding", "wonderful", "loved",
         "excelente", "genial", "increible", "perfecto", "perfecta", "fantastico", "fantastica", "maravilloso",
         "encanto"), "great"),
    **dict.fromkeys(("good", "nice", "bien", "bueno", "buena", "buen"), "good"),
    **dict.fromkeys(("okay", "ok", "fine", "alright", "average", "decent", "regular", "normal"), "okay"),
    **dict.fromkeys(
        ("bad", "poor", "terrible", "awful", "disappointing", "disappointed", "horrible", "mal", "malo", "mala",
         "pesimo", "pesima", "decepcionado", "decepcionada"), "could_be_better"),
}
_EMOJI: Final[dict[str, str]] = {
    **dict.fromkeys("😍🤩🥰❤💯🔥👏🙌⭐🌟", "great"),
    **dict.fromkeys("😀😃😄😁😊🙂👍", "good"),
    **dict.fromkeys("😐😶🤷", "okay"),
    **dict.fromkeys("🙁☹😞😕😟😠😡👎🤢", "could_be_better"),
}
# Emoji back up words of the same leaning ("muy bien 👍"); a contrary one makes the reply unclear.
_POLARITY: Final = {"great": 1, "good": 1, "okay": 0, "could_be_better": -1}
_NEGATIONS: Final = frozenset({"not", "no", "never", "nunca", "isn't", "wasn't", "nada", "ni"})
_OPT_OUT: Final = frozenset({"stop", "stopall", "unsubscribe", "parar", "para", "alto", "cancel", "cancelar",
                             "end", "quit", "optout", "baja"})
_LEADING_DIGIT = re.compile(r"^\s*#?\s*([0-9]+)(?![0-9/.,])")
_TOKEN = re.compile(r"[a-z'\-]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _by_digit(text: str) -> str | None:
    digits = re.findall(r"\d+", text)
    match = _LEADING_DIGIT.match(text)
    if not match or len(digits) != 1:
        return None
    return _BY_DIGIT.get(match.group(1))


def parse_rating(reply: str) -> str | None:
    """The rating a reply gives (one of RATINGS), or None when it is not clearly one rating."""
    folded = _fold(reply)
    words = _TOKEN.findall(folded)
    if any(w in _OPT_OUT for w in words) or "opt out" in folded:
        return None
    found: set[str] = set()
    if re.search(r"\d", folded):
        rating = _by_digit(folded)
        if rating is None:
            return None  # numbers, but not one lone 1-4: a person reads it
        found.add(rating)
    rest = folded
    for phrase, rating in _PHRASES.items():
        at = rest.find(phrase)
        if at < 0:
            continue
        before = _TOKEN.findall(rest[:at])
        if before and before[-1] in _NEGATIONS:
            return None  # "no muy bien": a person reads it
        found.add(rating)
        rest = rest.replace(phrase, " ")
    rest_words = _TOKEN.findall(rest)
    for i, word in enumerate(rest_words):
        rating_word = _WORDS.get(word)
        if rating_word is None:
            continue
        if i > 0 and rest_words[i - 1] in _NEGATIONS:
            return None  # "not great", "no bueno": a person reads it
        found.add(rating_word)
    emoji = {_EMOJI[c] for c in reply if c in _EMOJI}
    if not found:
        found = emoji
    elif {_POLARITY[r] for r in emoji} - {_POLARITY[r] for r in found}:
        return None  # "great 👎": words and emoji disagree
    return found.pop() if len(found) == 1 else None
