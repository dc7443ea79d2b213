"""The README and the operator files stay true to the code: settings, commands and scripts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from worker.cli import app
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    """Each field of Settings has a row in the README's settings table (and no row names a setting that is gone)."""
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README, re.MULTILINE))
    fields = set(Settings.model_fields)
    assert fields - rows == set(), "undocumented settings"
    assert rows - fields == set(), "README documents settings that do not exist"


def test_the_two_setup_commands_come_first_and_exist() -> None:
    """The first code block after the intro is the run command and the test command, and both scripts exist."""
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["scripts/run.sh", "scripts/test.sh"]
    for script in commands:
        assert os.access(ROOT / script, os.X_OK), script


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run starts from the repository root and execs the README's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\nset -euo pipefail\n")
    assert 'cd "$(dirname "$0")/.."' in ci
    assert ci.rstrip().endswith("exec scripts/test.sh")


def test_readme_commands_exist() -> None:
    """Every `msgworker <command>` the README mentions is a registered command or group."""
    click_app = typer.main.get_command(app)
    registered = set(click_app.commands)  # type: ignore[attr-defined]
    mentioned = set(re.findall(r"msgworker ([a-z][a-z-]+)", README))
    assert mentioned - registered == set()


def test_env_example_names_are_settings() -> None:
    """.env.example only names real settings."""
    names = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert names <= set(Settings.model_fields)
