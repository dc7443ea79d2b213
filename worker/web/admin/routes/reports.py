"""Report exports, streamed: the opt-out report (ZIP, CSV or JSON) and a number's dossier, as ``msgworker report``.

Who may export (issue 12): admins every station; a station manager one of their stations
(the station must be one the request's row-secured transaction returns: another station's
code is a 404, and with several stations they must name one); customer support none. Full
numbers (``unmask``) are for BODY_ROLES only, and the dossier, which follows a number across
every station, for admins only.

An export reads the whole range in one REPEATABLE READ snapshot, checks the hash chain in a
second process on that snapshot and reads tables the API role is not granted (raw webhooks,
for receipt times), so, as for the dashboard, it runs as the owner in its own transaction
after the request's transaction has decided what may be exported, with the token as the
audited actor: worker/reports/export.py's ``export_opt_outs`` (or dossier.py's
``export_number``) writes its one audit row in that transaction, exactly as the CLI's export.

The bytes are written to a private temporary file and the transaction commits before the
first byte is sent, so nothing leaves without its audit row (a failed commit withdraws the
file and answers an error instead); then the file is streamed out in chunks (memory stays
flat whatever the range) and removed. Headers carry the file's SHA-256 (the audit row's), the
row count and the ledger check's outcome (``INTEGRITY_FAILED`` is still a 200: the export is
the evidence of it, as the CLI writes it and exits 2).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.errors import Forbidden, InvalidInput
from worker.identity.stations import find_station
from worker.models import Station, UserRole
from worker.reports.dossier import export_number
from worker.reports.export import ExportResult, OptOutRequest, export_opt_outs, parse_range
from worker.web.admin.access import ADMINS, Access, access
from worker.web.admin.database import AdminDatabase
from worker.web.admin.schemas import BODY_ROLES, Phone, Request

router = APIRouter(tags=["reports"])

# Support has no exports (issue 12); a station manager exports their station's report.
EXPORT_ROLES = (*ADMINS, UserRole.STATION_MANAGER)
CHUNK = 64 * 1024
# The report's figures are per day, so its cost grows with the range's length even where the ledger
# is empty; a shared web process refuses a range no real question needs (the CLI, run on an
# operator's own session, does not).
MAX_EXPORT_DAYS = 20 * 366
MEDIA = {"zip": "application/zip", "csv": "text/csv; charset=utf-8", "json": "application/json"}
_FILE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The export, streamed, with its SHA-256 in `X-Content-SHA256`.",
          "content": {"application/zip": {}, "text/csv": {}, "application/json": {}}},
}


class OptOutExportIn(Request):
    start: date = Field(alias="from", description="first day received (UTC)")
    end: date = Field(alias="to", description="last day received (UTC), inclusive; not in the future")
    station_code: str | None = Field(default=None, min_length=1, max_length=32,
                                     description="only revocations that came through this station (a station "
                                     "manager's default: their one station)")
    unmask: bool = Field(default=False, description="full phone numbers (audited as such)")
    format: Literal["zip", "csv", "json"] = "zip"


class DossierIn(Request):
    phone: Phone
    unmask: bool = Field(default=False, description="the full number in the files (audited as such)")


def _station_code(session: Session, caller: Access, code: str | None) -> str | None:
    """The station to export, as the request's transaction sees stations (None: every station, admins only)."""
    if code is not None:
        return find_station(session, code).code  # another station's code: not found, under row-level security
    if caller.principal.sees_all_stations:
        return None
    visible = list(session.execute(select(Station.code).where(Station.deleted_at.is_(None))).scalars())
    if len(visible) != 1:
        raise InvalidInput("name the station to report on (station_code): this token has several", field="station_code")
    return visible[0]


def _streamed(db: AdminDatabase, name: str, media_type: str,
              export: Callable[[Session, Path], ExportResult]) -> StreamingResponse:
    """Run ``export(session, path)`` as the owner, commit, then stream the file it wrote and remove it."""
    folder = Path(tempfile.mkdtemp(prefix="msgworker-api-export-"))
    path = folder / name
    result: ExportResult | None = None
    try:
        with db.as_owner() as session:
            result = export(session, path)
    except BaseException:
        if result is not None:
            result.withdraw()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    size = path.stat().st_size

    def chunks() -> Iterator[bytes]:
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    integrity = result.summary.get("integrity", {}).get("status", "ok")
    return StreamingResponse(chunks(), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size),
        "X-Content-SHA256": result.sha256, "X-Report-Rows": str(result.rows), "X-Ledger-Integrity": integrity,
    })


@router.post("/reports/opt-outs", operation_id="export_opt_outs", responses=_FILE, response_class=StreamingResponse)
def export_opt_out_report(
    body: OptOutExportIn, caller: Annotated[Access, Depends(access(*EXPORT_ROLES))]
) -> StreamingResponse:
    """The opt-out audit report over a range: a ZIP (opt_outs.csv, chain.json, summary.json, summary.html,
    SHA256SUMS), or its rows as CSV or JSON; audited once, as ``msgworker report opt-outs``."""
    principal = caller.principal
    if body.unmask and principal.role not in BODY_ROLES:
        raise Forbidden(f"a {principal.role.value} token may not export full phone numbers", field="unmask")
    first, last = parse_range(body.start.isoformat(), body.end.isoformat(), today=datetime.now(UTC).date())
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise InvalidInput(f"the range is over {MAX_EXPORT_DAYS} days (20 years): export a shorter one", field="from")
    with caller.transaction() as session:
        code = _station_code(session, caller, body.station_code)
    request = OptOutRequest(first, last, code, body.unmask)
    name = f"opt-outs-{first}-{last}" + (f"-{code}" if code else "") + f".{body.format}"
    fmt = body.format

    def export(session: Session, path: Path) -> ExportResult:
        if fmt == "zip":
            return export_opt_outs(session, request, actor=principal.actor, out=path)
        with path.open("xb") as fh:
            return export_opt_outs(session, request, actor=principal.actor, stream=fh, fmt=fmt)

    return _streamed(caller.database, name, MEDIA[fmt], export)


@router.post("/reports/number", operation_id="export_dossier", responses=_FILE, response_class=StreamingResponse)
def export_dossier(body: DossierIn, caller: Annotated[Access, Depends(access(*ADMINS))]) -> StreamingResponse:
    """One number's dossier ZIP (every consent event, inbound text and send decision, across stations);
    audited once, as ``msgworker report number``."""
    actor = caller.principal.actor
    return _streamed(caller.database, "dossier.zip", MEDIA["zip"],
                     lambda session, path: export_number(session, body.phone, out=path, unmask=body.unmask,
                                                         actor=actor))
