"""The opt-out export's second process: the ledger check, then the last share of the rows.

Re-hashing the range's events (worker/reports/chain.py) and building the report's rows
(worker/reports/opt_outs.py) are both pure-Python CPU; one process would do them one after
the other on one core. So the export starts a second process that imports its snapshot
(``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``: it sees exactly what the rows see),
checks the ledger, and then, for a range large enough to be worth it, builds the rows of the
range's last ledger sequences (``TAIL_SHARE`` of them) while the export builds the rest.
Its rows go to a CSV file the export appends after its own, and its figures to a pickled
:class:`~compliance.report_tally.Tally` the export merges; the CSV's bytes are the ones one
process would have written (each row's text depends on that row alone). The check's result
comes back as JSON on stdout.

The split is by sequence number, not by row count (counting would cost a pass over the range):
on a ledger where revocations cluster, the shares are uneven and the export is slower, never
different.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from compliance.ledger_chain import ChainBreak
from compliance.report_tally import Tally
from worker.db_deadlines import connect_params, libpq_url
from worker.reports.chain import ChainResult, check_range
from worker.reports.opt_outs import RangeParams, stream_rows
from worker.reports.snapshot import ReadSnapshot, load_stations
from worker.settings import get_settings

__all__ = ["MIN_SPLIT_SPAN", "TAIL_SHARE", "BackgroundCheck", "Tail", "split"]

# The second process also has the check to do (about half the CPU of the rows per event);
# measured on the million-event bench ledger, a third of the rows' sequences balances them.
TAIL_SHARE = 0.3
# Below this many sequences the rows take a second or less: not worth a second share.
MIN_SPLIT_SPAN = 50_000
_PIECE = 1 << 16


@dataclass(frozen=True, slots=True)
class Tail:
    """The rows of ledger sequences ``lo``..``hi`` (both inclusive), built in the second process."""

    lo: int
    hi: int


def split(bounds: tuple[int, int] | None) -> tuple[tuple[int, int] | None, Tail | None]:
    """The export's own sequence bounds and the second process's share, if the range is large."""
    if bounds is None:
        return None, None
    lo, hi = bounds
    if hi - lo + 1 < MIN_SPLIT_SPAN:
        return bounds, None
    cut = hi - int((hi - lo + 1) * TAIL_SHARE)
    return (lo, cut), Tail(cut + 1, hi)


def _to_json(result: ChainResult) -> dict[str, Any]:
    v = result.verify
    return {
        "events": result.events, "first": result.first, "last": result.last, "head": result.head,
        "break_count": v.break_count,
        "breaks": [[b.seq, str(b.event_id), b.phone_index.hex(), b.reason] for b in v.breaks],
        "first_break": None if v.first_break is None else [
            v.first_break.seq, str(v.first_break.event_id), v.first_break.phone_index.hex(), v.first_break.reason],
    }  # fmt: skip


def _from_json(doc: dict[str, Any]) -> ChainResult:
    def brk(item: list[Any]) -> ChainBreak:
        return ChainBreak(int(item[0]), uuid.UUID(item[1]), bytes.fromhex(item[2]), str(item[3]))

    def pair(item: list[Any] | None) -> tuple[int, str] | None:
        return (int(item[0]), str(item[1])) if item else None

    result = ChainResult(events=int(doc["events"]), first=pair(doc["first"]), last=pair(doc["last"]),
                         head=pair(doc["head"]))  # fmt: skip
    result.verify.break_count = int(doc["break_count"])
    result.verify.breaks = [brk(b) for b in doc["breaks"]]
    result.verify.first_break = brk(doc["first_break"]) if doc["first_break"] else None
    return result


class BackgroundCheck:
    """The second process, started on the export's exported snapshot.

    ``tail`` (with the snapshot's time and the report's parameters) also gives it the rows
    of those sequences; :meth:`append_tail` then waits for it and adds them after the
    export's own.
    """

    def __init__(
        self, exported_snapshot: str, sql_params: dict[str, Any], *, tail: Tail | None = None,
        params: RangeParams | None = None, taken_at: datetime | None = None,
    ) -> None:  # fmt: skip
        self._dir = tempfile.TemporaryDirectory(prefix="msgworker-report-")  # removed by result() or cancel()
        self._stderr = (Path(self._dir.name) / "stderr").open("w+b")
        self.tail = tail
        # The libpq URL made here: parsing SQLAlchemy's URL would import SQLAlchemy into the child.
        request: dict[str, Any] = {"snapshot": exported_snapshot, "start": sql_params["start"].isoformat(),
                                   "end": sql_params["end"].isoformat(), "tail": None,
                                   "dsn": libpq_url(get_settings().DATABASE_URL)}  # fmt: skip
        if tail is not None:
            if params is None or taken_at is None:
                raise ValueError("the rows' share needs the report's parameters and the snapshot's time")
            request["tail"] = {
                "lo": tail.lo, "hi": tail.hi, "from": params.start.isoformat(), "to": params.end.isoformat(),
                "station": str(params.station) if params.station else None, "unmask": params.unmask,
                "taken_at": taken_at.isoformat(), "dir": self._dir.name,
            }  # fmt: skip
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "worker.reports.beside"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )  # fmt: skip
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request).encode())
        self._proc.stdin.close()
        self._result: ChainResult | None = None

    def _wait(self) -> ChainResult:
        if self._result is None:
            assert self._proc.stdout is not None
            out = self._proc.stdout.read()
            code = self._proc.wait()
            if code != 0:
                self._stderr.seek(0)
                errors = self._stderr.read().decode("utf-8", "replace")[-2000:]
                self.cancel()
                raise RuntimeError(f"the ledger check process failed (exit {code}): {errors}")
            self._result = _from_json(json.loads(out))
        return self._result

    def append_tail(self, sink: Any, tally: Tally) -> int:
        """Wait for the second process; write its rows' CSV text to ``sink`` and add its figures
        to ``tally`` (the caller's rows come first). The number of rows added."""
        if self.tail is None:
            return 0
        self._wait()
        folder = Path(self._dir.name)
        with (folder / "tally.pickle").open("rb") as f:
            theirs: Tally = pickle.load(f)  # noqa: S301 - written by our own child process a moment ago
        with (folder / "rows.csv").open("r", encoding="utf-8", newline="") as f:
            while piece := f.read(_PIECE):
                sink.write(piece)
        tally.merge(theirs)
        return theirs.rows

    def result(self) -> ChainResult:
        """Wait for the second process (the caller's snapshot must still be open); its check's result."""
        try:
            return self._wait()
        finally:
            self.cancel()

    def cancel(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()
        self._dir.cleanup()


def _rows(conn: psycopg.Connection[Any], request: dict[str, Any], tail: dict[str, Any]) -> None:
    # Imported here: the check alone (the CLI's ledger commands) does not need the writer's imports.
    from worker.reports.csv_rows import csv_writer, write_rows

    params = RangeParams(date.fromisoformat(tail["from"]), date.fromisoformat(tail["to"]),
                         uuid.UUID(tail["station"]) if tail["station"] else None, bool(tail["unmask"]))  # fmt: skip
    snap = ReadSnapshot(conn=conn, taken_at=datetime.fromisoformat(tail["taken_at"]), snapshot="",
                        exported=request["snapshot"], stations=load_stations(conn))  # fmt: skip
    tally = Tally(params.start, params.end)
    folder = Path(tail["dir"])
    with (folder / "rows.csv").open("w", encoding="utf-8", newline="") as f:
        write_rows(csv_writer(f), stream_rows(snap, params, tally, bounds=(int(tail["lo"]), int(tail["hi"]))))
    with (folder / "tally.pickle").open("wb") as f:
        pickle.dump(tally, f, protocol=pickle.HIGHEST_PROTOCOL)


def _child() -> None:
    request = json.loads(sys.stdin.read())
    params = {"start": datetime.fromisoformat(request["start"]), "end": datetime.fromisoformat(request["end"])}
    settings = get_settings()
    with psycopg.connect(request["dsn"], **connect_params(
            settings, statement_timeout_ms=0, lock_timeout_ms=10000)) as conn:  # fmt: skip
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(request["snapshot"])))
        # Times read in UTC: the ledger check hands them to orjson as they are (stored_hash_matches),
        # and a server whose default zone is another would send every event the long way.
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        result = check_range(conn, params)
        if request["tail"] is not None:
            _rows(conn, request, request["tail"])
        conn.rollback()
    sys.stdout.write(json.dumps(_to_json(result)))


if __name__ == "__main__":
    _child()
