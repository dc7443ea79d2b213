"""msgworker fake-twilio: run the local fake Twilio API in the foreground (demo, manual testing)."""

from __future__ import annotations

import typer

from worker.cli.common import fail, setup
from worker.provider.fake import FakeTwilio
from worker.settings import get_settings


def fake_twilio(
    host: str = typer.Option("127.0.0.1", help="interface to bind (the /_fake/ admin API has no auth)"),
    port: int = typer.Option(8099, help="port to bind (0: any free port)"),
    account_sid: str | None = typer.Option(None, help="account SID to accept (default: TWILIO_ACCOUNT_SID)"),
    auth_token: str | None = typer.Option(None, help="auth token to accept and sign with (default: TWILIO_AUTH_TOKEN)"),
    callbacks: str = typer.Option(
        "sent,delivered", help="statuses posted to each StatusCallback, comma-separated ('' for none)"
    ),
    callback_delay: float = typer.Option(0.2, help="seconds before each status callback"),
    route: list[str] = typer.Option(
        [],
        help="PUBLIC_PREFIX=ACTUAL_PREFIX: deliver callbacks for the public URL to a local one, signed for the public"
        " one (repeatable)",
    ),
) -> None:
    """Serve a fake Twilio Messages API; point TWILIO_API_BASE_URL at the printed URL."""
    setup()
    settings = get_settings()
    fake = FakeTwilio(
        account_sid or settings.secret("TWILIO_ACCOUNT_SID"),
        auth_token or settings.secret("TWILIO_AUTH_TOKEN"),
        host=host,
        port=port,
        auto_callbacks=tuple(s.strip() for s in callbacks.split(",") if s.strip()),
        callback_delay=callback_delay,
    )
    for item in route:
        public, sep, actual = item.partition("=")
        if not sep or not public or not actual:
            fail(f"--route {item!r}: expected PUBLIC_PREFIX=ACTUAL_PREFIX")
        fake.route_callbacks(public, actual)
    try:
        fake.start()
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    typer.echo(f"fake twilio listening on {fake.base_url} (TWILIO_API_BASE_URL={fake.base_url})", err=False)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        fake.stop()
