"""Rendering: the Jinja2 templates in this package, and what every page shows the same way.

- Times: in the station's zone, written out with its abbreviation, inside a ``<time>`` whose
  ``datetime`` and title (shown on hover, and read out) are the UTC instant.
- Numbers: masked (compliance.phones.mask) unless the role reads message text and full numbers
  (``BODY_ROLES``, the admin API's rule); a full number on a page is an audited VIEW where it
  is read (worker/consent/staff.py's ``consent_summary``).
- Durations in words ("3.2 s", "4 min", "2.5 h", "3.1 days").

Templates autoescape everything; the only markup passed through is the SVG that
compliance/charts.py builds (its text is escaped there).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from compliance.phones import mask
from compliance.report_rules import DEFAULT_TIMEZONE
from worker.web.admin.schemas import BODY_ROLES
from worker.web.dashboard.sessions import Viewer

__all__ = ["HERE", "ROOT", "duration", "may_read_text", "render", "shown_phone", "templates", "when"]

HERE = Path(__file__).parent
ROOT = "/dashboard"  # where worker/web/app.py mounts the dashboard
templates = Jinja2Templates(directory=str(HERE / "templates"))


def when(value: datetime | None, zone: str | None = None) -> Markup:
    """``value`` in ``zone`` (default: the business's fallback zone), with UTC on hover."""
    if value is None:
        return Markup("<span class='muted'>never</span>")
    utc = value.astimezone(UTC)
    local = utc.astimezone(ZoneInfo(zone or DEFAULT_TIMEZONE))
    shown = local.strftime("%Y-%m-%d %H:%M %Z")
    iso = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    hover = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, hover, shown)


def duration(value: timedelta | None) -> str:
    if value is None:
        return "none yet"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def may_read_text(viewer: Viewer) -> bool:
    """Message text, consent evidence and full numbers: the admin API's BODY_ROLES."""
    return viewer.role in BODY_ROLES


def shown_phone(phone: str, viewer: Viewer) -> str:
    return phone if may_read_text(viewer) else mask(phone)


templates.env.filters["when"] = when
templates.env.filters["duration"] = duration
templates.env.filters["fromiso"] = datetime.fromisoformat
templates.env.globals["mask"] = mask
templates.env.globals["root"] = ROOT


def render(
    request: Request, name: str, viewer: Viewer | None, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """The page ``name`` with the viewer, its CSRF token and the navigation."""
    base = {"viewer": viewer, "csrf": viewer.csrf if viewer else "", "now": datetime.now(UTC),
            "may_read_text": may_read_text(viewer) if viewer else False, "path": request.url.path}
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)
