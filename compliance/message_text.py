"""Message text in the one form the keyword tables are matched against.

``normalize`` maps every spelling a reasonable reader would take for the same words onto one
string of lower-case ASCII-ish words separated by single spaces:

- Unicode compatibility forms folded (NFKD: fullwidth ＳＴＯＰ, ligatures, superscripts) and
  case folded; accents and other combining marks dropped ("envíen" -> "envien"), so a
  Spanish message typed without accents matches the same table entry.
- Invisible format characters (zero-width space/joiner, bidi marks, BOM, soft hyphen) deleted,
  so "st\u200bop" is "stop"; apostrophes deleted so "don't" and "dont" are one word.
- Cyrillic and Greek letters that look like Latin ones mapped to them ("ЅТОР" -> "stop"):
  NFKC does not fold them, and a homoglyph STOP must not slip past the check.
- Punctuation, symbols and emoji become word breaks; whitespace is collapsed.
- Runs of a repeated letter collapse to one ("stoooop", "stopp" -> "stop"). The tables are
  normalised the same way, so doubled letters in real words ("all" -> "al") still match.

The ASCII fast path gives the same result as the general path for ASCII input (tested), and
exists because most SMS bodies are ASCII and the classifier must run at >= 50k messages/s.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["fold", "normalize", "sentences"]

_CONFUSABLES = {
    # Cyrillic (after case folding)
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ү": "y", "ӏ": "l",
    # Greek (after case folding)
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ζ": "z",
}


def _invisible_class() -> str:
    """A regex character class of every combining mark, format character and apostrophe.

    str.translate with a dict is slow on non-ASCII text (every character missing from the dict
    costs a raised and cleared KeyError), so deletions are one C-level regex substitution.
    Only the Basic Multilingual Plane is listed character by character (sre matches such a
    class with a bitmap); beyond it only the tag characters and variation selectors
    supplement, as two ranges (a long list of astral ranges would be scanned linearly).
    """
    points = sorted(
        {ord(ch) for ch in "'`´‘’ʼʹ′"}
        | {cp for cp in range(0x10000) if unicodedata.category(chr(cp)) in ("Mn", "Me", "Cf")}
    )
    ranges: list[tuple[int, int]] = []
    for cp in points:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    parts = (re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return "[" + "".join(parts) + "\U000e0000-\U000e007f\U000e0100-\U000e01ef]+"


_INVISIBLE = re.compile(_invisible_class())
_CONFUSABLE = re.compile("[" + "".join(_CONFUSABLES) + "]")
# ASCII bodies (most SMS) go through bytes.translate: a 256-byte table, an order of magnitude
# faster than str.translate's per-character dict lookups.
_ASCII = bytes(
    (c + 32 if 65 <= c <= 90 else c if chr(c).isalnum() and c < 128 else 32) for c in range(256)
)
_ASCII_DELETE = b"'`"
# The same for sentences: punctuation that ends or separates sentences becomes a newline.
_ASCII_SENTENCES = bytes(
    (10 if c < 128 and chr(c) in ".,!?;:()[]{}<>\"*/\\|~^=+#@&%$\n\r" else b) for c, b in enumerate(_ASCII)
)
# Delete a letter when the next one is the same: "stooop" -> "stop". A literal "" replacement
# keeps re.sub on its C fast path (a "\\1" template is expanded in Python for every match).
_REPEATS = re.compile(r"([^\W\d_])(?=\1)")
_REPEATS_ASCII = re.compile(rb"([a-z])(?=\1)")
# General path: sentence breaks are anything not a word character, whitespace, a dash or an
# underscore (so punctuation and emoji break sentences, "opt-out" stays one phrase); newlines
# in the text are breaks too. Everything else that is not a word character is a space.
_BREAKS = re.compile(r"[^\w\s\-\u2010-\u2015]+|\n")
_SPACES = re.compile(r"[^\w\n]+|_+")


def fold(text: str, *, squeeze: bool = True, breaks: bool = True) -> str:
    """``text`` folded (see the module docstring), with a newline wherever a sentence breaks.

    ``" ".join(fold(t).split()) == normalize(t)``; ``.split("\\n")`` gives the sentences. For
    ASCII one pass serves both, so the sentence rule costs no second normalisation; for other
    text ``breaks=False`` skips marking sentence breaks (one regex pass less).
    """
    if text.isascii():
        folded = text.encode("ascii").translate(_ASCII_SENTENCES, _ASCII_DELETE)
        return (_REPEATS_ASCII.sub(b"", folded) if squeeze else folded).decode("ascii")
    general = _INVISIBLE.sub("", unicodedata.normalize("NFKD", text).casefold())
    if _CONFUSABLE.search(general) is not None:
        general = _CONFUSABLE.sub(lambda m: _CONFUSABLES[m.group()], general)
    general = _SPACES.sub(" ", _BREAKS.sub("\n", general) if breaks else general)
    return _REPEATS.sub("", general) if squeeze else general


def normalize(text: str, *, squeeze: bool = True) -> str:
    """The matching form of ``text``: lower-case words separated by single spaces ('' if none).

    ``squeeze=False`` keeps letter repeats: the readable form of a table word for evidence.
    """
    return " ".join(fold(text, squeeze=squeeze, breaks=False).split())


def sentences(folded: str) -> list[str]:
    """The sentences of a ``fold()``-ed text, each normalised; empty ones dropped."""
    return [" ".join(line.split()) for line in folded.split("\n") if line and not line.isspace()]
