"""msgworker run: migrate, then run receiver, worker and beat together (development)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import typer
from sqlalchemy.exc import OperationalError

from worker import migrate
from worker.cli.common import fail, setup
from worker.errors import InvalidInput
from worker.ops.devstack import Supervisor, ensure_database, stack_specs
from worker.ops.doctor import DEFAULT_TWILIO_BASE, safe_url
from worker.settings import AppEnv, get_settings


def run(
    host: str = typer.Option("127.0.0.1", help="interface the receiver binds"),
    port: int = typer.Option(8000, help="port the receiver binds"),
    concurrency: int = typer.Option(2, min=1, help="worker processes"),
    state_dir: Path = typer.Option(Path("var"), help="where beat keeps its schedule file"),
    fake_twilio: bool | None = typer.Option(
        None,
        "--fake-twilio/--no-fake-twilio",
        help="serve a local fake Twilio API and send there (default: on in development with default credentials)",
    ),
    fake_twilio_port: int = typer.Option(8099, help="port of the local fake Twilio API"),
) -> None:
    """Apply migrations, then run receiver, worker and beat until Ctrl-C (or SIGTERM); if one dies, all stop."""
    setup()
    settings = get_settings()
    if settings.APP_ENV is AppEnv.DEVELOPMENT:
        try:
            if ensure_database(settings.DATABASE_URL):
                typer.echo(f"created database {safe_url(settings.DATABASE_URL)}")
        except (OperationalError, InvalidInput) as exc:
            fail(
                f"cannot reach or create the database {safe_url(settings.DATABASE_URL)}: "
                f"{str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}\n"
                "  fix: start PostgreSQL, or set DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/msgworker)"
            )
    try:
        migrate.upgrade("head")
    except OperationalError as exc:
        fail(f"cannot migrate {safe_url(settings.DATABASE_URL)}: {str(exc.orig).strip().splitlines()[0]}")
    typer.echo(f"database at {migrate.current_revision()}")

    env: dict[str, str] = {}
    fake = None
    use_fake = fake_twilio
    if use_fake is None:
        use_fake = (
            settings.APP_ENV is AppEnv.DEVELOPMENT
            and not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)
            and settings.TWILIO_API_BASE_URL == DEFAULT_TWILIO_BASE
        )
    if use_fake:
        from worker.provider.fake import FakeTwilio

        fake = FakeTwilio(
            settings.secret("TWILIO_ACCOUNT_SID"), settings.secret("TWILIO_AUTH_TOKEN"), port=fake_twilio_port
        )
        try:
            fake.start()
        except OSError as exc:
            fail(f"cannot start the fake Twilio on port {fake_twilio_port}: {exc} (use --fake-twilio-port)")
        env["TWILIO_API_BASE_URL"] = fake.base_url

    state_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(
        stack_specs(
            host=host,
            port=port,
            concurrency=concurrency,
            schedule_path=str(state_dir / "celerybeat-schedule"),
            env=env,
        )
    )
    supervisor.install_signal_handlers()
    supervisor.start()
    if fake is not None:
        supervisor.say(f"fake Twilio at {fake.base_url}: texts go there, not to real phones (--no-fake-twilio to stop)")
    _announce_when_ready(supervisor, f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}")  # noqa: S104
    code = supervisor.wait()
    if fake is not None:
        fake.stop()
    raise typer.Exit(code)


def _announce_when_ready(supervisor: Supervisor, base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisor.dead_child() is None and not supervisor.stopping:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                supervisor.say(f"ready: receiver {base} (healthz, readyz); worker and beat running; Ctrl-C stops all")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
