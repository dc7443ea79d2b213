"""The overview: was every opt-out in the range honoured, and what needs a person now.

The charts are compliance/charts.py's, drawn with the same titles and axes as the opt-out
report's summary.html (worker/reports/html.py), so the page and the report show one picture.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from compliance.charts import Bar, bar_chart
from compliance.report_rules import CONFIRMATION_LIMIT, HONOUR_LIMIT_BUSINESS_DAYS
from worker.web.dashboard.auth import Page, page
from worker.web.dashboard.choices import choose, codes, date_range
from worker.web.dashboard.overview import overview
from worker.web.dashboard.pages import render

router = APIRouter()


def per_day_chart(per_day: list[tuple[str, int]]) -> str:
    """The report's "Opt-outs per day" chart (worker/reports/html.py draws it with these arguments)."""
    return bar_chart([Bar(day, n) for day, n in per_day], title="Opt-outs per day (UTC)",
                     x_title="day received (UTC)", y_title="revocations", chart_id="per-day")


def latency_chart(distribution: list[tuple[str, int]]) -> str:
    """The report's "Time from receipt to effective" chart."""
    return bar_chart([Bar(label, n) for label, n in distribution], title="Time from receipt to effective",
                     x_title="honour latency", y_title="revocations", chart_id="latency")


@router.get("/")
def overview_page(
    request: Request,
    current: Annotated[Page, Depends(page)],
    station: Annotated[str | None, Query(max_length=32)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=20)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=20)] = None,
) -> Response:
    first, last = date_range(start, end)
    with current.transaction() as session:
        choice = choose(session, station, sees_all=current.viewer.sees_all_stations)
        figures = overview(session, start=first, end=last, chosen=choice.chosen, visible=choice.visible)
        station_codes = codes(choice.visible)
        return render(request, "overview.html", current.viewer, {
            "choice": choice, "figures": figures, "codes": station_codes, "zones": choice.zone_of(),
            "per_day_chart": per_day_chart(figures.per_day), "latency_chart": latency_chart(figures.distribution),
            "honour_limit_days": HONOUR_LIMIT_BUSINESS_DAYS,
            "confirmation_limit_min": int(CONFIRMATION_LIMIT.total_seconds() // 60),
        })
