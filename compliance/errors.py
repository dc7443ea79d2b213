"""The compliance error tree. Gate outcomes are values (SendDecision), not exceptions;
these are for input that cannot be acted on and for broken invariants.

- ComplianceError: base
  - InvalidNumber: raised when a string cannot be read as a textable phone number
  - LedgerConflict: raised when the consent ledger's invariants do not hold
  - UnknownZone: raised when a time zone name is not in the IANA database
"""

from __future__ import annotations

__all__ = ["ComplianceError", "InvalidNumber", "LedgerConflict", "UnknownZone"]


class ComplianceError(Exception):
    """Base of every error raised by compliance/."""


class InvalidNumber(ComplianceError, ValueError):
    """Raised when a string cannot be read as a phone number (reason in the message)."""


class LedgerConflict(ComplianceError):
    """Raised when a consent event would break the ledger (e.g. a broken hash chain)."""


class UnknownZone(ComplianceError, ValueError):
    """Raised when a time zone name is not in the IANA database (a caller bug, not a recipient fact)."""
