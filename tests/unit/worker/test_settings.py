"""Settings: production refuses missing or development secrets by name; development runs on
loudly logged defaults."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from worker import settings as settings_module
from worker.settings import DEV_DEFAULTS, AppEnv, Settings, SettingsError, get_settings

REAL = {
    "TWILIO_ACCOUNT_SID": "AC" + "ab12" * 8,
    "TWILIO_AUTH_TOKEN": "a-real-looking-token",
    "META_APP_SECRET": "a-real-meta-secret",
    "META_VERIFY_TOKEN": "a-real-verify-token",
    "PII_KEYS": "k2:" + base64.urlsafe_b64encode(b"k" * 32).decode(),
    "PII_INDEX_KEY": base64.urlsafe_b64encode(b"i" * 32).decode(),
}


def make(app_env: str = "production", **overrides: Any) -> Settings:
    """Settings from explicit values only (init arguments outrank the test environment)."""
    values: dict[str, Any] = {
        "APP_ENV": app_env,
        "PUBLIC_BASE_URL": "https://hooks.example.com",
        **REAL,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def fresh_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """get_settings() re-reads the (monkeypatched) environment; the cache is cleared again afterwards."""
    assert settings_module._override is None
    settings_module._load.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    settings_module._load.cache_clear()


def test_complete_production_settings_pass() -> None:
    """Production with every secret real and an https public URL has no problems."""
    assert make().check() == []


@pytest.mark.parametrize("name", sorted(DEV_DEFAULTS))
def test_production_names_each_missing_secret(name: str) -> None:
    """Each missing secret is reported by name, and secret() refuses to fall back to a default."""
    s = make(**{name: None})
    assert f"{name} is not set; production needs a real value" in s.check()
    with pytest.raises(SettingsError, match=name):
        s.secret(name)


@pytest.mark.parametrize("name", sorted(n for n in DEV_DEFAULTS if n != "PII_KEYS"))
def test_production_refuses_each_development_default(name: str) -> None:
    """A secret set to its (public) development default is refused by name."""
    assert f"{name} is the development default; set a real value" in make(**{name: DEV_DEFAULTS[name]}).check()


def test_production_refuses_a_ring_that_contains_the_development_key() -> None:
    """PII_KEYS is refused when the development key is anywhere in the ring, not only first."""
    ring = f"{REAL['PII_KEYS']},{DEV_DEFAULTS['PII_KEYS']}"
    assert "PII_KEYS contains the development key; set a real one" in make(PII_KEYS=ring).check()


def test_production_requires_https_public_url_and_a_well_formed_sid() -> None:
    """Signatures are checked against PUBLIC_BASE_URL, so production needs https; a SID must look like one."""
    problems = make(PUBLIC_BASE_URL="http://hooks.example.com", TWILIO_ACCOUNT_SID="AC123").check()
    assert "PUBLIC_BASE_URL must be https:// in production" in problems
    assert "TWILIO_ACCOUNT_SID must be 'AC' followed by 32 hex characters" in problems


@pytest.mark.parametrize("app_env", ["development", "test", "production"])
def test_malformed_pii_keys_are_refused_in_every_environment(app_env: str) -> None:
    """A key ring that does not parse is a start-up problem everywhere, not a failure at the first encrypt."""
    problems = make(app_env, PII_KEYS="k1:dG9vLXNob3J0").check()
    assert any(p.startswith("PII_KEYS / PII_INDEX_KEY: PII key 'k1' must be 32 bytes") for p in problems)


def test_get_settings_refuses_production_with_every_problem_listed(fresh_load: pytest.MonkeyPatch) -> None:
    """get_settings() (what every process calls at start-up) raises one error naming each bad setting."""
    fresh_load.setenv("APP_ENV", "production")
    fresh_load.delenv("TWILIO_AUTH_TOKEN")
    fresh_load.setenv("META_VERIFY_TOKEN", DEV_DEFAULTS["META_VERIFY_TOKEN"])
    with pytest.raises(SettingsError) as err:
        get_settings()
    message = str(err.value)
    assert message.startswith("refusing to start:")
    assert "TWILIO_AUTH_TOKEN is not set" in message
    assert "META_VERIFY_TOKEN is the development default" in message


def test_development_runs_on_defaults_and_says_so_loudly(fresh_load: pytest.MonkeyPatch) -> None:
    """With no secrets in development, start-up succeeds on the defaults and logs a warning naming them."""
    fresh_load.setenv("APP_ENV", "development")
    for name in DEV_DEFAULTS:
        fresh_load.delenv(name)
    with structlog.testing.capture_logs() as logs:
        s = get_settings()
    assert s.APP_ENV is AppEnv.DEVELOPMENT
    for name, value in DEV_DEFAULTS.items():
        assert s.secret(name) == value
    [warning] = [e for e in logs if e["event"] == "development_secrets_in_use"]
    assert warning["log_level"] == "warning"
    assert warning["settings"] == list(DEV_DEFAULTS)


def test_development_default_keys_work() -> None:
    """The development PII defaults parse as a key ring (a first run can encrypt)."""
    from worker.pii import KeyRing

    s = make("development", **dict.fromkeys(DEV_DEFAULTS))
    ring = KeyRing.from_settings(s)
    assert ring.decrypt(ring.encrypt("+14155550100", kind="phone"), kind="phone") == "+14155550100"
    assert s.check() == []


def test_shared_keys_are_off_by_default_and_parse_name_secret_pairs() -> None:
    """TWILIO_WEBHOOK_SHARED_KEYS: empty means no keys; the secret is everything after the name's first ':'."""
    assert make(TWILIO_WEBHOOK_SHARED_KEYS=None).twilio_shared_keys() == {}
    assert make(TWILIO_WEBHOOK_SHARED_KEYS="").twilio_shared_keys() == {}
    keys = make(TWILIO_WEBHOOK_SHARED_KEYS=" ks_new:abc=def , ks_old:p:q:r ").twilio_shared_keys()
    assert keys == {"ks_new": "abc=def", "ks_old": "p:q:r"}
    assert make(TWILIO_WEBHOOK_SHARED_KEYS="ks_new:abc").check() == []


@pytest.mark.parametrize("app_env", ["development", "test", "production"])
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("ks_new", "entry 1 must be 'name:secret'", id="no-colon"),
        pytest.param("ks_new:s3cr3t-value,:other-s3cr3t", "entry 2 must be 'name:secret'", id="no-name"),
        pytest.param("ks_new:", "entry 1 must be 'name:secret'", id="no-secret"),
        pytest.param("ks new:s3cr3t-value", "key name 'ks new' contains whitespace", id="space-in-name"),
        pytest.param("ks:s3cr3t-value,ks:other-s3cr3t", "key name 'ks' is given twice", id="twice"),
    ],
)
def test_malformed_shared_keys_are_refused_in_every_environment_without_quoting_a_secret(
    app_env: str, value: str, problem: str
) -> None:
    """A shared-key list that does not parse stops start-up by name; the message never contains a secret."""
    problems = make(app_env, TWILIO_WEBHOOK_SHARED_KEYS=value).check()
    [line] = [p for p in problems if p.startswith("TWILIO_WEBHOOK_SHARED_KEYS")]
    assert problem in line
    assert "s3cr3t" not in line
