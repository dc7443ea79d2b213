"""Errors a person caused, and how each one reaches them.

A refusal is not a bug: the command line prints its one line and exits non-zero, the admin
API answers a 4xx with a JSON body, and neither shows a traceback. Anything that is not in
this tree is a bug, and is left to surface as one; nothing here catches ``ValueError``.

- UserError: base; ``str(err)`` is the line the person reads, ``field`` the input at fault
  - NotFound: raised when the thing named does not exist (or the caller may not see it)
  - Conflict: raised when it exists, but its state refuses the change (already resolved, taken)
  - InvalidInput: raised when the input cannot be used as given (a bad id, an empty file)
  - Forbidden: raised when the caller's role may not do this (the admin API's 403)

The admin API also answers with ``UNAUTHORIZED`` (401: no usable token, and no detail why) and
``TOO_LARGE`` (413: a request body over its limit); the CLI never raises those.

Domain errors (``StationError``, ``HeldError``, ``ReviewError``, ``StaffError``,
``ConsentImportError``, ``EnqueueError``) subclass ``UserError`` and say their kind per raise,
so a caller can catch one domain and still answer each refusal with its own status.
``compliance.errors.InvalidNumber`` and ``UnknownZone`` are user errors too (a number or
zone a person typed): ``USER_ERRORS`` is what a boundary catches, ``surface()`` how it answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from compliance.errors import InvalidNumber, UnknownZone

__all__ = [
    "SURFACES",
    "USER_ERRORS",
    "Conflict",
    "ErrorKind",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Surface",
    "UserError",
    "http_body",
    "surface",
]


class ErrorKind(enum.StrEnum):
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_INPUT = "invalid_input"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True)
class Surface:
    """How one kind of refusal is shown: the CLI's exit code and the API's HTTP status."""

    exit_code: int
    http_status: int


# The one table. The CLI keeps a single refusal code (1; 78 stays "unusable settings") so
# scripts can tell "refused" from "crashed" (a traceback exits 1 too, but prints one); the
# line it prints names what to fix. The API tells the kinds apart by status.
SURFACES: dict[ErrorKind, Surface] = {
    ErrorKind.NOT_FOUND: Surface(exit_code=1, http_status=404),
    ErrorKind.CONFLICT: Surface(exit_code=1, http_status=409),
    ErrorKind.INVALID_INPUT: Surface(exit_code=1, http_status=422),
    ErrorKind.UNAUTHORIZED: Surface(exit_code=1, http_status=401),
    ErrorKind.FORBIDDEN: Surface(exit_code=1, http_status=403),
    ErrorKind.TOO_LARGE: Surface(exit_code=1, http_status=413),
}


class UserError(Exception):
    """Base of every refusal a person caused; see the module docstring for the tree."""

    default_kind = ErrorKind.INVALID_INPUT

    def __init__(self, message: str, *, kind: ErrorKind | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind if kind is not None else self.default_kind
        self.field = field

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotFound(UserError):
    """Raised when the thing named does not exist, or the caller may not see it."""

    default_kind = ErrorKind.NOT_FOUND


class Conflict(UserError):
    """Raised when the thing exists but its current state refuses the change."""

    default_kind = ErrorKind.CONFLICT


class InvalidInput(UserError):
    """Raised when the input cannot be used as given."""

    default_kind = ErrorKind.INVALID_INPUT


class Forbidden(UserError):
    """Raised when the caller's role may not do this (an ADMIN minting a SUPER_ADMIN token)."""

    default_kind = ErrorKind.FORBIDDEN


USER_ERRORS: tuple[type[Exception], ...] = (UserError, InvalidNumber, UnknownZone)


def _kind(err: Exception) -> ErrorKind:
    if isinstance(err, UserError):
        return err.kind
    if isinstance(err, InvalidNumber | UnknownZone):
        return ErrorKind.INVALID_INPUT
    raise TypeError(f"{type(err).__name__} is not a user error; let it surface as a bug")


def surface(err: Exception) -> Surface:
    """The exit code and HTTP status for a user error (TypeError for anything else)."""
    return SURFACES[_kind(err)]


def http_body(err: Exception) -> dict[str, Any]:
    """The API's error body: a stable ``code``, the human ``message``, and the ``field`` at fault."""
    field = err.field if isinstance(err, UserError) else None
    if field is None and isinstance(err, InvalidNumber):
        field = "phone"
    return {"code": _kind(err).value, "message": str(err), "field": field}
