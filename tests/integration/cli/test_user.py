"""msgworker user create: a dashboard user with an argon2 hash, the password never an argument, audited."""

from __future__ import annotations

from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.factories import make_station
from worker.db import session_scope
from worker.identity import users
from worker.models import AuditLog, User

PASSWORD = "a long enough passphrase"


def _create(cli: CliRunner, *args: str, stdin: str = PASSWORD + "\n") -> tuple[int, str]:
    from worker.cli import app

    result = cli.invoke(app, ["user", "create", *args], input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_create_reads_the_password_from_stdin_and_stores_only_its_argon2_hash(cli: CliRunner) -> None:
    """The user exists with an argon2id hash, signs in with the password, and the creation is audited."""
    with session_scope() as s:
        code = make_station(s).code
    status, out = _create(cli, "--email", "Maria@Example.test", "--role", "STATION_MANAGER", "--station", code,
                          "--password-stdin")
    assert status == 0, out
    assert "created user maria@example.test (STATION_MANAGER)" in out
    with session_scope() as s:
        user = s.execute(select(User)).scalar_one()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        signed_in = users.check_password(s, "maria@example.test", PASSWORD)
        assert signed_in is not None
        assert len(signed_in.station_ids) == 1
        assert users.check_password(s, "maria@example.test", PASSWORD + "x") is None
        audit = s.execute(select(AuditLog).where(AuditLog.resource_type == "user")).scalar_one()
        assert audit.new_values is not None
        assert audit.new_values["email"] == "maria@example.test"
        assert PASSWORD not in str(audit.new_values)


def test_the_prompt_asks_twice_and_refuses_a_mismatch(cli: CliRunner) -> None:
    """Typed twice at the hidden prompt; two different entries create nothing."""
    status, out = _create(cli, "--email", "sam@example.test", "--role", "ADMIN", stdin=f"{PASSWORD}\nsomething else\n")
    assert status == 1
    assert "the two passwords differ" in out
    status, out = _create(cli, "--email", "sam@example.test", "--role", "ADMIN", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert status == 0, out


def test_refusals_name_what_to_fix(cli: CliRunner) -> None:
    """A short password, a manager without a station, an admin with one, a bad e-mail, a taken e-mail: one line each."""
    with session_scope() as s:
        code = make_station(s).code
    cases = [
        (["--email", "a@example.test", "--role", "ADMIN"], "short\n", "the password must be 12"),
        (["--email", "a@example.test", "--role", "STATION_MANAGER"], PASSWORD + "\n", "needs at least one station"),
        (["--email", "a@example.test", "--role", "ADMIN", "--station", code], PASSWORD + "\n", "covers every station"),
        (["--email", "not-an-address", "--role", "ADMIN"], PASSWORD + "\n", "is not an e-mail address"),
    ]
    for args, stdin, message in cases:
        status, out = _create(cli, *args, "--password-stdin", stdin=stdin)
        assert status == 1, args
        assert message in out
    assert _create(cli, "--email", "a@example.test", "--role", "ADMIN", "--password-stdin")[0] == 0
    status, out = _create(cli, "--email", "A@example.test", "--role", "ADMIN", "--password-stdin")
    assert status == 1
    assert "exists already" in out
    with session_scope() as s:
        assert s.execute(text("SELECT count(*) FROM public.users")).scalar_one() == 1
