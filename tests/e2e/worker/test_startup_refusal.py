"""Real worker, beat, receiver and CLI processes refuse to start in production with missing or
development secrets, and say which setting is wrong (issue 2, settings)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import VENV_BIN, free_port
from worker.settings import DEV_DEFAULTS

pytestmark = pytest.mark.e2e

COMMANDS = {
    "worker": [str(VENV_BIN / "celery"), "-A", "worker", "worker", "--pool=solo", "-l", "INFO"],
    "beat": [str(VENV_BIN / "celery"), "-A", "worker", "beat", "-l", "INFO"],
    "web": [str(VENV_BIN / "msgworker"), "web", "--port", "0"],
}
# Scenario -> (environment change, setting named in the output, phrase).
SCENARIOS: dict[str, tuple[dict[str, str | None], str, str]] = {
    "missing_token": ({"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN", "is not set"),
    "dev_meta_secret": ({"META_APP_SECRET": DEV_DEFAULTS["META_APP_SECRET"]}, "META_APP_SECRET", "development default"),
    "dev_pii_key_in_ring": (
        {"PII_KEYS": f"{os.environ['PII_KEYS']},{DEV_DEFAULTS['PII_KEYS']}"},
        "PII_KEYS",
        "contains the development key",
    ),
    "http_public_url": ({"PUBLIC_BASE_URL": "http://hooks.example.test"}, "PUBLIC_BASE_URL", "must be https://"),
}


def production_env(changes: dict[str, str | None]) -> dict[str, str]:
    """The test run's (real, non-default) secrets, in production, with ``changes`` applied."""
    env = {**os.environ, "APP_ENV": "production", "PUBLIC_BASE_URL": "https://hooks.example.test"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_to_exit(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # A process that does not refuse would keep running: the timeout turns that into a failure.
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_production_process_refuses_bad_secret(command: str, scenario: str, tmp_path: Path) -> None:
    """celery worker / celery beat / msgworker web exit 78 naming the setting, without a traceback."""
    changes, setting, phrase = SCENARIOS[scenario]
    proc = run_to_exit(COMMANDS[command], production_env(changes), tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 78, output
    assert "refusing to start" in output
    assert setting in output
    assert phrase in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--port", "0"],
        ["db", "upgrade"],
        ["pii", "rotate", "--dry-run"],
        ["station", "list"],
    ],
)
def test_production_cli_refuses_dev_secrets(argv: list[str], tmp_path: Path) -> None:
    """Every msgworker command, `run` included, refuses when all secrets are missing, listing each of them."""
    env = production_env({name: None for name in DEV_DEFAULTS})
    proc = run_to_exit([str(VENV_BIN / "msgworker"), *argv], env, tmp_path)
    assert proc.returncode == 78
    for name in DEV_DEFAULTS:
        assert f"{name} is not set" in proc.stderr


def test_production_with_real_secrets_starts(tmp_path: Path) -> None:
    """The same production environment with every secret set is accepted: the refusal is about the secrets."""
    proc = run_to_exit([str(VENV_BIN / "msgworker"), "db", "current"], production_env({}), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "current:" in proc.stdout


def test_production_receiver_with_real_secrets_serves(tmp_path: Path) -> None:
    """A production receiver with real secrets comes up and answers /healthz (positive control for `web`)."""
    import httpx

    from tests.support.processes import Proc, wait_for

    port = free_port()
    proc = Proc(
        "receiver",
        [str(VENV_BIN / "msgworker"), "web", "--port", str(port)],
        tmp_path / "receiver.log",
        env=production_env({}),
    ).start()
    try:

        def up() -> bool:
            assert proc.alive, proc.log()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, what="production receiver /healthz", log=proc.log_path)
    finally:
        proc.stop()
