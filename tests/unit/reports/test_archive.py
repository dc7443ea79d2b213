"""HashingStream: the CSV sink hands on large pieces (few GIL releases) and still hashes and counts every byte."""

from __future__ import annotations

import hashlib
import io

from worker.reports.archive import HashingStream


class _CountingSink(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.calls += 1
        return super().write(data)


def test_rows_reach_the_raw_stream_in_large_pieces_with_the_same_bytes() -> None:
    """10,000 short rows (some not ASCII) arrive as a handful of writes, byte for byte, hashed and counted."""
    rows = [f"{i},caf\u00e9 \u2603,{'x' * (i % 50)}\r\n" for i in range(10_000)]
    raw = _CountingSink()
    sink = HashingStream(raw)
    for row in rows:
        assert sink.write(row) == len(row)
    expected = "".join(rows).encode("utf-8")
    assert sink.sha256.hexdigest() == hashlib.sha256(expected).hexdigest()  # passes on what is pending
    assert sink.bytes == len(expected)
    assert raw.getvalue() == expected
    assert raw.calls <= len(expected) // (1 << 16) + 2


def test_flush_with_nothing_pending_writes_nothing() -> None:
    raw = _CountingSink()
    sink = HashingStream(raw)
    sink.flush()
    assert raw.calls == 0
    assert sink.bytes == 0
    assert sink.sha256.hexdigest() == hashlib.sha256(b"").hexdigest()
