"""``msgworker``: the operator's command line.

Each command group lives in its own module and is registered here; commands open their
own ``session_scope()`` and print plain, greppable lines (``--json`` where scripts read
the output). Errors exit non-zero with one line that says what to do.
"""

from __future__ import annotations

import typer

from worker.cli import booking as booking_cli
from worker.cli import campaign as campaign_cli
from worker.cli import consent as consent_cli
from worker.cli import coupon as coupon_cli
from worker.cli import db as db_cli
from worker.cli import demo as demo_cli
from worker.cli import doctor as doctor_cli
from worker.cli import fake_twilio as fake_twilio_cli
from worker.cli import feedback as feedback_cli
from worker.cli import inbox as inbox_cli
from worker.cli import ledger as ledger_cli
from worker.cli import pii as pii_cli
from worker.cli import report as report_cli
from worker.cli import review as review_cli
from worker.cli import run as run_cli
from worker.cli import send as send_cli
from worker.cli import stations as stations_cli
from worker.cli import token as token_cli
from worker.cli import user as user_cli
from worker.cli import web as web_cli
from worker.settings import SettingsError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(db_cli.app, name="db", help="Database migrations.")
app.add_typer(user_cli.app, name="user", help="Dashboard users (e-mail and password): create.")
app.add_typer(consent_cli.app, name="consent", help="Consent: show a number, staff opt-in/opt-out, import.")
app.add_typer(review_cli.app, name="review", help="The consent review queue (ambiguous messages).")
app.add_typer(ledger_cli.app, name="ledger", help="The consent ledger: verify its hash chain.")
app.add_typer(report_cli.app, name="report", help="Compliance evidence: opt-out report, number dossier, verify.")
app.command("web")(web_cli.web)
app.command("fake-twilio")(fake_twilio_cli.fake_twilio)
app.add_typer(stations_cli.station_app, name="station", help="Stations (franchise locations).")
app.add_typer(stations_cli.sender_app, name="sender", help="Stations' sender addresses (numbers, page ids).")
app.add_typer(pii_cli.app, name="pii", help="PII encryption keys: usage and rotation.")
app.command("doctor")(doctor_cli.doctor)
app.add_typer(inbox_cli.app, name="inbox", help="Webhook inbox: failed rows, retry, show, stats.")
app.command("run")(run_cli.run)
app.add_typer(send_cli.app, name="send", help=send_cli.app.info.help)
app.command("demo")(demo_cli.demo)
app.add_typer(token_cli.app, name="token", help="Bearer tokens for the admin API: create, list, revoke.")
app.add_typer(campaign_cli.app, name="campaign", help=campaign_cli.app.info.help)
app.add_typer(coupon_cli.app, name="coupon", help=coupon_cli.app.info.help)
app.add_typer(booking_cli.app, name="booking", help=booking_cli.app.info.help)
app.add_typer(feedback_cli.app, name="feedback", help=feedback_cli.app.info.help)


def main() -> None:
    # Unusable settings (production with a missing or development secret) stop every
    # command with the settings' names and EX_CONFIG, not a traceback.
    try:
        app()
    except SettingsError as exc:
        typer.secho(f"msgworker: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(78) from None
