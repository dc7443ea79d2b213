"""public.audit_logs: who did what, written in the same transaction as the change itself.

A change and its audit row commit together or not at all, so the log never claims a change
that was rolled back, and no committed change lacks its row. Every change a person makes
(and every read that shows a full phone number or exports data, as ``VIEW``) goes through
``record``, which takes an ``Actor``: there is no way to write an anonymous row.

The actor column holds ``Actor.label``: ``cli:<name>`` for the command line (the spelling
earlier rows and reports use), ``api:<name>`` / ``dashboard:<name>`` for the admin API and
dashboard to come (with the staff user id in ``user_id``, and the token and role in the label
so a row says which credential acted), and ``system:<job>`` for beat jobs acting on a rule's
behalf (the review deadline), as before.
"""

from __future__ import annotations

import getpass
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from worker.errors import InvalidInput
from worker.models import AuditAction, AuditLog

__all__ = ["Actor", "Via", "record"]

Via = Literal["cli", "api", "dashboard", "beat"]

# audit_logs.actor is VARCHAR(200); a label longer than that would fail the whole change.
_LABEL_MAX = 200
# Beat rows keep the "system:" prefix that rows written before Actor existed carry.
_PREFIX: dict[Via, str] = {"cli": "cli", "api": "api", "dashboard": "dashboard", "beat": "system"}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, and through what: the value every audited change requires.

    Not validated on construction, so a service can refuse a blank name with its own error
    first (``--by must name ...``); ``record`` refuses one before anything is written.
    """

    who: str
    via: Via
    user_id: uuid.UUID | None = None
    token_id: str | None = None
    role: str | None = None

    @classmethod
    def cli(cls, name: str) -> Actor:
        """The person named on the command line (``--by``)."""
        return cls(who=name.strip(), via="cli")

    @classmethod
    def os_user(cls) -> Actor:
        """Whoever runs the command, for commands without ``--by`` (station add, pii rotate...)."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
            user = "unknown"
        return cls.cli(user)

    @classmethod
    def beat(cls, job: str) -> Actor:
        """A scheduled job applying a rule (the review deadline), not a person."""
        return cls(who=job, via="beat")

    @property
    def label(self) -> str:
        """What goes in ``audit_logs.actor`` (see the module docstring)."""
        base = f"{_PREFIX[self.via]}:{self.who}"
        extras = [f"{key}={value}" for key, value in (("role", self.role), ("token", self.token_id)) if value]
        return ";".join([base, *extras])

    @property
    def name(self) -> str:
        """The name written into ledger evidence and review rows: the person, or ``system:<job>``."""
        return self.label.split(";", 1)[0] if self.via == "beat" else self.who


def _checked(actor: Actor) -> str:
    if not actor.who.strip():
        raise InvalidInput("say who is making this change (an empty name cannot be audited)", field="actor")
    label = actor.label
    if len(label) > _LABEL_MAX:
        raise InvalidInput(f"the actor name is too long for the audit log (at most {_LABEL_MAX} characters in all)",
                           field="actor")
    return label


def record(
    session: Session,
    actor: Actor,
    *,
    action: AuditAction,
    resource_type: str,
    resource_id: str | uuid.UUID | None,
    station_id: uuid.UUID | None = None,
    old_values: dict[str, Any] | None = None,
    new_values: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditLog:
    """Add the action's one audit row to the caller's transaction (flushed; the caller commits).

    Never phone numbers or message bodies in the values: a row may be read by anyone who may
    read the log, which is more people than may read the data.
    """
    row = AuditLog(
        user_id=actor.user_id,
        actor=_checked(actor),
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
