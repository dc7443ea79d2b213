"""`--json` means JSON: every command that offers JSON output, run as a real process with development
defaults, prints only JSON on stdout (logs, the development-secrets warning included, go to stderr).

The commands are found in the typer app, not listed here, so a new one is covered the day it is
added; one that needs arguments gets them from ARGS below, and the test fails until it has an entry.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import json
import logging
import os
import subprocess
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from tests.conftest import truncate_all
from tests.factories import make_station
from tests.integration.outbound.test_held import held_marketing, toll_free
from tests.support.cli import run as run_in_process
from tests.support.processes import VENV_BIN
from worker.cli import app
from worker.db import session_scope
from worker.settings import DEV_DEFAULTS, Settings, set_settings
from worker.web import inbox_store

pytestmark = pytest.mark.e2e

Path = tuple[str, ...]


# typer ships its own copy of click, so its commands are matched by shape, not by click's classes.
Command = Any


def _json_flags(command: Command) -> list[str] | None:
    """The arguments that ask this command for JSON, or None when it has no such option."""
    for param in command.params:
        if param.param_type_name != "option":
            continue
        if "--json" in param.opts and param.is_flag:
            return ["--json"]
        if "json" in _choices(param) or ("--format" in param.opts and "json" in (param.help or "")):
            return [param.opts[0], "json"]
    return None


def _choices(param: Any) -> set[str]:
    """The values an option accepts when it is a choice (an Enum or a Literal, e.g. --format)."""
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {str(member.value) for member in annotation}
    if typing.get_origin(annotation) is typing.Literal:
        return {str(arg) for arg in typing.get_args(annotation)}
    return {str(c) for c in getattr(getattr(param, "type", None), "choices", ())}


def json_commands() -> dict[Path, Command]:
    """Every command of `msgworker` (at any depth) with a JSON output option, by its path."""
    found: dict[Path, Command] = {}

    def walk(group: Command, path: Path) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, (*path, name))
            elif _json_flags(command) is not None:
                found[(*path, name)] = command

    walk(typer.main.get_command(app), ())
    return found


@dataclass(frozen=True)
class Data:
    """Rows the commands can be pointed at, written with the development keys the commands will use."""

    station: str
    phone: str
    held_id: str
    inbox_id: str
    campaigns: dict[str, str]  # a campaign id per command that changes one, each in the state it needs
    report_zip: str


TODAY = datetime.now(UTC).date().isoformat()

# Commands with required parameters, and the arguments (before the JSON option) to run them with.
ARGS: dict[Path, Callable[[Data], list[str]]] = {
    ("consent", "show"): lambda d: [d.phone],
    ("inbox", "show"): lambda d: [d.inbox_id],
    ("send", "text"): lambda d: [d.phone, "Your chef arrives at 6pm", "--station", d.station,
                                 "--purpose", "transactional"],
    ("send", "release"): lambda d: [d.held_id, "--state", "TX", "--by", "json-test"],
    ("booking", "add"): lambda d: ["--station", d.station, "--phone", d.phone, "--event-at", "2030-06-01T18:00"],
    ("campaign", "create"): lambda d: campaign_args(d.station),
    ("campaign", "show"): lambda d: [d.campaigns["show"]],
    ("campaign", "status"): lambda d: [d.campaigns["show"]],
    ("campaign", "preview"): lambda d: [d.campaigns["show"]],
    ("campaign", "edit"): lambda d: [d.campaigns["edit"], "--template", "{brand}: edited"],
    ("campaign", "start"): lambda d: [d.campaigns["start"]],
    ("campaign", "pause"): lambda d: [d.campaigns["pause"]],
    ("campaign", "resume"): lambda d: [d.campaigns["resume"]],
    ("campaign", "cancel"): lambda d: [d.campaigns["cancel"]],
    ("coupon", "pool", "create"): lambda d: ["--name", "json-pool"],
    ("report", "opt-outs"): lambda d: ["--from", TODAY, "--to", TODAY],
    ("report", "verify"): lambda d: [d.report_zip],
    ("token", "create"): lambda d: ["--name", "json-test", "--role", "ADMIN"],
}

def campaign_args(station: str) -> list[str]:
    return ["--kind", "broadcast", "--name", "json", "--station", station, "--template", "{brand}: hello",
            "--at", "2030-06-01T12:00"]

# The campaigns made for ARGS, and the commands (after create) that put each in its state.
CAMPAIGN_STATES: dict[str, tuple[str, ...]] = {
    "show": (), "edit": (), "start": (), "cancel": (), "pause": ("start",), "resume": ("start", "pause"),
}

SECRETS = (*DEV_DEFAULTS, "TWILIO_WEBHOOK_SHARED_KEYS")


def development_settings() -> Settings:
    """This run's database and Redis, every secret at its development default, APP_ENV=development."""
    unset: dict[str, Any] = dict.fromkeys(SECRETS)
    return Settings(APP_ENV="development", LOG_FORMAT="console", **unset)


def development_env() -> dict[str, str]:
    drop = {*SECRETS, "APP_ENV", "LOG_FORMAT", "LOG_LEVEL"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "APP_ENV": "development"}


@pytest.fixture(scope="module")
def data(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    """Written once for every command (each runs once), in an emptied database, emptied again after."""
    truncate_all()
    set_settings(development_settings())
    try:
        with session_scope() as s:
            station = make_station(s)
            code, station_id = station.code, station.id
        phone = toll_free()
        held_id = held_marketing(station_id, phone)
        event_id = "SM" + uuid.uuid4().hex
        inbox_store.store(provider="twilio_sms", event_id=event_id, delivery_id=None,
                          content_type="application/x-www-form-urlencoded", payload=f"Body=hello&From={phone}")
        with session_scope() as s:
            inbox_id = str(s.execute(text("SELECT id FROM core.webhook_inbox WHERE provider_event_id = :e"),
                                     {"e": event_id}).scalar_one())
        report_zip = tmp_path_factory.mktemp("report") / "opt-outs.zip"
        with in_process() as invoke:
            campaigns = {}
            for key, steps in CAMPAIGN_STATES.items():
                created = json.loads(invoke("campaign", "create", *campaign_args(code), "--json"))
                for step in steps:
                    invoke("campaign", step, created["id"])
                campaigns[key] = created["id"]
            invoke("report", "opt-outs", "--from", TODAY, "--to", TODAY, "--out", str(report_zip))
        yield Data(station=code, phone=phone, held_id=str(held_id), inbox_id=inbox_id, campaigns=campaigns,
                   report_zip=str(report_zip))
    finally:
        set_settings(None)
        truncate_all()


@contextlib.contextmanager
def in_process() -> Iterator[Callable[..., str]]:
    """`msgworker` commands run in this process (set-up only: faster than a process each); each must exit 0.
    Commands configure logging onto the runner's stream, so it is restored afterwards (as tests/support/cli does)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    runner = CliRunner()

    def invoke(*args: str) -> str:
        code, out = run_in_process(runner, *args)
        assert code == 0, (args, out)
        return out

    try:
        yield invoke
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()


def run(path: Path, data: Data) -> subprocess.CompletedProcess[str] | str:
    """The command's run, or why this test cannot run it."""
    command = json_commands()[path]
    required = [p.name for p in command.params if p.required]
    if required and path not in ARGS:
        return f"`msgworker {' '.join(path)}` needs {required}: add an entry to ARGS in {__name__}"
    args = ARGS[path](data) if path in ARGS else []
    flags = _json_flags(command)
    assert flags is not None
    return subprocess.run(
        [str(VENV_BIN / "msgworker"), *path, *args, *flags],
        env=development_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(data: Data) -> dict[Path, subprocess.CompletedProcess[str] | str]:
    """Every command's run, started a few at a time (each is a new process paying the whole import)."""
    paths = sorted(json_commands())
    with concurrent.futures.ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(paths, pool.map(lambda p: run(p, data), paths), strict=True))


@pytest.mark.parametrize("path", sorted(json_commands()), ids=" ".join)
def test_json_command_prints_only_json_on_stdout(
    path: Path, runs: dict[Path, subprocess.CompletedProcess[str] | str]
) -> None:
    """The command, as a subprocess with development defaults, exits 0 and its whole stdout parses as JSON."""
    done = runs[path]
    if isinstance(done, str):
        pytest.fail(done)
    assert done.returncode == 0, done.stderr[-2000:]
    json.loads(done.stdout)
    assert "development_secrets_in_use" in done.stderr  # the line that used to land on stdout


def test_the_commands_are_found() -> None:
    """The walk reaches nested groups and the send group's default command, so the test above is not vacuous."""
    found = json_commands()
    assert {("station", "list"), ("ledger", "verify"), ("send", "text"), ("inbox", "show")} <= set(found)
