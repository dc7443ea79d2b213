"""Who may call what: the bearer token (401) and the role (403), before any work.

Every route names the roles it allows with ``access(...)`` (the role table in
docs/admin-api.md); stations are not checked here at all: PostgreSQL's row-level security
decides which rows a request sees and may write (worker/web/admin/database.py), so another
station's object is a 404 from the database, never a Python comparison.

A missing, malformed, unknown, revoked or expired token gets the same 401, with no detail:
telling them apart would help whoever is guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from worker.errors import ErrorKind, Forbidden, NotFound, UserError
from worker.identity.tokens import Principal
from worker.models import UserRole
from worker.web.admin.database import AdminDatabase

__all__ = ["ADMINS", "ALL_ROLES", "Access", "Unauthorized", "access"]

ALL_ROLES = frozenset(UserRole)
ADMINS = frozenset({UserRole.SUPER_ADMIN, UserRole.ADMIN})

_bearer = HTTPBearer(auto_error=False, description="A token from `msgworker token create` (mwk_...).")


class Unauthorized(UserError):
    """No usable token (the one 401 answer; the reason is never said)."""

    default_kind = ErrorKind.UNAUTHORIZED

    def __init__(self) -> None:
        super().__init__("a valid bearer token is required")


@dataclass(frozen=True, slots=True)
class Access:
    """A verified caller and the way to its request's transaction."""

    principal: Principal
    database: AdminDatabase

    def transaction(self, *, refusal: NotFound | None = None) -> AbstractContextManager[Session]:
        return self.database.transaction(self.principal, refusal=refusal)


def _database(request: Request) -> AdminDatabase:
    database = request.app.state.admin_database
    assert isinstance(database, AdminDatabase)
    return database


def access(*roles: UserRole) -> Callable[..., Access]:
    """A dependency: the caller's Access if their token is good (401) and their role is one of ``roles`` (403)."""
    allowed = frozenset(roles)

    def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Access:
        database = _database(request)
        principal = database.authenticate(credentials.credentials if credentials is not None else None)
        if principal is None:
            raise Unauthorized()
        if principal.role not in allowed:
            raise Forbidden(f"a {principal.role.value} token may not do this")
        return Access(principal, database)

    dependency.__name__ = "access_" + "_".join(sorted(r.value.lower() for r in allowed))
    return dependency
