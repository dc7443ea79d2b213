"""The classifier's result: what an inbound message means for consent, as stored evidence.

Apart from the matching code (compliance/keywords.py, which re-exports these) so that the
modules it is split into (compliance/keyword_compile.py, the rewrite, window and far-fuzzy
stages) share one definition without importing each other in a circle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CLASSIFIER_VERSION", "NO_MATCH", "Classification", "Intent"]

# Stored with every classification as evidence: bump whenever tables or rules change.
CLASSIFIER_VERSION = "2026.12.1"


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



NO_MATCH = Classification(Intent.NONE, None, None, "no_match")  # the common result, allocated once
