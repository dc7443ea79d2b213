"""The export's second process imports no SQLAlchemy: its imports are most of its memory."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import worker.reports.beside, worker.reports.csv_rows, worker.reports.opt_outs
heavy = [m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic") or m.startswith("worker.models")]
print(",".join(sorted(heavy)))
"""


def test_the_second_process_imports_no_sqlalchemy() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
