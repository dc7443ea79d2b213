"""``msgworker``: the operator's command line.

Each command group lives in its own module and is registered here; commands open their
own ``session_scope()`` and print plain, greppable lines (``--json`` where scripts read
the output). Errors exit non-zero with one line that says what to do.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

import typer

from worker.settings import SettingsError

__all__ = ["build_app", "main"]

# (name, module under worker.cli, attribute, help or None for the group's own): a group is a
# Typer app, a command a function. Only the named command's module is imported when a
# command runs: importing all of them cost ~3 s and 120 MiB, which every command paid,
# the opt-out report's peak memory included.
_GROUPS: tuple[tuple[str, str, str, str | None], ...] = (
    ("db", "db", "app", "Database migrations."),
    ("user", "user", "app", "Dashboard users (e-mail and password): create."),
    ("consent", "consent", "app", "Consent: show a number, staff opt-in/opt-out, import."),
    ("review", "review", "app", "The consent review queue (ambiguous messages)."),
    ("ledger", "ledger", "app", "The consent ledger: verify its hash chain."),
    ("report", "report", "app", "Compliance evidence: opt-out report, number dossier, verify."),
    ("station", "stations", "station_app", "Stations (franchise locations)."),
    ("sender", "stations", "sender_app", "Stations' sender addresses (numbers, page ids)."),
    ("pii", "pii", "app", "PII encryption keys: usage and rotation."),
    ("inbox", "inbox", "app", "Webhook inbox: failed rows, retry, show, stats."),
    ("send", "send", "app", None),
    ("token", "token", "app", "Bearer tokens for the admin API: create, list, revoke."),
    ("campaign", "campaign", "app", None),
    ("coupon", "coupon", "app", None),
    ("booking", "booking", "app", None),
    ("feedback", "feedback", "app", None),
)
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("web", "web", "web"),
    ("fake-twilio", "fake_twilio", "fake_twilio"),
    ("doctor", "doctor", "doctor"),
    ("run", "run", "run"),
    ("demo", "demo", "demo"),
)


def build_app(only: str | None = None) -> typer.Typer:
    """The command line with every command, or with the one named ``only`` (what ``main`` runs)."""
    app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

    @app.callback()
    def _root() -> None:
        """A group even when one command is registered (Typer would make a lone command the root)."""

    for name, module, attribute, help_text in _GROUPS:
        if only in (None, name):
            group = getattr(import_module(f"worker.cli.{module}"), attribute)
            app.add_typer(group, name=name, help=help_text or group.info.help)
    for name, module, attribute in _COMMANDS:
        if only in (None, name):
            app.command(name)(getattr(import_module(f"worker.cli.{module}"), attribute))
    return app


def _command_named(argv: list[str]) -> str | None:
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    known = {name for name, *_ in _GROUPS} | {name for name, *_ in _COMMANDS}
    return first if first in known else None


def __getattr__(name: str) -> Any:
    # ``from worker.cli import app`` (tests, typer.testing.CliRunner): every command.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    # Unusable settings (production with a missing or development secret) stop every
    # command with the settings' names and EX_CONFIG, not a traceback.
    try:
        build_app(_command_named(sys.argv[1:]))()
    except SettingsError as exc:
        typer.secho(f"msgworker: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(78) from None
