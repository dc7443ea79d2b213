"""msgworker coupon: pools of codes (generated or imported from a POS CSV) and redemption."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from worker.audit import Actor
from worker.campaigns import coupons
from worker.cli.common import fail, refusals, setup
from worker.db import session_scope
from worker.inputs import parse_id

app = typer.Typer(no_args_is_help=True, help="Coupon pools and codes: create, generate, import, redeem.")
pool_app = typer.Typer(no_args_is_help=True, help="Coupon pools.")
app.add_typer(pool_app, name="pool")

_BY = typer.Option(None, "--by", help="who makes the change (audit log); default: your OS user")


def _actor(by: str | None) -> Actor:
    return Actor.cli(by) if by else Actor.os_user()


def _pool_id(value: str) -> uuid.UUID:
    return parse_id(value, what="a pool id", hint=" (see `msgworker coupon pool list`)")


@pool_app.command("create")
def pool_create(
    name: str = typer.Option(..., "--name"),
    station: str | None = typer.Option(None, "--station", help="station code (default: every station)"),
    source: str = typer.Option("generated", "--source", help="generated | imported"),
    purpose: str = typer.Option("campaign", "--purpose", help="campaign | service_recovery"),
    prefix: str = typer.Option("", "--prefix", help="generated codes start with this (A-Z, 0-9, at most 8)"),
    length: int = typer.Option(8, "--length", help="generated characters after the prefix (6..16)"),
    discount_cents: int = typer.Option(0, "--discount-cents"),
    description: str | None = typer.Option(None, "--description"),
    valid_days: int | None = typer.Option(None, "--valid-days", help="an issued code expires this many days later"),
    fallback: str | None = typer.Option(None, "--fallback", help="static code sent when the pool is empty"),
    low_stock: int = typer.Option(0, "--low-stock", help="warn when fewer codes than this are left"),
    by: str | None = _BY,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a pool (then `coupon generate` or `coupon import` its codes)."""
    setup()
    with refusals(), session_scope() as session:
        pool = coupons.create_pool(
            session, _actor(by), name=name, station_code=station, source=source, purpose=purpose, prefix=prefix,
            length=length, discount_cents=discount_cents, description=description, valid_days=valid_days,
            fallback_code=fallback, low_stock_threshold=low_stock,
        )
        pool_id = str(pool.id)
    typer.echo(json.dumps({"id": pool_id}) if as_json else f"pool {pool_id} created ({source}, {purpose})")


@pool_app.command("list")
def pool_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Pools with their codes by state."""
    setup()
    with session_scope() as session:
        rows: list[dict[str, Any]] = [
            {"id": str(p.id), "name": p.name, "purpose": p.purpose, "source": p.source, "fallback": p.fallback_code,
             "low_stock_threshold": p.low_stock_threshold, "codes": counts}
            for p, counts in coupons.list_pools(session)
        ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        low = r["low_stock_threshold"] and r["codes"].get("available", 0) < r["low_stock_threshold"]
        typer.echo(f"{r['id']}  {r['purpose']:<16} {r['name']}  {r['codes']}" + ("  LOW STOCK" if low else ""))


@app.command("generate")
def generate(pool: str = typer.Argument(...), count: int = typer.Option(..., "--count", min=1),
             by: str | None = _BY) -> None:
    """Add COUNT new codes from the operating system's CSPRNG (unambiguous alphabet) to a generated pool."""
    setup()
    with refusals(), session_scope() as session:
        added = coupons.generate_codes(session, _pool_id(pool), count, _actor(by))
    typer.echo(f"{added} codes added")


@app.command("import")
def import_(
    pool: str = typer.Argument(...),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV with a 'code' column (and 'expires_on')"),
    rejects: Path | None = typer.Option(None, "--rejects", help="write the rejected lines here as CSV"),
    by: str | None = _BY,
) -> None:
    """Import codes from the POS or e-commerce export; every line not added is listed with its reason."""
    setup()
    with refusals(), session_scope() as session:
        report = coupons.import_codes(session, _pool_id(pool), file.read_text(encoding="utf-8-sig"), _actor(by))
    typer.echo(f"{report.added} codes imported, {len(report.rejects)} rejected")
    out = rejects.open("w", newline="") if rejects else sys.stdout
    writer = csv.writer(out)
    if report.rejects:
        writer.writerow(["line", "code", "reason"])
        writer.writerows([r.line, r.code, r.reason] for r in report.rejects)
    if rejects:
        out.close()


@app.command("redeem")
def redeem(code: str = typer.Argument(...), by: str = typer.Option(..., "--by", help="who took the code")) -> None:
    """Mark an issued code redeemed; a second redemption is refused, naming when the first was."""
    setup()
    if not by.strip():
        fail("--by must name who redeemed it")
    with refusals(), session_scope() as session:
        row = coupons.redeem(session, code, Actor.cli(by), now=datetime.now(UTC))
        shown = (row.code, row.redeemed_at)
    typer.echo(f"code {shown[0]} redeemed at {shown[1].isoformat() if shown[1] else '-'} by {by.strip()}")
