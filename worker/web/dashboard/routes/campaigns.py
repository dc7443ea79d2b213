"""Campaigns: the list with live progress, a campaign's page with the gate preview, pause, resume, cancel.

Progress is recipients.status_counts, the numbers ``msgworker campaign status`` prints: rows
by state, which always sum to the audience. The campaign page refreshes them in place (a
small script fetches ``/progress`` every few seconds). The gate preview is
worker/campaigns/preview.py's dry run at the planned send time; nothing is written. Pause,
resume and cancel are worker/campaigns/lifecycle.py's, audited, for admins and the station's
manager; the database only lets a request see (and change) its stations' campaigns.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from worker.campaigns import lifecycle, recipients
from worker.campaigns.definitions import get_campaign, list_campaigns
from worker.campaigns.preview import preview
from worker.errors import NotFound
from worker.web.dashboard.auth import CAMPAIGN_ROLES, Page, changing_page, page, require
from worker.web.dashboard.choices import codes, visible_stations
from worker.web.dashboard.pages import ROOT, render

router = APIRouter()

ACTIONS = {"pause": lifecycle.pause, "resume": lifecycle.resume, "cancel": lifecycle.cancel}
_DONE = {"pause": "The campaign is paused: its waiting texts are held.",
         "resume": "The campaign is running again: held texts are due now.",
         "cancel": "The campaign is cancelled: nothing more of it will be sent."}


@router.get("/campaigns")
def campaign_list(request: Request, current: Annotated[Page, Depends(page)]) -> Response:
    with current.transaction() as session:
        rows = [(c, recipients.status_counts(session, c.id)) for c in list_campaigns(session)]
        return render(request, "campaigns.html", current.viewer,
                      {"rows": rows, "codes": codes(visible_stations(session))})


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, campaign_id: uuid.UUID, current: Annotated[Page, Depends(page)]) -> Response:
    with current.transaction() as session:
        campaign = get_campaign(session, campaign_id)
        counts = recipients.status_counts(session, campaign_id)
        dry_run = preview(session, campaign_id, now=datetime.now(UTC))
        stations = visible_stations(session)
        return render(request, "campaign.html", current.viewer, {
            "campaign": campaign, "counts": counts, "preview": dry_run, "codes": codes(stations),
            "zone": next((s.timezone for s in stations if s.id == campaign.station_id), None),
            "may_change": current.viewer.role in CAMPAIGN_ROLES,
            "done": _DONE.get(request.query_params.get("done", "")),
        })


@router.get("/campaigns/{campaign_id}/progress")
def progress(request: Request, campaign_id: uuid.UUID, current: Annotated[Page, Depends(page)]) -> Response:
    """The progress block alone, for the page's in-place refresh."""
    with current.transaction() as session:
        campaign = get_campaign(session, campaign_id)
        counts = recipients.status_counts(session, campaign_id)
        return render(request, "campaign_progress.html", current.viewer, {"campaign": campaign, "counts": counts})


@router.post("/campaigns/{campaign_id}/{action}")
def change(campaign_id: uuid.UUID, action: str, current: Annotated[Page, Depends(changing_page)]) -> Response:
    change_of = ACTIONS.get(action)
    if change_of is None:
        raise NotFound("There is no such campaign action: pause, resume or cancel.", field="action")
    require(current.viewer, CAMPAIGN_ROLES, f"{action} campaigns")
    with current.transaction() as session:
        change_of(session, campaign_id, current.viewer.actor, now=datetime.now(UTC))
    return RedirectResponse(f"{ROOT}/campaigns/{campaign_id}?done={action}", status_code=303)
