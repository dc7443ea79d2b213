"""Rows from a server-side cursor, fetched one batch ahead on a thread.

An export alternates between waiting for PostgreSQL to produce the next batch of rows (the
per-row lookups of the opt-out query, the predecessor lookups of the chain check) and
working on that batch in Python. Fetching the next batch on a thread while the current one is
worked on lets both run at once on this machine's two cores: psycopg releases the GIL while it
waits for the server. The cursor is used by the thread alone until the rows are exhausted, and
the consumer touches the connection only after this generator has finished (or been closed,
which stops and joins the thread first).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads

__all__ = ["json_from_text", "prefetched"]

_DONE = object()


# A run of fifteen digits (or digits and points) that starts a value: a number orjson might
# not give back as json does (it turns an integer past 64 bits into a float), or a long
# fraction. Runs inside strings (SIDs, Meta ids) follow a letter or a quote and do not count.
# Found with bytes.translate and bytes.find (both C): a regular expression scanning every
# position costs more than json.loads itself.
_RUN = b"0" * 15
_DIGITS_AS_ZERO = bytes(0x30 if chr(b) in "0123456789." else 0x78 for b in range(256))
_BEFORE_A_NUMBER = frozenset(b" \t\r\n:,[-")


def _long_number(raw: bytes) -> bool:
    shape = raw.translate(_DIGITS_AS_ZERO)
    at = shape.find(_RUN)
    while at != -1:  # ``at`` is where a run of digits begins (the first place 15 of them start)
        if at == 0 or raw[at - 1] in _BEFORE_A_NUMBER:
            return True
        end = shape.find(b"x", at)
        if end == -1:
            return False
        at = shape.find(_RUN, end)
    return False


def _loads(data: bytes | str) -> Any:
    """The objects json.loads gives, mostly by orjson (about four times faster on evidence).

    orjson and json agree on every document except numbers past 64 bits or with long
    fractions (guarded above) and text they refuse (a lone surrogate escape, a number too
    big for a double), which json then reads as before.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _long_number(raw):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(raw)
    # json.loads(bytes) first sniffs the encoding (UTF-8/16/32 and BOMs) on every value; the
    # database's JSON is always UTF-8 text without a BOM, and decoding it the way json.loads
    # would (UTF-8, surrogatepass) gives the same objects.
    return json.loads(raw.decode("utf-8", "surrogatepass"))


def json_from_text(cursor: psycopg.ServerCursor[Any]) -> None:
    """Load this cursor's json/jsonb values without the per-value encoding sniff (same objects).

    An export loads one evidence document per row (a million for the ledger check); the
    sniff was about a tenth of the check's row loading.
    """
    set_json_loads(_loads, cursor)


def prefetched(cursor: psycopg.ServerCursor[Any], size: int) -> Iterator[Any]:
    """Every row of the executed ``cursor``, in order, fetched ``size`` at a time one batch ahead."""
    batches: queue.Queue[object] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = cursor.fetchmany(size)
                batches.put(rows if rows else _DONE)
                if not rows:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            batches.put(exc)

    thread = threading.Thread(target=fetch, name="export-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, list)
            yield from item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):  # a batch the consumer will not take
                batches.get(timeout=0.05)
        thread.join()
