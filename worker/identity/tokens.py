"""Staff bearer tokens for the admin API: issued once, stored as a hash, expired, revoked.

A token is ``mwk_`` plus 32 random bytes (``secrets.token_urlsafe``): the prefix makes a leaked
token recognisable (log masking, secret scanners), the randomness makes a fast hash safe to
store. Only its SHA-256 is kept, so the table cannot be replayed, and the presented token's
hash is found by the unique index and then compared with ``hmac.compare_digest``. The secret
is shown once, by whoever created it (``msgworker token create`` or ``POST /api/v1/tokens``),
and never logged.

A token carries a role (public.user_role) and, for STATION_MANAGER, the stations it may see;
the admin API turns a verified token into a ``Principal`` and nothing else decides what a
request may do (docs/admin-api.md). Every create, list and revoke writes an audit row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from worker import audit
from worker.audit import Actor
from worker.errors import Conflict, Forbidden, InvalidInput, NotFound
from worker.identity.stations import find_station
from worker.models import ApiToken, ApiTokenStation, AuditAction, Station, UserRole

__all__ = [
    "ALL_STATION_ROLES",
    "TOKEN_PREFIX",
    "IssuedToken",
    "Principal",
    "TokenInfo",
    "authenticate",
    "create_token",
    "expiry_in_days",
    "hash_secret",
    "list_tokens",
    "parse_role",
    "revoke_token",
    "role_stations",
    "station_codes",
]

TOKEN_PREFIX = "mwk_"  # noqa: S105 - a prefix, not a secret
# What a presented token must look like before it is hashed (43 characters of base64url).
_SHAPE = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}")
NAME_MAX = 100
# Roles whose requests see every station (the database's api_sees_all_stations() agrees).
ALL_STATION_ROLES = frozenset({UserRole.SUPER_ADMIN, UserRole.ADMIN, UserRole.CUSTOMER_SUPPORT})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token is: the only source of a request's role and stations."""

    token_id: uuid.UUID
    name: str
    role: UserRole
    station_ids: tuple[uuid.UUID, ...]

    @property
    def sees_all_stations(self) -> bool:
        return self.role in ALL_STATION_ROLES

    @property
    def actor(self) -> Actor:
        return Actor(who=self.name, via="api", token_id=str(self.token_id), role=self.role.value)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never its secret, never its hash."""

    id: uuid.UUID
    name: str
    role: UserRole
    station_ids: tuple[uuid.UUID, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    info: TokenInfo
    secret: str  # shown once, never stored


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# Every column but the hash: the API role may not read token_hash (migration 0005).
_LISTED = (ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.created_by, ApiToken.created_at, ApiToken.expires_at,
           ApiToken.revoked_at, ApiToken.revoked_by)


def _info(row: Any, station_ids: Sequence[uuid.UUID]) -> TokenInfo:
    """A TokenInfo from an ApiToken or a row of ``_LISTED``."""
    return TokenInfo(
        id=row.id, name=row.name, role=UserRole(row.role), station_ids=tuple(sorted(station_ids, key=str)),
        created_by=row.created_by, created_at=row.created_at, expires_at=row.expires_at,
        revoked_at=row.revoked_at, revoked_by=row.revoked_by,
    )


def _stations_of(session: Session, token_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    out: dict[uuid.UUID, list[uuid.UUID]] = {}
    if token_ids:
        for token_id, station_id in session.execute(
            select(ApiTokenStation.token_id, ApiTokenStation.station_id).where(
                ApiTokenStation.token_id.in_(list(token_ids))
            )
        ):
            out.setdefault(token_id, []).append(station_id)
    return out


def _station_ids(session: Session, codes: Sequence[str], ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Codes resolved (NotFound for an unknown one); ids taken as given: the foreign key (and,
    through the API, the database's row-level security) refuses an id that is not a station."""
    found = [find_station(session, code).id for code in codes]
    return sorted({*found, *ids}, key=str)


def parse_role(role: UserRole | str) -> UserRole:
    """A role by its name (InvalidInput naming the four)."""
    try:
        return UserRole(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(UserRole)}, not {role!r}", field="role") from None


def role_stations(
    session: Session, role: UserRole, codes: Sequence[str], ids: Sequence[uuid.UUID], *, holder: str
) -> list[uuid.UUID]:
    """The stations a credential of ``role`` is bound to: at least one for a STATION_MANAGER, none
    for the roles that see every station (a ``holder`` is a token or a dashboard user)."""
    stations = _station_ids(session, codes, ids)
    if role == UserRole.STATION_MANAGER and not stations:
        raise InvalidInput(f"a STATION_MANAGER {holder} needs at least one station (--station CODE)",
                           field="stations")
    if role != UserRole.STATION_MANAGER and stations:
        raise InvalidInput(f"a {role} {holder} covers every station: name stations only for STATION_MANAGER",
                           field="stations")
    return stations


def create_token(
    session: Session,
    *,
    name: str,
    role: UserRole | str,
    actor: Actor,
    station_codes: Sequence[str] = (),
    station_ids: Sequence[uuid.UUID] = (),
    expires_at: datetime | None = None,
    creator_role: UserRole | None = None,
) -> IssuedToken:
    """Issue a token (its secret returned once) and its audit row.

    ``creator_role`` is the role of the token creating this one through the API (None: the
    command line, run by an operator with database access): an ADMIN may not mint a
    SUPER_ADMIN, the database refuses it too (migration 0005), and this says so first with a 403.
    """
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"token name must be 1-{NAME_MAX} characters", field="name")
    role = parse_role(role)
    if creator_role is not None and creator_role != UserRole.SUPER_ADMIN and role == UserRole.SUPER_ADMIN:
        raise Forbidden("only a SUPER_ADMIN may create SUPER_ADMIN tokens", field="role")
    stations = role_stations(session, role, station_codes, station_ids, holder="token")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("expires_at needs a UTC offset", field="expires_at")
        if expires_at <= datetime.now(UTC):
            raise InvalidInput("expires_at must be in the future", field="expires_at")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, role=role, token_hash=hash_secret(secret), created_by=actor.label,
                   expires_at=expires_at)
    session.add(row)
    session.flush()
    session.add_all([ApiTokenStation(token_id=row.id, station_id=sid) for sid in stations])
    session.flush()
    audit.record(
        session,
        actor,
        action=AuditAction.CREATE,
        resource_type="api_token",
        resource_id=row.id,
        station_id=stations[0] if len(stations) == 1 else None,
        new_values={
            "name": name,
            "role": role.value,
            "stations": [str(s) for s in stations],
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return IssuedToken(info=_info(row, stations), secret=secret)


def expiry_in_days(days: int) -> datetime | None:
    """``days`` from now (0: never expires); InvalidInput below 0 or above 10 years."""
    if days < 0 or days > 3650:
        raise InvalidInput("expiry must be 0 (never) to 3650 days", field="expires_in_days")
    return datetime.now(UTC) + timedelta(days=days) if days else None


def list_tokens(session: Session, *, actor: Actor) -> list[TokenInfo]:
    """Every token, newest first (an audited VIEW: the list says who holds which access)."""
    audit.record(session, actor, action=AuditAction.VIEW, resource_type="api_token", resource_id=None)
    rows = session.execute(select(*_LISTED).order_by(ApiToken.created_at.desc(), ApiToken.id)).all()
    stations = _stations_of(session, [r.id for r in rows])
    return [_info(r, stations.get(r.id, [])) for r in rows]


def revoke_token(
    session: Session, token_id: uuid.UUID, *, actor: Actor, caller_role: UserRole | None = None
) -> TokenInfo:
    """Revoke a token at once (its next request gets 401); NotFound, or Conflict if already revoked.

    Through the API (``caller_role``), an ADMIN may not revoke a SUPER_ADMIN's token (403).
    """
    current = session.execute(select(*_LISTED).where(ApiToken.id == token_id)).one_or_none()
    if current is None:
        raise NotFound(f"no token with id {token_id}", field="token_id")
    if caller_role is not None and caller_role != UserRole.SUPER_ADMIN and current.role == UserRole.SUPER_ADMIN:
        raise Forbidden("only a SUPER_ADMIN may revoke a SUPER_ADMIN token", field="token_id")
    done = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_by=actor.label)
        .returning(*_LISTED)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if done is None:
        raise Conflict(f"token {token_id} was already revoked at {current.revoked_at.isoformat()}", field="token_id")
    audit.record(
        session,
        actor,
        action=AuditAction.UPDATE,
        resource_type="api_token",
        resource_id=token_id,
        old_values={"revoked_at": None},
        new_values={"revoked_at": done.revoked_at.isoformat(), "name": done.name, "role": str(done.role)},
    )
    return _info(done, _stations_of(session, [token_id]).get(token_id, []))


def authenticate(session: Session, presented: str | None) -> Principal | None:
    """The principal of a live token, or None (missing, malformed, unknown, revoked, expired alike).

    Runs as the connection's own role (the owner): the API role cannot read token hashes.
    """
    if not presented or not _SHAPE.fullmatch(presented):
        return None
    digest = hash_secret(presented)
    row = session.execute(
        select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.token_hash,
               func.array_remove(func.array_agg(ApiTokenStation.station_id), None))
        .outerjoin(ApiTokenStation, ApiTokenStation.token_id == ApiToken.id)
        .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None),
               (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > func.now()))
        .group_by(ApiToken.id)
    ).one_or_none()
    if row is None or not hmac.compare_digest(bytes(row[3]), digest):
        return None
    return Principal(token_id=row[0], name=row[1], role=UserRole(row[2]), station_ids=tuple(row[4] or ()))


def station_codes(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Codes of the given stations, for printing a token's stations."""
    if not ids:
        return {}
    return dict(session.execute(select(Station.id, Station.code).where(Station.id.in_(list(ids)))).all())
