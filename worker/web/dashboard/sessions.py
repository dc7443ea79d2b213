"""Dashboard sessions: a random secret in an HttpOnly cookie, its SHA-256 in identity.dashboard_sessions.

A session is opened by a good sign-in and belongs to a staff user or an API token. Who the
person is (role, stations) is read again from that user or token at every request, never
cached in the session: a deactivated user, a revoked or expired token, ends the session's
access on the next click. A session is over when it is signed out, when it has not been used
for ``DASHBOARD_IDLE_MINUTES``, or ``DASHBOARD_SESSION_MAX_HOURS`` after sign-in.

Every form that changes something carries the session's CSRF token (a second random value,
kept in the row and written into each page); the sign-in form, before any session exists,
carries one that must match a short-lived cookie of its own (double submit). The cookies are
SameSite=Strict as well, so a cross-site form post arrives without them.

All of this runs as the database's owner role (the API role cannot read sessions, users or
token hashes), in short transactions of its own before the page's transaction begins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.identity.tokens import Principal
from worker.identity.users import StaffUser, user_stations
from worker.models import ApiToken, ApiTokenStation, AuditAction, DashboardSession, User, UserRole
from worker.settings import AppEnv, Settings

__all__ = ["SIGN_IN_COOKIE", "Viewer", "cookie_name", "csrf_ok", "end", "load", "new_secret", "open_session"]

SIGN_IN_COOKIE = "mw_sign_in"


def cookie_name(settings: Settings) -> str:
    """The session cookie's name: ``__Host-`` in production, so the browser refuses it unless it
    is Secure, has no Domain and Path=/ (a sibling host cannot set or shadow it)."""
    return "__Host-mw_dashboard" if settings.APP_ENV is AppEnv.PRODUCTION else "mw_dashboard"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person of one request: a ``Caller`` for the request's transaction."""

    session_id: uuid.UUID
    name: str
    role: UserRole
    station_ids: tuple[uuid.UUID, ...]
    csrf: str
    user_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None

    @property
    def actor(self) -> Actor:
        return Actor(who=self.name, via="dashboard", user_id=self.user_id,
                     token_id=str(self.token_id) if self.token_id else None, role=self.role.value)

    @property
    def sees_all_stations(self) -> bool:
        return self.role != UserRole.STATION_MANAGER


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def csrf_ok(presented: str | None, expected: str | None) -> bool:
    """Constant-time comparison; a missing value on either side is a refusal."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def open_session(session: Session, *, user: StaffUser | None = None, principal: Principal | None = None) -> str:
    """A new session for a verified user or token, and its audit row; returns the cookie's secret."""
    if (user is None) == (principal is None):
        raise ValueError("a session belongs to a user or to a token")
    secret = new_secret()
    row = DashboardSession(secret_hash=_digest(secret), csrf_token=new_secret(),
                           user_id=user.id if user else None, token_id=principal.token_id if principal else None)
    session.add(row)
    session.flush()
    holder: StaffUser | Principal = user if user is not None else principal  # type: ignore[assignment]
    viewer = _viewer(row, holder.name or (user.email if user else ""), holder.role, holder.station_ids)
    audit.record(session, viewer.actor, action=AuditAction.CREATE, resource_type="dashboard_session",
                 resource_id=row.id, new_values={"by": "password" if user else "api_token"})
    return secret


def _viewer(row: DashboardSession, name: str, role: UserRole, stations: tuple[uuid.UUID, ...]) -> Viewer:
    return Viewer(session_id=row.id, name=name, role=role, station_ids=stations, csrf=row.csrf_token,
                  user_id=row.user_id, token_id=row.token_id)


def _holder(session: Session, row: DashboardSession, now: datetime) -> Viewer | None:
    """Who the session's user or token is now, or None if they may no longer sign in."""
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.is_active:
            return None
        return _viewer(row, f"{user.first_name} {user.last_name}".strip() or user.email, UserRole(user.role),
                       user_stations(session, user.id))
    token = session.get(ApiToken, row.token_id)
    if token is None or token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    stations = session.execute(
        select(ApiTokenStation.station_id).where(ApiTokenStation.token_id == token.id)).scalars()
    return _viewer(row, token.name, UserRole(token.role), tuple(sorted(stations, key=str)))


def load(session: Session, secret: str | None, settings: Settings) -> Viewer | None:
    """The session's viewer, its last use moved to now; None when there is none, it is over, or its
    holder may no longer sign in (an idle or too old session is ended on the way, for the record)."""
    if not secret or len(secret) > 100:
        return None
    row = session.execute(
        select(DashboardSession).where(DashboardSession.secret_hash == _digest(secret),
                                       DashboardSession.ended_at.is_(None)).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return None
    now = session.execute(select(func.now())).scalar_one()
    idle = now - row.last_seen_at > timedelta(minutes=settings.DASHBOARD_IDLE_MINUTES)
    old = now - row.created_at > timedelta(hours=settings.DASHBOARD_SESSION_MAX_HOURS)
    if idle or old:
        row.ended_at, row.ended_reason = now, "idle" if idle else "expired"
        return None
    viewer = _holder(session, row, now)
    if viewer is None:
        row.ended_at, row.ended_reason = now, "revoked"
        return None
    row.last_seen_at = now
    return viewer


def end(session: Session, viewer: Viewer) -> None:
    """Sign out: the session can never be used again, whoever holds its cookie."""
    session.execute(
        update(DashboardSession)
        .where(DashboardSession.id == viewer.session_id, DashboardSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC), ended_reason="signed_out")
    )
    audit.record(session, viewer.actor, action=AuditAction.UPDATE, resource_type="dashboard_session",
                 resource_id=viewer.session_id, new_values={"ended": "signed_out"})
