"""public.audit_logs: who did what, written in the same transaction as the change itself.

A change and its audit row commit together or not at all, so the log never claims a change
that was rolled back, and no committed change lacks its row.
"""

from __future__ import annotations

import getpass
import uuid
from typing import Any

from sqlalchemy.orm import Session

from worker.models import AuditAction, AuditLog

__all__ = ["cli_actor", "record"]


def cli_actor() -> str:
    """``cli:<os user>``: who ran a command, when there is no staff user row."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        user = "unknown"
    return f"cli:{user}"


def record(
    session: Session,
    *,
    actor: str,
    action: AuditAction,
    resource_type: str,
    resource_id: str | uuid.UUID | None,
    station_id: uuid.UUID | None = None,
    old_values: dict[str, Any] | None = None,
    new_values: dict[str, Any] | None = None,
    reason: str | None = None,
    user_id: uuid.UUID | None = None,
) -> AuditLog:
    """Add one audit row to the session's transaction (the caller commits)."""
    row = AuditLog(
        user_id=user_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        station_id=station_id,
        old_values=old_values,
        new_values=new_values,
        reason=reason,
    )
    session.add(row)
    session.flush()
    return row
