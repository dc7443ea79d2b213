"""msgworker campaign: create, look at, dry-run, start, pause, resume, cancel and follow campaigns.

Every change is an audited staff action (``--by NAME``, default: whoever runs the command).
Each command prints plain lines, or one JSON document with ``--json``. The worker's beat tick
picks every change up within one tick (five seconds); nothing needs restarting.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worker.audit import Actor
from worker.campaigns import definitions, lifecycle, preview, recipients
from worker.campaigns.schedules import ScheduleInput
from worker.cli.common import refusals, setup
from worker.db import session_scope
from worker.errors import InvalidInput
from worker.identity.stations import find_station
from worker.inputs import parse_date, parse_id, parse_time
from worker.models import Campaign

app = typer.Typer(no_args_is_help=True, help="Campaigns: review requests, coupons, broadcasts.")

_BY = typer.Option(None, "--by", help="who makes the change (audit log); default: your OS user")
_JSON = typer.Option(False, "--json", help="one JSON document on stdout")


def _actor(by: str | None) -> Actor:
    return Actor.cli(by) if by else Actor.os_user()


def _duration(value: str | None, field: str) -> timedelta | None:
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = value.strip().lower()
    if len(raw) < 2 or raw[-1] not in units or not raw[:-1].isdigit():
        raise InvalidInput(f"{field} {value!r}: a number and a unit, e.g. 90m, 2h, 1d", field=field)
    return timedelta(seconds=int(raw[:-1]) * units[raw[-1]])


def _campaign_id(value: str) -> Any:
    return parse_id(value, what="a campaign id", hint=" (see `msgworker campaign list`)")


def _show(campaign: Campaign, counts: recipients.StatusCounts | None = None) -> dict[str, Any]:
    out = definitions.describe(campaign)
    out["next_run_at"] = campaign.next_run_at.isoformat() if campaign.next_run_at else None
    if counts is not None:
        out["audience"] = counts.total
        out["states"] = counts.by_state()
        out["reasons"] = counts.by_reason()
    return out


@app.command("create")
def create(
    kind: str = typer.Option(..., "--kind", help="review_request | coupon | broadcast"),
    name: str = typer.Option(..., "--name"),
    station: str | None = typer.Option(None, "--station", help="station code (default: every station)"),
    template: str | None = typer.Option(None, "--template", help="text with {first_name} {brand} {station_name} "
                                        "{coupon_code} {review_link} {booking_date}"),
    at: str | None = typer.Option(None, "--at", help="once at this ISO time (no offset: the station's zone); "
                                  "with --rrule, the first occurrence"),
    rrule: str | None = typer.Option(None, "--rrule", help="recurring: an RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=FR"),
    local_time: str | None = typer.Option(None, "--local-time", help="HH:MM on each recipient's own clock (with --on)"),
    on: str | None = typer.Option(None, "--on", help="the date of a --local-time send (YYYY-MM-DD)"),
    next_day_at: str | None = typer.Option(None, "--next-day-at", help="review requests: next day at HH:MM local "
                                           "(default 11:00)"),
    after: str | None = typer.Option(None, "--after", help="review requests: this long after completion (e.g. 2h)"),
    zone: str | None = typer.Option(None, "--zone", help="IANA zone of an all-station --rrule (default New York)"),
    pool: str | None = typer.Option(None, "--pool", help="coupon pool id"),
    review_link: str | None = typer.Option(None, "--review-link", help="public review page ({review_link})"),
    reminder_template: str | None = typer.Option(None, "--reminder-template"),
    no_reminder: bool = typer.Option(False, "--no-reminder", help="review requests: no reminder after 3 days"),
    recovery_template: str | None = typer.Option(None, "--recovery-template",
                                                 help="review requests: the service-recovery text ({coupon_code})"),
    missed: str = typer.Option("skip", "--missed", help="a run missed while the worker was down: skip | send_within"),
    missed_window: str | None = typer.Option(None, "--missed-window", help="with send_within: e.g. 2h"),
    local_passed: str = typer.Option("next_day", "--local-passed", help="local time already past: next_day | skip"),
    cooldown_days: int = typer.Option(180, "--cooldown-days", help="review requests: per number"),
    by: str | None = _BY,
    as_json: bool = _JSON,
) -> None:
    """Create a draft campaign (checked whole: station, placeholders, schedule, pool); start it with `start`."""
    setup()
    now = datetime.now(UTC)
    with refusals(), session_scope() as session:
        zone_name = "America/New_York"
        if station:
            zone_name = find_station(session, station).timezone
        tz = ZoneInfo(zone or zone_name)
        spec = definitions.CampaignSpec(
            kind=kind, name=name, station_code=station, template=template,
            schedule=ScheduleInput(
                at=parse_time(at, field="--at", example="2026-12-11T10:00", default_zone=tz) if at else None,
                rrule=rrule, local_time=local_time,
                on=_date(on), next_day_at=next_day_at, after=_duration(after, "--after"),
            ),
            zone=zone, pool_id=parse_id(pool, what="a pool id", field="pool") if pool else None,
            review_link=review_link, reminder_template=reminder_template, reminder=not no_reminder,
            recovery_template=recovery_template, missed_policy=missed,
            missed_window=_duration(missed_window, "--missed-window"), local_passed=local_passed,
            cooldown_days=cooldown_days,
        )
        campaign = definitions.create_campaign(session, spec, _actor(by), now=now)
        shown = _show(campaign)
    if as_json:
        typer.echo(json.dumps(shown))
        return
    typer.echo(f"campaign {shown['id']} created (draft): {shown['kind']} {shown['name']!r}, purpose "
               f"{shown['purpose']}; preview it with `msgworker campaign preview {shown['id']}`, then `start` it")
    typer.echo(f"  text: {shown['template']}")


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    return parse_date(value, field="--on")


@app.command("list")
def list_(as_json: bool = _JSON) -> None:
    """Campaigns, newest first."""
    setup()
    with session_scope() as session:
        rows = [_show(c) for c in definitions.list_campaigns(session)]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no campaigns (create one with `msgworker campaign create`)")
    for r in rows:
        typer.echo(f"{r['id']}  {r['status']:<9}  {r['kind']:<14}  {r['purpose']:<13}  next {r['next_run_at'] or '-'}"
                   f"  {r['name']}")


@app.command("show")
def show(campaign_id: str = typer.Argument(...), as_json: bool = _JSON) -> None:
    """The campaign's definition and its recipients by state."""
    setup()
    with refusals(), session_scope() as session:
        parsed = _campaign_id(campaign_id)
        campaign = definitions.get_campaign(session, parsed)
        shown = _show(campaign, recipients.status_counts(session, parsed))
        shown["steps"] = {s.step: {"template": s.template, "after_seconds": s.after_seconds}
                          for s in definitions.steps_of(session, parsed).values()}
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        typer.echo(f"{key}: {value}")


@app.command("preview")
def preview_(campaign_id: str = typer.Argument(...), as_json: bool = _JSON) -> None:
    """Dry run of the send gate over the audience at the planned send time, by outcome and reason (writes nothing)."""
    setup()
    with refusals(), session_scope() as session:
        result = preview.preview(session, _campaign_id(campaign_id), now=datetime.now(UTC))
        session.rollback()
    shown = result.to_json()
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(f"audience {shown['audience']} at {shown['planned_at'] or 'each recipient own time'}")
    for outcome, n in shown["outcomes"].items():
        typer.echo(f"  {outcome:<34} {n:>8}   e.g. {', '.join(shown['samples'].get(outcome, [])) or '-'}")
    if shown["deferred"]:
        typer.echo(f"  deferred texts would go between {shown['deferred']['from']} and {shown['deferred']['to']}")
    typer.echo(f"text: up to {shown['segments']} segment(s), {shown['encoding']}, {shown['longest_text']} characters "
               "with the longest values")
    if shown["pool_available"] is not None:
        typer.echo(f"pool: {shown['pool_available']} codes available; short by {shown['pool_short_by']}")


def _change(action: str, campaign_id: str, by: str | None, as_json: bool) -> None:
    setup()
    change = {"start": lifecycle.start, "pause": lifecycle.pause, "resume": lifecycle.resume,
              "cancel": lifecycle.cancel}[action]
    with refusals(), session_scope() as session:
        campaign = change(session, _campaign_id(campaign_id), _actor(by), now=datetime.now(UTC))
        shown = _show(campaign)
    if as_json:
        typer.echo(json.dumps(shown))
        return
    typer.echo(f"campaign {shown['id']} {shown['status']}" + (
        f"; first run {shown['next_run_at']}" if action == "start" and shown["next_run_at"] else ""))


@app.command("start")
def start(
    campaign_id: str = typer.Argument(...),
    wait: bool = typer.Option(False, "--wait", help="follow the run: messages decided and sent"),
    timeout: float = typer.Option(600.0, "--timeout", help="seconds --wait follows at most"),
    by: str | None = _BY, as_json: bool = _JSON,
) -> None:
    """Start a draft: scheduled for its first run (review requests: enrolling from now). Refused while a
    coupon pool holds fewer codes than the audience (unless it has a fallback code)."""
    _change("start", campaign_id, by, as_json)
    if wait:
        _follow(_campaign_id(campaign_id), timeout)


def _follow(campaign_id: Any, timeout: float) -> None:
    """A progress bar of messages decided (sent, blocked, skipped...) and sent, never of rows fetched."""
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as bar:
        decided = bar.add_task("decided", total=None)
        sent = bar.add_task("sent", total=None)
        while time.monotonic() < deadline:
            with session_scope() as session:
                counts = recipients.status_counts(session, campaign_id)
                status = definitions.get_campaign(session, campaign_id).status
            total = counts.total or None
            bar.update(decided, completed=counts.decided, total=total)
            bar.update(sent, completed=counts.sent, total=total)
            if status in ("completed", "cancelled"):
                break
            time.sleep(1.0)
    typer.echo(f"campaign {campaign_id}: {status}; " + ", ".join(f"{k} {v}" for k, v in counts.by_state().items()))


@app.command("pause")
def pause(campaign_id: str = typer.Argument(...), by: str | None = _BY, as_json: bool = _JSON) -> None:
    """Stop queueing; texts still waiting in the outbox are held there until resume."""
    _change("pause", campaign_id, by, as_json)


@app.command("resume")
def resume(campaign_id: str = typer.Argument(...), by: str | None = _BY, as_json: bool = _JSON) -> None:
    """Go on where it stopped: held texts are decided again now; nothing is sent twice."""
    _change("resume", campaign_id, by, as_json)


@app.command("cancel")
def cancel(campaign_id: str = typer.Argument(...), by: str | None = _BY, as_json: bool = _JSON) -> None:
    """Cancel every text not yet sent, including those already queued in the outbox."""
    _change("cancel", campaign_id, by, as_json)


@app.command("edit")
def edit(
    campaign_id: str = typer.Argument(...),
    template: str | None = typer.Option(None, "--template"),
    reminder_template: str | None = typer.Option(None, "--reminder-template"),
    by: str | None = _BY, as_json: bool = _JSON,
) -> None:
    """New text: the schedule version is bumped; texts already queued stay, the rest use the new text."""
    setup()
    with refusals(), session_scope() as session:
        campaign = definitions.edit_templates(session, _campaign_id(campaign_id), _actor(by), template=template,
                                              reminder_template=reminder_template)
        shown = _show(campaign)
    if as_json:
        typer.echo(json.dumps(shown))
        return
    typer.echo(f"campaign {shown['id']} edited: schedule version {shown['schedule_version']}")


@app.command("status")
def status(campaign_id: str = typer.Argument(...), as_json: bool = _JSON) -> None:
    """Recipients by state (they always sum to the audience), by step and reason."""
    setup()
    with refusals(), session_scope() as session:
        parsed = _campaign_id(campaign_id)
        campaign = definitions.get_campaign(session, parsed)
        counts = recipients.status_counts(session, parsed)
        state = campaign.status
    shown = {"id": str(parsed), "status": state, "audience": counts.total, "states": counts.by_state(),
             "reasons": counts.by_reason(), "decided": counts.decided, "sent": counts.sent,
             "by_step": [{"step": s, "state": st, "reason": r, "held_for_review": h, "count": n}
                         for s, st, r, h, n in counts.rows]}
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(f"campaign {parsed} {state}: audience {counts.total}")
    for s, st, r, h, n in counts.rows:
        typer.echo(f"  step {s}  {st:<10} {(r or ''):<24} {n:>8}" + ("  (held for review)" if h else ""))
