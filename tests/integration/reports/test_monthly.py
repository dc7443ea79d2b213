"""The monthly opt-out report task on the real database: off by default, once per month, audited like a person's."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from freezegun import freeze_time
from sqlalchemy import select

from tasks.reports import monthly_opt_out_report
from tests.factories import make_customer, make_station, phone
from tests.support.consent import make_inbound, settings_override
from worker.consent.inbound import handle_inbound
from worker.db import session_scope
from worker.models import AuditLog

FIRST_OF_DECEMBER = "2026-12-01T00:30:00+00:00"


def _audits() -> list[AuditLog]:
    with session_scope() as s:
        return list(s.execute(select(AuditLog).where(AuditLog.resource_type == "opt_out_report")).scalars())


def test_off_by_default(clean_db: str, tmp_path: Path) -> None:
    """Without REPORTS_MONTHLY_DIR the task writes nothing and audits nothing."""
    result = monthly_opt_out_report.run(now=FIRST_OF_DECEMBER)
    assert result == {"written": False, "reason": "REPORTS_MONTHLY_DIR is not set"}
    assert _audits() == []


def test_writes_last_month_once_and_audits_it(clean_db: str, tmp_path: Path) -> None:
    """On Dec 1 it writes November's report (November's STOP, not December's), audited as the job; a rerun skips."""
    with session_scope() as s:
        station = make_station(s)
        for when in ("2026-11-30 23:59:00", "2026-12-01 00:10:00"):
            with freeze_time(when):
                handle_inbound(s, make_inbound(s, station, make_customer(s, station, phone_e164=phone()), "STOP"))
    with settings_override(REPORTS_MONTHLY_DIR=str(tmp_path)):
        first = monthly_opt_out_report.run(now=FIRST_OF_DECEMBER)
        again = monthly_opt_out_report.run(now=FIRST_OF_DECEMBER)
    path = tmp_path / "opt-outs-2026-11.zip"
    assert first["written"] is True
    assert (first["file"], first["rows"], first["integrity"]) == ("opt-outs-2026-11.zip", 1, "ok")
    assert again == {"written": False, "reason": "exists", "file": "opt-outs-2026-11.zip"}
    summary = json.loads(zipfile.ZipFile(path).read("summary.json"))
    assert summary["parameters"] == {"from": "2026-11-01", "to": "2026-11-30", "station": None, "unmask": False}
    (audit,) = _audits()
    assert audit.actor == "system:monthly_opt_out_report"
    assert audit.resource_id == first["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opt-outs-2026-11.zip"]
