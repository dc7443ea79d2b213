"""The admin API's transactions: each request is one, run as ``msgworker_api`` under row-level security.

The order is the point (docs/admin-api.md, "Row-level security"):

1. the token is verified as the connection's own role (the owner: the API role cannot read
   token hashes), in a transaction of its own;
2. the request's transaction begins, ``SET LOCAL ROLE msgworker_api`` makes PostgreSQL enforce
   the policies, and ``set_config(..., true)`` gives them the actor, role and station ids, taken
   from the verified token and nothing else;
3. the work runs; commit, or roll back on any exception.

Everything in steps 2 and 3 is transaction-local, so a pooled connection goes back to the pool
with no role and no setting left on it, whatever happened (SQLAlchemy rolls back on return).
The settings query also reads ``current_user`` back and refuses to go on unless it is the API
role, so a request can never run with the owner's rights by mistake.

A write the policies refuse (``new row violates row-level security policy``: another station's
id) and a write naming an id that does not exist (a foreign key) both become NotFound: the
database decided, nothing in Python checked first, and neither reveals whether the row exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from worker.audit import Actor
from worker.db import engine as default_engine
from worker.errors import NotFound
from worker.identity import tokens
from worker.identity.tokens import Principal
from worker.models import UserRole

__all__ = ["API_ROLE", "AdminDatabase", "Caller", "refused_by_policy"]

API_ROLE = "msgworker_api"

_SET_ROLE = text(f"SET LOCAL ROLE {API_ROLE}")
_SETTINGS = text(
    "SELECT set_config('app.actor', :actor, true), set_config('app.role', :role, true), "
    "set_config('app.station_ids', :stations, true), current_user"
)


def refused_by_policy(exc: BaseException) -> bool:
    """A row-level security refusal of a write (WITH CHECK), or a foreign key naming no row."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, pg_errors.InsufficientPrivilege):
        return "row-level security" in str(orig)
    return isinstance(orig, pg_errors.ForeignKeyViolation)


class Caller(Protocol):
    """Who a request runs for, verified before its transaction: an API token's Principal, or a
    dashboard session's signed-in person (worker/web/dashboard/sessions.py)."""

    @property
    def role(self) -> UserRole: ...

    @property
    def station_ids(self) -> tuple[uuid.UUID, ...]: ...

    @property
    def actor(self) -> Actor: ...


class AdminDatabase:
    """The admin API's engine: the process's own (worker.db), or one a test or benchmark hands in.

    The dashboard uses it too, so both run every request the one way (``transaction``).
    """

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else default_engine()
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    def authenticate(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        with self.as_owner() as session:
            return tokens.authenticate(session, presented)

    @contextmanager
    def as_owner(self) -> Iterator[Session]:
        """A transaction as the connection's own role, for what comes before a request's identity is
        known (verifying a credential, a dashboard session) and for what the API role may not read."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def transaction(self, principal: Caller, *, refusal: NotFound | None = None) -> Iterator[Session]:
        """The request's one transaction, as the API role with the caller's settings.

        ``refusal`` is the NotFound a policy refusal becomes (default: a plain "not found").
        """
        session = self._sessions()
        try:
            with session.begin():
                session.execute(_SET_ROLE)
                row = session.execute(
                    _SETTINGS,
                    {
                        "actor": principal.actor.label,
                        "role": principal.role.value,
                        "stations": ",".join(str(s) for s in principal.station_ids),
                    },
                ).one()
                if row[3] != API_ROLE:  # pragma: no cover - SET LOCAL ROLE cannot silently fail
                    raise RuntimeError(f"admin request runs as {row[3]!r}, not {API_ROLE}")
                try:
                    yield session
                    session.flush()
                except (DBAPIError, psycopg.Error) as exc:
                    if refused_by_policy(exc):
                        raise (refusal or NotFound("not found")) from None
                    raise
        finally:
            session.close()
