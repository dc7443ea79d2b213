"""Reports: choose a range and a station, download the opt-out audit ZIP, see the last exports and who made them.

The export is ``msgworker report opt-outs`` (worker/reports/export.py) with the signed-in
person as the audited actor (worker/web/dashboard/downloads.py says how it runs). A station
manager exports one of their stations (the database must return it to them) with numbers
masked; full numbers are for roles that read them. The list of exports is the audit log's
export rows that the request may read: every one for admins, a person's own otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.errors import InvalidInput
from worker.models import AuditLog
from worker.reports.export import OptOutRequest, export_opt_outs
from worker.web.dashboard.auth import EXPORT_ROLES, TEXT_ROLES, Page, changing_page, page, require
from worker.web.dashboard.choices import choose, codes, date_range, visible_stations
from worker.web.dashboard.downloads import download
from worker.web.dashboard.pages import render

router = APIRouter()

EXPORT_KINDS = ("opt_out_report", "number_dossier")
LISTED = 20


def _exports(session: Session) -> list[AuditLog]:
    return list(session.execute(
        select(AuditLog).where(AuditLog.resource_type.in_(EXPORT_KINDS))
        .order_by(AuditLog.created_at.desc(), AuditLog.id).limit(LISTED)
    ).scalars())


def _parameters(row: AuditLog) -> dict[str, Any]:
    values = row.new_values or {}
    params = values.get("parameters")
    return params if isinstance(params, dict) else {}


@router.get("/reports")
def reports_page(request: Request, current: Annotated[Page, Depends(page)]) -> Response:
    first, last = date_range(None, None)
    with current.transaction() as session:
        stations = visible_stations(session)
        return render(request, "reports.html", current.viewer, {
            "stations": stations, "codes": codes(stations), "exports": _exports(session),
            "parameters": _parameters, "first": first, "last": last,
            "may_unmask": current.viewer.role in TEXT_ROLES,
        })


@router.post("/reports/opt-outs")
def export(
    current: Annotated[Page, Depends(changing_page)],
    start: Annotated[str, Form(alias="from", max_length=20)] = "",
    end: Annotated[str, Form(alias="to", max_length=20)] = "",
    station: Annotated[str, Form(max_length=32)] = "",
    unmask: Annotated[bool, Form()] = False,
) -> Response:
    viewer = current.viewer
    require(viewer, EXPORT_ROLES, "export reports")
    if unmask:
        require(viewer, TEXT_ROLES, "export full phone numbers")
    first, last = date_range(start or None, end or None)
    if last > datetime.now(UTC).date():
        raise InvalidInput(f"The range ends {last}, in the future: a report covers what has happened.", field="to")
    with current.transaction() as session:
        choice = choose(session, station, sees_all=viewer.sees_all_stations)
    if choice.chosen is not None and len(choice.chosen) != 1:
        raise InvalidInput("Pick the station to report on (you see several).", field="station")
    code = choice.chosen[0].code if choice.chosen else None
    request = OptOutRequest(first, last, code, unmask)
    name = f"opt-outs-{first}-{last}" + (f"-{code}" if code else "") + ".zip"
    return download(current.db, name, lambda s, out: export_opt_outs(s, request, actor=viewer.actor, out=out))
