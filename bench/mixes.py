"""What a station's inbox looks like, for bench/ingest.py ``--mix realistic``.

Shares per 200 texts (fixed, so every run and every checkout sees the same mix): 10 opt-out
keywords (5%), one START and one HELP (1% together), two free-text revocations (1%), 186
conversation texts. Keywords and phrases are spelled as people send them; ``check`` holds each
to the classifier's verdict before a run (bench/ingest.py calls it), so the mix means what it
says.

A third of the texts come from a number that texted within the last ``RECENT`` texts (an
INBOX_BATCH_SIZE-sized window or so), so one drain batch often holds two texts of one number:
a STOP after a question, a START or a second STOP after a STOP. The rest come from numbers
never seen before.
"""

from __future__ import annotations

import random

__all__ = ["CONFIRMATION_PREFIX", "FREE_TEXT", "HELP", "OPT_IN", "OPT_OUT", "PLAIN", "RECENT", "check", "realistic"]

# The opt-out keywords (compliance.keywords: exact keywords, in people's spellings).
OPT_OUT = ("STOP", "Stop", "stop", "STOP.", "Stop please", "UNSUBSCRIBE", "Unsubscribe", "Cancel", "End", "stop!!",
           "Quit", "STOPALL")
OPT_IN = ("START", "Start", "UNSTOP", "Yes")
HELP = ("HELP", "help?", "INFO", "Help")
# Free-text revocations: five the classifier reads as an opt-out, one it sends to review.
FREE_TEXT = ("please stop texting me", "Stop texting me please", "take me off your list", "no more texts please",
             "remove me from this list", "dont text me at work")
PLAIN = ("Hi, is the 14th free for a party of {n}?", "Can we move dinner to 7:30? We'll be {n}.",
         "Thanks! The chef was great", "What's the deposit for {n} guests?", "ok see you then",
         "Do you do gluten free for {n} people?")
# The opt-out confirmation's first words for the bench's station (brand "Bench").
CONFIRMATION_PREFIX = "Bench: You're unsubscribed"
RECENT = 300

# Positions within each block of 200 texts.
_OPT_OUT_AT = frozenset(range(7, 200, 20))  # 10
_OPT_IN_AT = 93
_HELP_AT = 151
_FREE_TEXT_AT = frozenset({44, 178})


def _body(pos: int, k: int, rng: random.Random) -> tuple[str, bool]:
    """(body, is consent work) of the text at position ``pos`` of its block; ``k`` counts texts."""
    if pos in _OPT_OUT_AT:
        return OPT_OUT[k % len(OPT_OUT)], True
    if pos == _OPT_IN_AT:
        return OPT_IN[k % len(OPT_IN)], True
    if pos == _HELP_AT:
        return HELP[k % len(HELP)], True
    if pos in _FREE_TEXT_AT:
        return FREE_TEXT[k % len(FREE_TEXT)], True
    return rng.choice(PLAIN).format(n=10 + k % 30), False


def realistic(n: int, first: int = 0) -> list[tuple[str, str]]:
    """``n`` (sender, body) pairs, texts ``first`` .. ``first + n - 1`` of the mix.

    Senders of different ``first`` values never overlap (the warm-up's texts come from numbers
    the measured run never uses).
    """
    rng = random.Random(first)
    out: list[tuple[str, str]] = []
    for i in range(first, first + n):
        body, consent = _body(i % 200, i // 200 * 17 + i, rng)
        recent = out[-RECENT:]
        # A third of the texts (half of the consent texts) from a number that texted recently.
        if recent and rng.random() < (0.5 if consent else 0.3):
            sender = rng.choice(recent)[0]
        else:
            sender = f"+1{'628' if consent else '415'}{3000000 + i % 6_999_999:07d}"
        out.append((sender, body))
    return out


def check() -> None:
    """Refuse to run a mix the classifier reads otherwise than this module says (SystemExit)."""
    from compliance.consent_intake import decide
    from compliance.consent_replies import opt_out_confirmation
    from compliance.keywords import classify

    def action(body: str) -> str:
        return decide(classify(body), None).action.value

    expected = [(OPT_OUT, "opt_out"), (OPT_IN, "opt_in"), (HELP, "help"), (FREE_TEXT[:-1], "opt_out"),
                (FREE_TEXT[-1:], "review"), (tuple(t.format(n=12) for t in PLAIN), "none")]
    wrong = [f"{body!r}: {action(body)}, not {meant}" for bodies, meant in expected for body in bodies
             if action(body) != meant]
    if not opt_out_confirmation("Bench").startswith(CONFIRMATION_PREFIX):
        wrong.append(f"the confirmation no longer starts with {CONFIRMATION_PREFIX!r}")
    if wrong:
        raise SystemExit("bench/mixes.py is out of date with the classifier: " + "; ".join(wrong))
