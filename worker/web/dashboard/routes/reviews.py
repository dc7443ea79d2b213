"""The review queue: ambiguous replies a person must read, nearest deadline first, and resolving one.

The deadline is shown as business days left in the station's zone (compliance.business_days,
as the deadline tick counts them); an item past it is marked overdue. Resolving is
worker/consent/review.py's ``resolve``, as ``msgworker review resolve`` and the admin API do:
as an opt-out, the ledger event and its one confirmation text; either way the audit row.
The reply's text is shown only to roles that read message text.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from compliance.business_days import business_days_between
from compliance.report_rules import DEFAULT_TIMEZONE
from worker.consent import review
from worker.errors import InvalidInput
from worker.web.dashboard.auth import REVIEW_ROLES, Page, changing_page, page, require
from worker.web.dashboard.pages import ROOT, render

router = APIRouter()

_DONE = {
    "opt_out": "Resolved as an opt-out: recorded in the ledger, and its one confirmation text is queued.",
    "not_opt_out": "Resolved as not an opt-out: recorded in the ledger with your note.",
}


@router.get("/reviews")
def queue(request: Request, current: Annotated[Page, Depends(page)]) -> Response:
    now = datetime.now(UTC)
    with current.transaction() as session:
        items = [
            (item, station, business_days_between(now, item.deadline_at,
                                                  station.timezone if station else DEFAULT_TIMEZONE))
            for item, station in review.list_open(session)
        ]
        return render(request, "reviews.html", current.viewer, {
            "items": items, "may_resolve": current.viewer.role in REVIEW_ROLES,
            "done": _DONE.get(request.query_params.get("done", "")), "default_zone": DEFAULT_TIMEZONE,
        })


@router.post("/reviews/{item_id}/resolve")
def resolve(
    item_id: uuid.UUID,
    current: Annotated[Page, Depends(changing_page)],
    resolution: Annotated[str, Form()] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require(current.viewer, REVIEW_ROLES, "resolve review items")
    if resolution not in ("opt_out", "not_opt_out"):
        raise InvalidInput("Choose whether the message was an opt-out or not.", field="resolution")
    if not note.strip():
        raise InvalidInput("Write a note: what the message meant, in your words. It goes into the ledger.",
                           field="note")
    with current.transaction() as session:
        review.resolve(session, item_id, resolution="opt_out" if resolution == "opt_out" else "not_opt_out",
                       actor=current.viewer.actor, note=note.strip())
    return RedirectResponse(f"{ROOT}/reviews?done={resolution}", status_code=303)
