"""Report and dossier downloads: the CLI's export services, run for a signed-in person, sent as a file.

An export reads the whole ledger range in one REPEATABLE READ snapshot, checks the hash chain
in a second process on that snapshot and reads tables the API role is not granted (raw
webhooks, for receipt times), so it cannot run inside a page's row-secured transaction. The
page's transaction decides first what the person may export (the station must be one the
database returns to them; the dossier is for roles that read full numbers), then the export
runs as the owner in its own transaction, exactly as ``msgworker report`` runs it, with the
person as the audited actor. The ZIP is written to a private temporary directory, sent, and
removed; a failed commit withdraws it before anything is sent (as worker/cli/report.py does).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi.responses import FileResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from worker.reports.export import ExportResult
from worker.web.admin.database import AdminDatabase

__all__ = ["download"]


def download(db: AdminDatabase, file_name: str, export: Callable[[Session, Path], ExportResult]) -> FileResponse:
    """Run ``export(session, path)`` as the owner and answer with the ZIP it wrote (then delete it)."""
    folder = Path(tempfile.mkdtemp(prefix="msgworker-dashboard-"))
    result: ExportResult | None = None
    try:
        with db.as_owner() as session:
            result = export(session, folder / file_name)
    except BaseException:
        if result is not None:
            result.withdraw()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    assert result.path is not None
    return FileResponse(result.path, media_type="application/zip", filename=file_name,
                        headers={"X-Content-SHA256": result.sha256},
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
