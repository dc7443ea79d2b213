"""identity: stations (franchise locations), the addresses they send from, and staff API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from worker.models.audit import UserRole, user_role
from worker.models.base import Base, created_at, updated_at, uuid_pk

CHANNELS = ("sms", "facebook", "instagram")


class Station(Base):
    __tablename__ = "stations"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'inactive')", name="status"),
        Index("ix_stations_status", "status"),
        {"schema": "identity"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    timezone: Mapped[str] = mapped_column(String(64))
    brand_name: Mapped[str] = mapped_column(String(200))
    # The HELP auto-reply (CTIA: brand, frequency, rates, STOP instructions, contact).
    help_text: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    deleted_at: Mapped[datetime | None]

    senders: Mapped[list[StationSender]] = relationship(back_populates="station")


class StationSender(Base):
    """An address a station sends from: an E.164 number, or a Meta page / IG account id."""

    __tablename__ = "station_senders"
    __table_args__ = (
        CheckConstraint("channel IN ('sms', 'facebook', 'instagram')", name="channel"),
        # One owner per address and channel: inbound To resolves to exactly one station.
        UniqueConstraint("channel", "address"),
        {"schema": "identity"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    station_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("identity.stations.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    # Messages per second Twilio accepts from this sender (long code 1, toll-free 3).
    rate_per_second: Mapped[float] = mapped_column(server_default=text("1"))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = created_at()

    station: Mapped[Station] = relationship(back_populates="senders")


class StationUser(Base):
    __tablename__ = "station_users"
    __table_args__ = ({"schema": "identity"},)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    station_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = created_at()


class ApiToken(Base):
    """A staff bearer token for the admin API (worker/identity/tokens.py): only its SHA-256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        CheckConstraint("octet_length(token_hash) = 32", name="hash_length"),
        CheckConstraint("(revoked_at IS NULL) = (revoked_by IS NULL)", name="revoked"),
        {"schema": "identity"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[UserRole] = mapped_column(user_role)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class ApiTokenStation(Base):
    """A STATION_MANAGER token's stations: the only ones its requests can see."""

    __tablename__ = "api_token_stations"
    __table_args__ = ({"schema": "identity"},)

    token_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identity.api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    station_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("identity.stations.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class DashboardSession(Base):
    """A dashboard sign-in (worker/web/dashboard/sessions.py): the cookie's secret is kept only as its SHA-256.

    It belongs to a staff user or to an API token; role and stations are read from them at
    every request, so a deactivated user or a revoked token loses the session at once.
    """

    __tablename__ = "dashboard_sessions"
    __table_args__ = (
        UniqueConstraint("secret_hash"),
        CheckConstraint("octet_length(secret_hash) = 32", name="hash_length"),
        CheckConstraint("(user_id IS NULL) <> (token_id IS NULL)", name="one_holder"),
        CheckConstraint("(ended_at IS NULL) = (ended_reason IS NULL)", name="ended"),
        {"schema": "identity"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("identity.api_tokens.id", ondelete="CASCADE"), index=True
    )
    last_seen_at: Mapped[datetime] = created_at()
    created_at: Mapped[datetime] = created_at()
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(16))
