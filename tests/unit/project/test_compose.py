"""docker-compose.yml and the Dockerfile stay in step with the code: every environment name is
a real setting, the six services are wired in the right order, and each has a health check.

(No Docker engine runs on this machine kind, so the stack itself is not started here.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.settings import DEV_DEFAULTS, Settings

ROOT = Path(__file__).resolve().parents[3]
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat"}
APP_SERVICES = {"migrate", "web", "worker", "beat"}
# The official postgres image's own settings (https://hub.docker.com/_/postgres).
POSTGRES_IMAGE_SETTINGS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "POSTGRES_INITDB_ARGS", "PGDATA"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" form
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def with_defaults(value: str) -> str:
    """Interpolate ${NAME:-default} / ${NAME} as compose does with nothing set in the shell."""
    return re.sub(r"\$\{[A-Z_]+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def command(service: dict[str, Any]) -> str:
    cmd = service.get("command")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def test_the_six_services_exist(compose: dict[str, Any]) -> None:
    """postgres, redis, migrate, web, worker and beat are all defined."""
    assert set(compose["services"]) >= SERVICES


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_environment_names_are_settings(compose: dict[str, Any], name: str) -> None:
    """Every environment name given to our image is a field of worker.settings.Settings (no typos, no stale names)."""
    names = set(env_of(compose["services"][name]))
    assert names, f"{name} has no environment"
    assert names <= set(Settings.model_fields), names - set(Settings.model_fields)


def test_infrastructure_environment_names_are_the_images_settings(compose: dict[str, Any]) -> None:
    """postgres gets only variables its image understands; redis is configured on its command line."""
    assert set(env_of(compose["services"]["postgres"])) <= POSTGRES_IMAGE_SETTINGS
    assert not env_of(compose["services"]["redis"])


def test_every_secret_can_be_supplied(compose: dict[str, Any]) -> None:
    """Each secret production requires is passed through to the app services."""
    for name in APP_SERVICES:
        assert set(DEV_DEFAULTS) <= set(env_of(compose["services"][name])), name


def test_default_environment_is_a_valid_development_configuration(compose: dict[str, Any]) -> None:
    """With nothing set in the shell, the app environment parses and passes the settings check."""
    env = {k: with_defaults(v) for k, v in env_of(compose["services"]["web"]).items()}
    values = {k: (v or None) for k, v in env.items()}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    assert settings.APP_ENV.value == "development"
    assert settings.check() == []
    assert settings.DATABASE_URL.endswith("@postgres:5432/msgworker")


def test_production_in_compose_still_needs_real_secrets(compose: dict[str, Any]) -> None:
    """APP_ENV=production with the compose defaults (empty secrets) is refused, naming each secret."""
    env = {k: with_defaults(v) for k, v in env_of(compose["services"]["web"]).items()}
    values: dict[str, Any] = {k: (v or None) for k, v in env.items()}
    values["APP_ENV"] = "production"
    problems = Settings(_env_file=None, **values).check()  # type: ignore[call-arg]
    for name in DEV_DEFAULTS:
        assert f"{name} is not set; production needs a real value" in problems


def test_migrate_runs_once_after_postgres_is_healthy(compose: dict[str, Any]) -> None:
    """migrate is a one-shot `msgworker db upgrade` that waits for a healthy postgres."""
    migrate = compose["services"]["migrate"]
    assert command(migrate) == "msgworker db upgrade"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "msgworker web --host 0.0.0.0"),
        ("worker", "celery -A worker worker"),
        ("beat", "celery -A worker beat"),
    ],
)
def test_runtime_services_start_after_migrate_completes(compose: dict[str, Any], name: str, expected: str) -> None:
    """web, worker and beat run their real commands only once migrate has completed and Redis is healthy."""
    service = compose["services"][name]
    assert command(service).startswith(expected)
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", sorted(SERVICES - {"migrate"}))
def test_long_running_services_have_health_checks(compose: dict[str, Any], name: str) -> None:
    """Every long-running service declares a health check."""
    check = compose["services"][name].get("healthcheck")
    assert check is not None
    assert check["test"]


def test_web_health_check_uses_readyz(compose: dict[str, Any]) -> None:
    """The receiver is healthy only when /readyz (database and broker) answers, not merely when it is up."""
    assert "/readyz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


def test_dockerfile_copies_every_package() -> None:
    """The image contains each top-level package and module the project installs."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in ("worker", "compliance", "tasks", "celeryconfig.py", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", dockerfile, re.MULTILINE), path
