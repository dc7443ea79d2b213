"""``msgworker <command>`` imports that command's module only (each command's memory and start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from worker.cli import _command_named, build_app

PROBE = """
import json, sys
from worker.cli import build_app, _command_named
build_app(_command_named(sys.argv[1:]))
from worker.identity import users
print(json.dumps({
    "cli": sorted(m for m in sys.modules if m.startswith("worker.cli.")),
    "dummy_hashes": users.dummy_hash.cache_info().currsize if "worker.identity.users" in sys.modules else 0,
}))
"""


def _probe(*argv: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_report_command_loads_only_its_own_module() -> None:
    assert _probe("report", "opt-outs", "--help")["cli"] == ["worker.cli.common", "worker.cli.report"]


def test_no_command_hashes_a_password_at_import() -> None:
    """An argon2 hash costs 64 MiB and ~0.2 s: made only when a sign-in needs it."""
    assert _probe("user", "create", "--help")["dummy_hashes"] == 0


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["report", "opt-outs"], "report"), (["--help"], None), ([], None), (["nonsense"], None),
     (["doctor", "--json"], "doctor"), (["fake-twilio"], "fake-twilio")],
)  # fmt: skip
def test_the_command_is_the_first_word(argv: list[str], named: str | None) -> None:
    assert _command_named(argv) == named


def test_the_full_app_and_a_single_command_app_name_the_same_commands() -> None:
    """A lone command stays a subcommand (Typer would otherwise make it the root)."""
    full = build_app()
    names = {c.name for c in full.registered_commands} | {g.name for g in full.registered_groups}
    assert {"report", "doctor", "web", "run", "demo", "campaign", "station", "sender"} <= names
    for name in ("doctor", "report"):
        alone = build_app(name)
        assert {c.name for c in alone.registered_commands} | {g.name for g in alone.registered_groups} == {name}
