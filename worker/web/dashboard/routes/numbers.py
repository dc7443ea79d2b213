"""Number lookup and a number's page, with the staff actions: opt-out, opt-in with evidence, dossier.

The number is typed into a form (POST), never put in a URL; its page is addressed by its blind
index. Each action calls the same service as ``msgworker consent opt-out|opt-in`` and
``msgworker report number``, audited with the signed-in person as the actor.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from compliance.phones import normalize
from worker.consent import staff
from worker.errors import InvalidInput, NotFound
from worker.models import Station
from worker.reports.dossier import export_number
from worker.web.dashboard.auth import OPT_IN_ROLES, OPT_OUT_ROLES, TEXT_ROLES, Page, changing_page, page, require
from worker.web.dashboard.choices import choose, codes
from worker.web.dashboard.downloads import download
from worker.web.dashboard.numbers import index_of, number_view, phone_of
from worker.web.dashboard.pages import ROOT, may_read_text, render, shown_phone

router = APIRouter()

_INDEX = re.compile(r"[0-9a-f]{64}")
_DONE = {
    "opt_out": "The staff opt-out is recorded in the ledger; the number's unsent texts were cancelled.",
    "opt_in": "The opt-in is recorded in the ledger with its evidence.",
}


def _index(value: str) -> bytes:
    if not _INDEX.fullmatch(value):
        raise NotFound("There is no such number page: look the number up again.", field="number")
    return bytes.fromhex(value)


@router.get("/numbers")
def lookup_form(request: Request, current: Annotated[Page, Depends(page)]) -> Response:
    return render(request, "lookup.html", current.viewer, {})


@router.post("/numbers/lookup")
def lookup(request: Request, current: Annotated[Page, Depends(changing_page)],
           phone: Annotated[str, Form(max_length=40)] = "") -> Response:
    if not phone.strip():
        raise InvalidInput("Type a phone number to look up, e.g. (212) 555-0142 or +12125550142.", field="phone")
    index = index_of(phone)
    with current.transaction() as session:
        try:
            phone_of(session, current.viewer, index)
        except NotFound:
            if not current.viewer.sees_all_stations:
                raise
            e164 = normalize(phone, require_valid=False)
            return render(request, "number_empty.html", current.viewer,
                          {"index": index.hex(), "phone": e164, "shown": shown_phone(e164, current.viewer)})
    return RedirectResponse(f"{ROOT}/numbers/{index.hex()}", status_code=303)


@router.get("/numbers/{index_hex}")
def number_page(request: Request, index_hex: str, current: Annotated[Page, Depends(page)]) -> Response:
    index = _index(index_hex)
    viewer = current.viewer
    with current.transaction() as session:
        view = number_view(session, viewer, index, with_text=may_read_text(viewer))
        choice = choose(session, None, sees_all=viewer.sees_all_stations)
        return render(request, "number.html", viewer, {
            "view": view, "shown": shown_phone(view.phone, viewer), "codes": codes(choice.visible),
            "zones": choice.zone_of(), "stations": choice.visible,
            "done": _DONE.get(request.query_params.get("done", "")),
            "may_opt_out": viewer.role in OPT_OUT_ROLES, "may_opt_in": viewer.role in OPT_IN_ROLES,
        })


def _phone(session: Session, current: Page, index: bytes, typed: str) -> str:
    """The number behind the page, or the one typed on the empty page (it must be the same number)."""
    try:
        return phone_of(session, current.viewer, index)[0]
    except NotFound:
        if typed and current.viewer.sees_all_stations and index_of(typed) == index:
            return normalize(typed, require_valid=False)
        raise


def _scope(session: Session, code: str) -> Station | None:
    if not code:
        return None
    chosen = choose(session, code, sees_all=True).chosen
    return chosen[0] if chosen else None


@router.post("/numbers/{index_hex}/opt-out")
def opt_out(
    index_hex: str,
    current: Annotated[Page, Depends(changing_page)],
    purpose: Annotated[str, Form()] = "all",
    scope: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    phone: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    require(current.viewer, OPT_OUT_ROLES, "record opt-outs")
    index = _index(index_hex)
    if purpose not in ("all", "marketing"):
        raise InvalidInput("Choose what the opt-out covers: every text, or marketing only.", field="purpose")
    with current.transaction() as session:
        staff.staff_opt_out(session, _phone(session, current, index, phone), actor=current.viewer.actor,
                            station=_scope(session, scope), purpose=purpose, note=note.strip() or None)
    return RedirectResponse(f"{ROOT}/numbers/{index_hex}?done=opt_out", status_code=303)


@router.post("/numbers/{index_hex}/opt-in")
async def opt_in(
    index_hex: str,
    current: Annotated[Page, Depends(changing_page)],
    purpose: Annotated[str, Form()] = "",
    evidence: Annotated[str, Form(max_length=20000)] = "",
    consented_at: Annotated[str, Form(max_length=40)] = "",
    scope: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    phone: Annotated[str, Form(max_length=40)] = "",
    evidence_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    require(current.viewer, OPT_IN_ROLES, "record opt-ins")
    index = _index(index_hex)
    if purpose not in ("marketing", "transactional", "all"):
        raise InvalidInput("Choose what the consent is for: marketing, transactional or all.", field="purpose")
    uploaded = await evidence_file.read(staff.MAX_EVIDENCE_BYTES + 1) if evidence_file is not None else b""
    if not evidence.strip() and not uploaded:
        raise InvalidInput("An opt-in needs its evidence: describe how consent was given (form, wording, date, "
                           "where it is kept) or attach the signed form.", field="evidence")
    if uploaded:
        proof = staff.Evidence(name=(evidence_file.filename if evidence_file else None) or "evidence",
                               data=uploaded)
    else:
        document = {"description": evidence.strip(), "captured_via": "dashboard",
                    "recorded_at": datetime.now(UTC).isoformat()}
        if consented_at.strip():
            document["consented_at"] = consented_at.strip()
        proof = staff.Evidence(name="dashboard-evidence.json", data=json.dumps(document, sort_keys=True).encode())
    return _record_opt_in(current, index, index_hex, purpose, proof, scope, note, phone)


def _record_opt_in(current: Page, index: bytes, index_hex: str, purpose: str, proof: staff.Evidence, scope: str,
                   note: str, phone: str) -> Response:
    with current.transaction() as session:
        staff.staff_opt_in(session, _phone(session, current, index, phone), purpose=purpose, evidence_file=proof,
                           actor=current.viewer.actor, station=_scope(session, scope), note=note.strip() or None)
    return RedirectResponse(f"{ROOT}/numbers/{index_hex}?done=opt_in", status_code=303)


@router.post("/numbers/{index_hex}/dossier")
def dossier(index_hex: str, current: Annotated[Page, Depends(changing_page)],
            unmask: Annotated[bool, Form()] = False) -> Response:
    require(current.viewer, TEXT_ROLES, "download a dossier (it holds full numbers and message text)")
    index = _index(index_hex)
    with current.transaction() as session:
        phone = phone_of(session, current.viewer, index)[0]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return download(current.db, f"dossier-{index_hex[:12]}-{stamp}.zip",
                    lambda s, out: export_number(s, phone, out=out, unmask=unmask, actor=current.viewer.actor))
