"""msgworker token create|list|revoke: staff bearer tokens for the admin API (worker/identity/tokens.py).

``create`` prints the token once, on stdout and nowhere else (not in a log line, not in the
audit row): whoever runs it hands it to the staff tool. Each command writes an audit row as
the operator running it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import typer

from worker.audit import Actor
from worker.cli.common import refusals, setup
from worker.db import session_scope
from worker.identity import tokens
from worker.inputs import parse_id
from worker.models import UserRole

app = typer.Typer(no_args_is_help=True)


def _stations(info: tokens.TokenInfo, codes: Mapping[uuid.UUID, str]) -> list[str]:
    return [codes.get(s, str(s)) for s in info.station_ids]


def _row(info: tokens.TokenInfo, codes: Mapping[uuid.UUID, str], now: datetime) -> dict[str, object]:
    return {
        "id": str(info.id),
        "name": info.name,
        "role": info.role.value,
        "stations": _stations(info, codes),
        "state": info.state(now),
        "created_by": info.created_by,
        "created_at": info.created_at.isoformat(),
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
    }


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="who or what holds it, e.g. 'booking-app' or 'maria.lopez'"),
    role: UserRole = typer.Option(..., "--role", help="SUPER_ADMIN, ADMIN, CUSTOMER_SUPPORT or STATION_MANAGER"),
    station: list[str] = typer.Option([], "--station", help="station code (STATION_MANAGER; repeat for several)"),
    expires_in_days: int = typer.Option(90, "--expires-in-days", help="days until it stops working (0: never)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object (with the token) on stdout"),
) -> None:
    """Issue a bearer token; it is printed once and cannot be shown again."""
    setup()
    with refusals(), session_scope() as session:
        issued = tokens.create_token(
            session,
            name=name,
            role=role,
            station_codes=station,
            expires_at=tokens.expiry_in_days(expires_in_days),
            actor=Actor.os_user(),
        )
        codes = tokens.station_codes(session, issued.info.station_ids)
    info = issued.info
    if as_json:
        typer.echo(json.dumps({**_row(info, codes, datetime.now(UTC)), "token": issued.secret}))
        return
    typer.echo(issued.secret)
    stations = ", stations " + ", ".join(_stations(info, codes)) if info.station_ids else ""
    typer.secho(
        f"token {info.id} for {info.name} ({info.role.value}{stations}), "
        f"expires {info.expires_at.isoformat() if info.expires_at else 'never'}: store it now, it is not shown again",
        err=True,
    )


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="one JSON array on stdout")) -> None:
    """Every token (never the secret): name, role, stations, state."""
    setup()
    now = datetime.now(UTC)
    with refusals(), session_scope() as session:
        infos = tokens.list_tokens(session, actor=Actor.os_user())
        codes = tokens.station_codes(session, sorted({s for i in infos for s in i.station_ids}, key=str))
    if as_json:
        typer.echo(json.dumps([_row(i, codes, now) for i in infos]))
        return
    if not infos:
        typer.echo("no tokens yet: create one with `msgworker token create`")
        return
    for i in infos:
        typer.echo(f"{i.id}  {i.state(now):<8} {i.role.value:<17} stations={','.join(_stations(i, codes)) or 'all'}  "
                   f"{i.name}  expires={i.expires_at.isoformat() if i.expires_at else 'never'}")


@app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="the token's id (from `msgworker token list`)")) -> None:
    """Revoke a token: its next request is refused (401)."""
    setup()
    with refusals():
        parsed = parse_id(token_id, what="a token id", field="token_id", hint=" (see `msgworker token list`)")
    with refusals(), session_scope() as session:
        info = tokens.revoke_token(session, parsed, actor=Actor.os_user())
    typer.echo(f"token {info.id} ({info.name}) revoked at {info.revoked_at.isoformat() if info.revoked_at else ''}")
