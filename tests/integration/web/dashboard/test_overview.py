"""The overview's figures are the opt-out report's, for the same range and station, and its charts the same SVG."""

from __future__ import annotations

import re
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text, update

from tests.factories import make_customer, make_station, phone
from tests.support.consent import make_inbound
from tests.support.dashboard import dashboard_client, sign_in_with_token
from tests.support.reports import export
from worker import pii
from worker.audit import Actor
from worker.consent import review
from worker.consent.inbound import handle_inbound
from worker.consent.ledger import record_event
from worker.db import session_scope
from worker.identity import tokens
from worker.models import OutboundMessage, Station, UserRole
from worker.outbox import enqueue
from worker.web.admin.database import AdminDatabase
from worker.web.dashboard.choices import visible_stations
from worker.web.dashboard.overview import Overview, overview
from worker.web.dashboard.sessions import Viewer

SVG = re.compile(r'<svg[^>]*aria-label="{}".*?</svg>', re.DOTALL)


def _scenario() -> tuple[Station, Station, str]:
    """Two stations: STOPs with sent confirmations, a review-decided opt-out, an opt-out honoured late,
    a carrier opt-out, and at A one marketing text the gate allowed after its number's opt-out."""
    now = datetime.now(UTC)
    with session_scope() as s:
        a, b = make_station(s), make_station(s)
        stops = []
        for station, count in ((a, 3), (b, 2)):
            for _ in range(count):
                customer = make_customer(s, station, phone_e164=phone())
                handle_inbound(s, make_inbound(s, station, customer, "STOP"))
                stops.append(customer)
        # every queued confirmation "sent" a few seconds after
        s.execute(text("UPDATE core.outbound_messages SET status = 'sent', sent_at = now() + interval '3 seconds', "
                       "decided_at = now(), gate_decision = 'allowed' WHERE purpose = 'compliance'"))
        # a review at A, resolved as an opt-out (its station is the reviewed message's)
        number = phone()
        customer = make_customer(s, a, phone_e164=number)
        message = make_inbound(s, a, customer, "please no more")
        _, item = review.open_review(
            s, phone_e164=number, station=a, scope_station_id=None, message_id=message.message_id,
            provider_message_id=message.provider_message_id, received_at=now,
            classification={"rule": "ambiguous_test", "matched": "no more"},
            evidence={"source": "sms_phrase", "received_station_id": str(a.id)})
        assert item is not None
        review.resolve(s, item.id, resolution="opt_out", actor=Actor.cli("reviewer"), note="meant stop")
        # an opt-out received 20 days ago, recorded now: past 10 business days
        record_event(s, phone_e164=phone(), kind="opt_out", purpose="all", source="sms_keyword",
                     evidence={"received_station_id": str(a.id)}, occurred_at=now - timedelta(days=20),
                     station_id=None)
        record_event(s, phone_e164=phone(), kind="carrier_opt_out", purpose="all", source="carrier_error",
                     evidence={"error_code": 21610, "station_id": str(b.id)}, occurred_at=now, station_id=b.id)
        # a text allowed after an opt-out: the violation the overview must show in red
        assert stops[0].phone_encrypted is not None
        bad = enqueue(s, station=a, to=pii.decrypt(stops[0].phone_encrypted, kind="phone"), body="20% off",
                      purpose="marketing", idempotency_key=f"bad:{uuid.uuid4()}").message
        s.execute(update(OutboundMessage).where(OutboundMessage.id == bad.id).values(
            status="sent", gate_decision="allowed", decided_at=datetime.now(UTC) + timedelta(seconds=5),
            sent_at=datetime.now(UTC) + timedelta(seconds=6)))
        return a, b, str(bad.id)


def _figures(station: Station | None, start: date, end: date) -> Overview:
    viewer = Viewer(session_id=uuid.uuid4(), name="t", role=UserRole.ADMIN, station_ids=(), csrf="x")
    with AdminDatabase().transaction(viewer) as session:
        visible = visible_stations(session)
        chosen = [s for s in visible if station is not None and s.id == station.id] if station else None
        return overview(session, start=start, end=end, chosen=chosen, visible=visible)


def _seconds(value: str | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=float(Decimal(value)))


@pytest.mark.parametrize("which", ["a", "b", "all"])
def test_overview_figures_equal_the_reports(clean_db: str, tmp_path: Path, which: str) -> None:
    """Revocations, per day, honour and confirmation p50/p99, late counts and sends after: the report's numbers."""
    a, b, _bad = _scenario()
    station = {"a": a, "b": b, "all": None}[which]
    end = datetime.now(UTC).date()
    start = end - timedelta(days=29)
    report = export(tmp_path, start, end, station=station.code if station else None).summary
    figures = _figures(station, start, end)
    expected = report["figures"]
    assert figures.revocations == expected["revocations"] > 0
    if which == "a":  # the scenario's violations are all at A
        assert (len(figures.sends_after), figures.honour.over_limit) == (1, 1)
    assert [list(d) for d in figures.per_day] == expected["per_day"]
    assert [list(d) for d in figures.distribution] == expected["honour_latency_distribution"]
    for mine, theirs in ((figures.honour, expected["honour_latency"]),
                         (figures.confirmation, expected["confirmation_latency"])):
        assert (mine.p50, mine.p99, mine.count) == (_seconds(theirs["p50_s"]), _seconds(theirs["p99_s"]),
                                                     int(theirs["count"]))
    counts = report["violations"]["counts"]
    assert figures.honour.over_limit == counts.get("honoured_late", 0)
    assert figures.confirmation.over_limit == counts.get("confirmation_late", 0)
    assert len(figures.sends_after) == expected["sends_after_opt_out"]
    assert figures.carrier_opt_outs == expected["by_detection_method"].get("error_21610", 0)


def test_a_send_after_opt_out_is_red_and_links_the_text(clean_db: str) -> None:
    """The figure reads 1 (not 0), the block is marked as a violation, and the offending text is linked."""
    a, _b, bad = _scenario()
    with session_scope() as s:
        issued = tokens.create_token(s, name="overview", role=UserRole.ADMIN, actor=Actor.cli("test"))
    with dashboard_client() as client:
        sign_in_with_token(client, issued.secret)
        page = client.get(f"/dashboard/?station={a.code}")
    assert page.status_code == 200
    block = page.text.split('id="sends-after"', 1)[1].split("</section>", 1)[0]
    assert 'class="verdict bad"' in page.text.split('id="sends-after"', 1)[0].rsplit("<section", 1)[1]
    assert 'data-figure="sends-after">1<' in block
    assert "Violation:" in block
    assert f"text {bad}</a>" in block
    assert 'href="/dashboard/numbers/' in block


def test_the_overview_draws_the_reports_charts(clean_db: str, tmp_path: Path) -> None:
    """The per-day and latency charts on the overview are byte for byte the ones in the report's summary.html."""
    a, _b, _bad = _scenario()
    end = datetime.now(UTC).date()
    start = end - timedelta(days=29)
    exported = export(tmp_path, start, end, station=a.code)
    html = zipfile.ZipFile(exported.path).read("summary.html").decode()
    with session_scope() as s:
        issued = tokens.create_token(s, name="charts", role=UserRole.ADMIN, actor=Actor.cli("test"))
    with dashboard_client() as client:
        sign_in_with_token(client, issued.secret)
        page = client.get(f"/dashboard/?station={a.code}&from={start}&to={end}").text
    for label in ("Opt-outs per day (UTC)", "Time from receipt to effective"):
        pattern = re.compile(SVG.pattern.format(re.escape(label)), re.DOTALL)
        theirs, mine = pattern.search(html), pattern.search(page)
        assert theirs is not None
        assert mine is not None
        assert mine.group(0) == theirs.group(0)


def test_an_empty_range_says_what_to_do(clean_db: str) -> None:
    """No opt-out in the range: the page says so and what to try, and the sends-after figure reads 0 (none)."""
    with session_scope() as s:
        make_station(s)
        issued = tokens.create_token(s, name="empty", role=UserRole.ADMIN, actor=Actor.cli("test"))
    with dashboard_client() as client:
        sign_in_with_token(client, issued.secret)
        page = client.get("/dashboard/").text
        bad = client.get("/dashboard/?from=2026-13-01")
    assert "No opt-outs were received in this range" in page
    assert 'data-figure="sends-after">0<' in page
    assert bad.status_code == 422
    assert "is not a date: use YYYY-MM-DD" in bad.text
