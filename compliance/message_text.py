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

__all__ = ["fold_ascii", "normalize", "sentences"]

_CONFUSABLES = {
    # Cyrillic (after case folding)
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k", "м": "m",
    "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ү": "y", "ӏ": "l",
    # Greek (after case folding)
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ζ": "z",
}


def _build_tables() -> tuple[dict[int, str | None], dict[int, None]]:
    general: dict[int, str | None] = {ord(k): v for k, v in _CONFUSABLES.items()}
    for ch in "'`´‘’ʼʹ′":
        general[ord(ch)] = None
    invisible: dict[int, None] = {}
    # Combining marks and format characters. The planes that hold any (BMP, SMP, SIP) plus the
    # variation-selector/tag block in plane 14; built once at import (a few tens of ms).
    for cp in (*range(0x30000), *range(0xE0000, 0xE0200)):
        category = unicodedata.category(chr(cp))
        if category in ("Mn", "Me", "Cf"):
            general[cp] = None
        if category == "Cf":
            invisible[cp] = None
    return general, invisible


_GENERAL, _INVISIBLE = _build_tables()
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
_NON_WORD = re.compile(r"[\W_]+")
# Delete a letter when the next one is the same: "stooop" -> "stop". A literal "" replacement
# keeps re.sub on its C fast path (a "\\1" template is expanded in Python for every match).
_REPEATS = re.compile(r"([^\W\d_])(?=\1)")
_REPEATS_ASCII = re.compile(rb"([a-z])(?=\1)")
# Sentence breaks for the "a sentence that is only STOP" rule: anything that is not part of a
# word, a space, an apostrophe or an in-word hyphen ("opt-out"). Emoji count as breaks.
_BREAKS = re.compile(r"[^\w\s'`´‘’ʼ-]+|\s-+\s|\s-+$|^-+\s")


def fold_ascii(text: str) -> str:
    """An ASCII ``text`` folded and squeezed, with a newline wherever a sentence breaks.

    ``" ".join(fold_ascii(t).split()) == normalize(t)``; ``.split("\\n")`` gives the sentences.
    One pass serves both, so the sentence rule costs no second normalisation.
    """
    return _REPEATS_ASCII.sub(b"", text.encode("ascii").translate(_ASCII_SENTENCES, _ASCII_DELETE)).decode("ascii")


def normalize(text: str, *, squeeze: bool = True) -> str:
    """The matching form of ``text``: lower-case words separated by single spaces ('' if none).

    ``squeeze=False`` keeps letter repeats: the readable form of a table word for evidence.
    """
    if text.isascii():
        if squeeze:
            return " ".join(fold_ascii(text).split())
        return " ".join(text.encode("ascii").translate(_ASCII, _ASCII_DELETE).decode("ascii").split())
    general = _NON_WORD.sub(" ", unicodedata.normalize("NFKD", text).casefold().translate(_GENERAL))
    return " ".join((_REPEATS.sub("", general) if squeeze else general).split())


def sentences(text: str, folded: str | None = None) -> list[str]:
    """``text`` split at punctuation and emoji, each part normalised; empty parts dropped.

    ``folded``: ``fold_ascii(text)`` when the caller has it already (ASCII texts only).
    """
    if text.isascii():
        lines = (folded if folded is not None else fold_ascii(text)).split("\n")
        return [" ".join(line.split()) for line in lines if line and not line.isspace()]
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return [n for n in (normalize(part) for part in _BREAKS.split(text)) if n]
