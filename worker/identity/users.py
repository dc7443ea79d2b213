"""Staff users who sign in to the dashboard with an e-mail and a password (public.users).

Passwords are kept only as argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended profile); a hash made under older parameters is replaced at the next good sign-in.
A person's role and stations follow the API token rules (worker/identity/tokens.py): a
STATION_MANAGER is bound to one or more stations (identity.station_users), the other roles
see every station. Creating a user is audited; the password itself is never logged, stored
in the clear, or taken from a command line.

``check_password`` spends the same argon2 work whether or not the e-mail exists, so the time
an answer takes does not tell a guesser which addresses are staff.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.errors import Conflict, InvalidInput
from worker.identity.tokens import parse_role, role_stations
from worker.models import AuditAction, StationUser, User, UserRole

__all__ = ["MIN_PASSWORD", "StaffUser", "check_password", "create_user", "dummy_hash", "user_stations"]

MIN_PASSWORD = 12
_MAX_PASSWORD = 1024
_hasher = PasswordHasher()


@cache
def dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so that case costs what a wrong password costs.

    Made on first use, not at import: one argon2 hash takes 64 MiB and ~0.2 s, and every
    ``msgworker`` command imports this module (the opt-out report's peak RSS carried it).
    The dashboard makes it when it starts, so even the first sign-in is timed alike.
    """
    return _hasher.hash("not a password of anyone's")


@dataclass(frozen=True, slots=True)
class StaffUser:
    id: uuid.UUID
    email: str
    name: str
    role: UserRole
    station_ids: tuple[uuid.UUID, ...]


def _email(value: str) -> str:
    email = value.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 255 or any(c.isspace() for c in email):
        raise InvalidInput(f"{value!r} is not an e-mail address", field="email")
    return email


def user_stations(session: Session, user_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    rows = session.execute(select(StationUser.station_id).where(StationUser.user_id == user_id)).scalars()
    return tuple(sorted(rows, key=str))


def create_user(
    session: Session,
    *,
    email: str,
    role: UserRole | str,
    password: str,
    actor: Actor,
    station_codes: Sequence[str] = (),
    first_name: str = "",
    last_name: str = "",
) -> StaffUser:
    """A staff user with an argon2 hash of ``password``, their stations, and the audit row."""
    address = _email(email)
    parsed = parse_role(role)
    if not MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        raise InvalidInput(f"the password must be {MIN_PASSWORD} to {_MAX_PASSWORD} characters", field="password")
    stations = role_stations(session, parsed, station_codes, (), holder="user")
    taken = session.execute(select(User.id).where(func.lower(User.email) == address)).first()
    if taken is not None:
        raise Conflict(f"a user with e-mail {address} exists already", field="email")
    user = User(email=address, password_hash=_hasher.hash(password), first_name=first_name.strip() or
                address.split("@")[0], last_name=last_name.strip(), role=parsed, is_active=True, is_verified=True,
                assigned_station_id=stations[0] if len(stations) == 1 else None)
    session.add(user)
    session.flush()
    session.add_all([StationUser(user_id=user.id, station_id=sid) for sid in stations])
    session.flush()
    audit.record(session, actor, action=AuditAction.CREATE, resource_type="user", resource_id=user.id,
                 station_id=stations[0] if len(stations) == 1 else None,
                 new_values={"email": address, "role": parsed.value, "stations": [str(s) for s in stations]})
    return StaffUser(user.id, address, f"{user.first_name} {user.last_name}".strip(), parsed, tuple(stations))


def check_password(session: Session, email: str, password: str) -> StaffUser | None:
    """The active user with this e-mail and password, or None (unknown, inactive, wrong: alike)."""
    address = email.strip().lower()
    user = session.execute(select(User).where(func.lower(User.email) == address)).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.is_active else dummy_hash()
    try:
        _hasher.verify(stored, password[:_MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return StaffUser(user.id, user.email, f"{user.first_name} {user.last_name}".strip(), UserRole(user.role),
                     user_stations(session, user.id))
