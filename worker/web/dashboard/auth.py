"""Who is asking, before any page work: the session (or a redirect to sign in), the CSRF token, the role.

``page`` gives a route the signed-in ``Viewer`` and the way to its request's one transaction:
``AdminDatabase.transaction`` (worker/web/admin/database.py), the function every admin API
request runs through, so a dashboard page runs as ``msgworker_api`` with the viewer's role and
stations in transaction-local settings, and PostgreSQL's row-level security decides what it
sees. ``changing_page`` is the same for a form post, after checking its CSRF token.

Which roles may do what mirrors the admin API (docs/admin-api.md, "Roles"); it is checked
here for a clear refusal in words, and again by the database's policies.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request
from sqlalchemy.orm import Session

from worker.errors import ErrorKind, Forbidden, UserError
from worker.models import UserRole
from worker.settings import Settings
from worker.web.admin.database import AdminDatabase
from worker.web.admin.schemas import BODY_ROLES
from worker.web.dashboard.sessions import Viewer, cookie_name, csrf_ok, load

__all__ = [
    "ADMINS",
    "CAMPAIGN_ROLES",
    "EXPORT_ROLES",
    "OPT_IN_ROLES",
    "OPT_OUT_ROLES",
    "REVIEW_ROLES",
    "TEXT_ROLES",
    "CsrfRefused",
    "Page",
    "SignInNeeded",
    "changing_page",
    "database",
    "page",
    "require",
]

ADMINS = frozenset({UserRole.SUPER_ADMIN, UserRole.ADMIN})
# As the admin API's role table: support records opt-outs and review decisions, admins opt-ins;
# campaigns are station work (admins and the station's manager); exports are everyone's, a
# station manager's for their stations only.
OPT_OUT_ROLES = ADMINS | {UserRole.CUSTOMER_SUPPORT}
OPT_IN_ROLES = ADMINS
REVIEW_ROLES = ADMINS | {UserRole.CUSTOMER_SUPPORT}
CAMPAIGN_ROLES = ADMINS | {UserRole.STATION_MANAGER}
EXPORT_ROLES = frozenset(UserRole)
# Full numbers, message text and consent evidence (the admin API's BODY_ROLES).
TEXT_ROLES = frozenset(BODY_ROLES)


class SignInNeeded(Exception):
    """No live session: a page asks the person to sign in (again)."""


class CsrfRefused(UserError):
    default_kind = ErrorKind.FORBIDDEN

    def __init__(self) -> None:
        super().__init__("This form did not come from this dashboard page, or the page is older than your "
                         "session. Nothing was changed: reload the page and try again.")


@dataclass(frozen=True, slots=True)
class Page:
    viewer: Viewer
    db: AdminDatabase

    def transaction(self) -> AbstractContextManager[Session]:
        return self.db.transaction(self.viewer)


def database(request: Request) -> AdminDatabase:
    db = request.app.state.dashboard_db
    assert isinstance(db, AdminDatabase)
    return db


def settings_of(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def page(request: Request) -> Page:
    db = database(request)
    settings = settings_of(request)
    with db.as_owner() as session:
        viewer = load(session, request.cookies.get(cookie_name(settings)), settings)
    if viewer is None:
        raise SignInNeeded()
    return Page(viewer, db)


def changing_page(current: Annotated[Page, Depends(page)], csrf_token: Annotated[str, Form()] = "") -> Page:
    if not csrf_ok(csrf_token, current.viewer.csrf):
        raise CsrfRefused()
    return current


def require(viewer: Viewer, roles: frozenset[UserRole], what: str) -> None:
    """Forbidden, in words, unless the viewer's role is one of ``roles``."""
    if viewer.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"Your role ({viewer.role.value}) may not {what}; {allowed} may.")

