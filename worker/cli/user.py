"""msgworker user create: a staff user who signs in to the dashboard with e-mail and password.

The password is read from a hidden prompt (typed twice), or from standard input with
``--password-stdin`` (one line, for scripts); never from an argument, where it would sit in
the shell's history and in every process listing. Audited as the operator running it.
"""

from __future__ import annotations

import sys

import typer

from worker.audit import Actor
from worker.cli.common import fail, refusals, setup
from worker.db import session_scope
from worker.identity import users
from worker.models import UserRole

app = typer.Typer(no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: standard input was empty; give the password on one line")
        return line.rstrip("\r\n")
    first: str = typer.prompt("password", hide_input=True)
    again: str = typer.prompt("password again", hide_input=True)
    if first != again:
        fail("the two passwords differ; nothing was created")
    return first


@app.command("create")
def create(
    email: str = typer.Option(..., "--email", help="the address they sign in with"),
    role: UserRole = typer.Option(..., "--role", help="SUPER_ADMIN, ADMIN, CUSTOMER_SUPPORT or STATION_MANAGER"),
    station: list[str] = typer.Option([], "--station", help="station code (STATION_MANAGER; repeat for several)"),
    first_name: str = typer.Option("", "--first-name", help="shown in the dashboard and the audit log"),
    last_name: str = typer.Option("", "--last-name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Create a dashboard user (the password is asked for, never passed as an argument)."""
    setup()
    password = _password(password_stdin)
    with refusals(), session_scope() as session:
        created = users.create_user(session, email=email, role=role, password=password, actor=Actor.os_user(),
                                    station_codes=station, first_name=first_name, last_name=last_name)
    typer.echo(f"created user {created.email} ({created.role.value}), id {created.id}; "
               "they sign in at /dashboard/sign-in")
