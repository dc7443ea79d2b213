"""Running the compliance exports in tests and reading back what they wrote."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from compliance.csv_safety import unsafe_cell
from worker import pii
from worker.audit import Actor
from worker.db import session_scope
from worker.models import ConsentEvent
from worker.reports.export import ExportResult, OptOutRequest, export_opt_outs

AUDITOR = Actor.cli("auditor")


@dataclass
class Exported:
    result: ExportResult
    path: Path
    rows: list[dict[str, str]]
    summary: dict[str, Any]
    chain: dict[str, Any]
    csv_bytes: bytes

    def row(self, event_id: uuid.UUID) -> dict[str, str]:
        (found,) = [r for r in self.rows if r["event_id"] == str(event_id)]
        return found


def read_csv(data: bytes) -> list[dict[str, str]]:
    """Rows as an auditor's script reads them: CSV, then the formula-safety apostrophe removed."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    return [{k: unsafe_cell(v) for k, v in row.items()} for row in reader]


def export(
    out_dir: Path, start: date, end: date, *, station: str | None = None, unmask: bool = False,
    name: str | None = None,
) -> Exported:
    """The opt-out report over [start, end] as a ZIP in ``out_dir``, committed like the CLI does."""
    path = out_dir / (name or f"report-{uuid.uuid4().hex[:8]}.zip")
    with session_scope() as session:
        result = export_opt_outs(session, OptOutRequest(start, end, station, unmask), actor=AUDITOR, out=path)
    with zipfile.ZipFile(path) as zf:
        data = zf.read("opt_outs.csv")
        summary = json.loads(zf.read("summary.json"))
        chain = json.loads(zf.read("chain.json"))
    return Exported(result, path, read_csv(data), summary, chain, data)


def events_of(number: str) -> list[ConsentEvent]:
    index = pii.blind_index(number, kind="phone")
    with session_scope() as session:
        return list(
            session.execute(
                select(ConsentEvent).where(ConsentEvent.phone_index == index).order_by(ConsentEvent.seq)
            ).scalars()
        )


def tamper(sql: str, **params: Any) -> None:
    """Run ``sql`` with the ledger's append-only trigger disabled, as a superuser could."""
    with session_scope() as session:
        session.execute(text("ALTER TABLE compliance.consent_events DISABLE TRIGGER consent_events_append_only"))
        session.execute(text(sql), params)
        session.execute(text("ALTER TABLE compliance.consent_events ENABLE TRIGGER consent_events_append_only"))
