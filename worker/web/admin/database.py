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

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from worker.db import engine as default_engine
from worker.errors import NotFound
from worker.identity import tokens
from worker.identity.tokens import Principal

__all__ = ["API_ROLE", "AdminDatabase", "refused_by_policy"]

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


class AdminDatabase:
    """The admin API's engine: the process's own (worker.db), or one a test or benchmark hands in."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else default_engine()
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    def authenticate(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        with self._sessions() as session, session.begin():
            return tokens.authenticate(session, presented)

    @contextmanager
    def transaction(self, principal: Principal, *, refusal: NotFound | None = None) -> Iterator[Session]:
        """The request's one transaction, as the API role with the token's settings.

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
