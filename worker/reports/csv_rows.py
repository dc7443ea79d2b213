"""The report's CSV dialect, shared by the export and its second process (worker/reports/beside.py).

A module of its own so the second process writes its share of the rows without importing the
export (and SQLAlchemy with it): every MiB it imports counts in the report's memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

from compliance.csv_safety import safe_cell

__all__ = ["csv_writer", "write_rows"]


class TextSink(Protocol):
    def write(self, text: str, /) -> Any: ...


def csv_writer(sink: TextSink) -> Any:
    """RFC 4180: comma, double quotes where needed, CRLF after every record, UTF-8 (the sink's)."""
    return csv.writer(sink, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def write_rows(writer: Any, rows: Iterable[Iterable[str]]) -> int:
    """Rows through ``writer`` (:func:`csv_writer`), every cell through compliance.csv_safety."""
    count = 0
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
        count += 1
    return count
