"""Replies read as ratings: English and Spanish, digits, words and emoji; anything unclear is left for a person."""

from __future__ import annotations

import pytest

from compliance.ratings import parse_rating

CLEAR = [
    # digits
    ("1", "great"), ("2", "good"), ("3", "okay"), ("4", "could_be_better"), ("4!", "could_be_better"),
    ("#2", "good"), (" 3 ", "okay"), ("3 - the food was cold", "okay"), ("1 thank you!!", "great"),
    # English words and phrases
    ("Great!", "great"), ("It was excellent", "great"), ("loved it", "great"), ("good", "good"),
    ("pretty nice", "good"), ("ok", "okay"), ("It was fine", "okay"), ("so-so", "okay"),
    ("could be better", "could_be_better"), ("Could have been better tbh", "could_be_better"),
    ("bad", "could_be_better"), ("terrible service", "could_be_better"),
    # Spanish (accents or not)
    ("Excelente", "great"), ("muy bien", "great"), ("¡Muy buena!", "great"), ("increíble", "great"),
    ("bien", "good"), ("bueno", "good"), ("regular", "okay"), ("más o menos", "okay"), ("mas o menos", "okay"),
    ("podría mejorar", "could_be_better"), ("puede mejorar", "could_be_better"), ("malo", "could_be_better"),
    ("pésimo", "could_be_better"),
    # emoji, alone or backing words of the same leaning
    ("😍", "great"), ("🔥🔥", "great"), ("👍", "good"), ("🙂", "good"), ("😐", "okay"), ("👎", "could_be_better"),
    ("😡", "could_be_better"), ("muy bien 👍", "great"), ("great 👍", "great"), ("malo 👎", "could_be_better"),
]

UNCLEAR = [
    "1 or 2", "2 3", "5", "0", "10/10", "4.5", "great but could be better", "not great", "no muy bien",
    "not bad", "great 👎", "👍👎", "hola", "what time is the chef coming?", "", "   ",
    # an opt-out word is never a rating, even when the consent classifier let it through
    "4 stop", "STOP", "1 unsubscribe", "bien, parar por favor", "great, opt out",
]


@pytest.mark.parametrize(("reply", "rating"), CLEAR)
def test_a_clear_reply_gives_its_rating(reply: str, rating: str) -> None:
    """A reply that says one thing, in English or Spanish, with a digit, words or emoji, is that rating."""
    assert parse_rating(reply) == rating


@pytest.mark.parametrize("reply", UNCLEAR)
def test_an_unclear_reply_is_left_for_a_person(reply: str) -> None:
    """Two ratings, a negation, a number out of range, chatter or an opt-out word: no rating."""
    assert parse_rating(reply) is None
