"""The export ZIP: written to a temporary file beside the target, fixed in form, renamed at the end.

Every byte of an export ZIP is either file content, which ``SHA256SUMS`` (and, for the
compressed members, summary.json) pins, or a ZIP header field whose value this module
fixes: the time (1980-01-01 00:00, so nothing in the headers depends on when it ran), the
permissions, the versions, no comments or extra fields, members back to back from offset 0
and nothing after the end record. :func:`structure_problems` checks exactly that, so the
verifier (worker/reports/verify.py) can tell that one byte anywhere was edited without the
database.

Compressed members (the CSVs) are streamed in (``force_zip64``: no size limit, and memory
stays flat); the small JSON, HTML and manifest members are stored uncompressed.

The file is written as ``.<name>.<random>.part`` in the target directory (so a full disk or
a missing permission shows up before any reading, and no half-written report ever has the
final name) and linked into place at the end, which refuses to replace an existing file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from worker.errors import InvalidInput

__all__ = [
    "FIXED_TIME",
    "MANIFEST",
    "HashingStream",
    "ReportZip",
    "manifest_bytes",
    "parse_manifest",
    "structure_problems",
]

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
MANIFEST = "SHA256SUMS"
_MODE = 0o100644 << 16  # a regular file, rw-r--r--
_UNIX = 3
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
# A central directory record (APPNOTE 4.3.12), as zipfile writes it.
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_CENTRAL_SIG = b"PK\x01\x02"


class HashingStream:
    """A write-only text sink for csv.writer: UTF-8 into ``raw``, counting bytes and hashing them.

    Text is passed on in pieces of about 64 KiB, not row by row: each pass through zlib, the
    file and SHA-256 lets go of the GIL, and an export's prefetch thread (worker/reports/
    prefetch.py) then holds it for up to the switch interval; once per CSV row that was most
    of the deflate time on a million-event report. The bytes are the same (deflate's output
    does not depend on how its input is cut). ``sha256`` and ``bytes`` pass on what is pending
    first; the owner calls :meth:`flush` before it closes ``raw``.
    """

    _PIECE = 1 << 16

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._sha256 = hashlib.sha256()
        self._bytes = 0
        self._pending: list[str] = []
        self._pending_chars = 0

    def write(self, text: str) -> int:
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars >= self._PIECE:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        self._pending_chars = 0
        self._raw.write(data)
        self._sha256.update(data)
        self._bytes += len(data)

    @property
    def sha256(self) -> hashlib._Hash:
        """SHA-256 of everything written so far."""
        self.flush()
        return self._sha256

    @property
    def bytes(self) -> int:
        self.flush()
        return self._bytes


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    sha256: str
    bytes: int
    # SHA-256 of the compressed stream as stored in the ZIP (compressed members only).
    deflated_sha256: str | None = None


_DEFLATE_LEVEL = 1


def _info(name: str, *, deflate: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    if deflate:
        # Level 1: the million-event report's CSV deflates in 1.1 s instead of 2.6 s (level
        # 6) for 10% more bytes (56 MB instead of 51 MB), and the export waits for it. A
        # ZipInfo handed to ZipFile.open keeps its own level: "compress_level" from Python
        # 3.13, "_compresslevel" before.
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", _DEFLATE_LEVEL)
    info.create_system = _UNIX
    info.external_attr = _MODE
    return info


def manifest_bytes(members: list[Member]) -> bytes:
    """``sha256sum`` format (two spaces, LF), members in ZIP order: ``sha256sum -c SHA256SUMS`` checks it."""
    return "".join(f"{m.sha256}  {m.name}\n" for m in members).encode("ascii")


def parse_manifest(data: bytes) -> list[tuple[str, str]] | None:
    """[(name, sha256)] from a manifest in exactly :func:`manifest_bytes`' form, else None."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    entries: list[tuple[str, str]] = []
    for line in text.splitlines(keepends=True):
        digest, sep, rest = line.partition("  ")
        name = rest[:-1] if rest.endswith("\n") else ""
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            return None
        entries.append((name, digest))
    if manifest_bytes([Member(n, d, 0) for n, d in entries]) != data:
        return None
    return entries


class ReportZip:
    """One export being written; ``publish()`` gives it its name, ``discard()`` removes all trace."""

    def __init__(self, target: Path) -> None:
        self.target = target
        directory = target.parent
        if target.exists():
            raise InvalidInput(
                f"{target} already exists; exports never overwrite a file, choose another name", field="out"
            )
        if target.suffix.lower() != ".zip":
            raise InvalidInput(f"{target}: the export is a ZIP file, give a name ending in .zip", field="out")
        if not directory.is_dir():
            raise InvalidInput(f"cannot write {target}: {directory} is not a directory", field="out")
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
        except OSError as exc:
            raise InvalidInput(f"cannot write to {directory}: {exc.strerror}", field="out") from None
        os.close(fd)
        self.temp = Path(temp)
        self.members: list[Member] = []
        self._zip = zipfile.ZipFile(self.temp, "w")
        self.sha256: str | None = None

    @contextlib.contextmanager
    def compressed(self, name: str) -> Iterator[HashingStream]:
        """Stream a text member (the CSVs): deflated, hashed while written."""
        info = _info(name, deflate=True)
        offset = self._zip.fp.tell() if self._zip.fp is not None else 0
        with self._zip.open(info, "w", force_zip64=True) as raw:
            sink = HashingStream(raw)
            yield sink
            sink.flush()
        header = len(info.FileHeader(zip64=True))
        assert self._zip.fp is not None
        self._zip.fp.flush()  # read back below through another handle
        deflated = hashlib.sha256()
        with open(self.temp, "rb") as f:
            f.seek(offset + header)
            left = info.compress_size
            while left:
                chunk = f.read(min(left, 1 << 20))
                deflated.update(chunk)
                left -= len(chunk)
        self.members.append(Member(name, sink.sha256.hexdigest(), sink.bytes, deflated.hexdigest()))

    def stored(self, name: str, data: bytes) -> None:
        """A small member, stored as is."""
        self._zip.writestr(_info(name, deflate=False), data)
        self.members.append(Member(name, hashlib.sha256(data).hexdigest(), len(data)))

    def finish(self) -> str:
        """Write the manifest, close the ZIP; the SHA-256 of the whole file."""
        self.stored(MANIFEST, manifest_bytes(list(self.members)))
        self._zip.close()
        digest = hashlib.sha256()
        with open(self.temp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()
        return self.sha256

    def publish(self) -> Path:
        """Give the finished file its name (never replacing one that appeared meanwhile)."""
        try:
            os.link(self.temp, self.target)
        except FileExistsError:
            self.discard()
            raise InvalidInput(
                f"{self.target} appeared while the export ran; nothing was written there", field="out"
            ) from None
        self.temp.unlink()
        return self.target

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._zip.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def _central_record(info: zipfile.ZipInfo) -> bytes:
    """The central directory record our writer produces for ``info`` (no extra field, no comment)."""
    y, mo, d, h, mi, sec = info.date_time
    name = info.orig_filename.encode("utf-8")
    return _CENTRAL.pack(
        _CENTRAL_SIG, info.create_version, info.create_system,
        info.extract_version, info.reserved, info.flag_bits, info.compress_type,
        h << 11 | mi << 5 | sec // 2, (y - 1980) << 9 | mo << 5 | d, info.CRC, info.compress_size, info.file_size,
        len(name), 0, 0, 0, info.internal_attr, info.external_attr, info.header_offset,
    ) + name  # fmt: skip


def structure_problems(data: bytes | IO[bytes], zf: zipfile.ZipFile) -> list[str]:
    """What in the ZIP's headers differs from what :class:`ReportZip` writes (empty: nothing)."""
    raw = io.BytesIO(data) if isinstance(data, bytes) else data
    problems: list[str] = []
    infos = zf.infolist()
    position = 0
    for info in infos:
        deflated = info.compress_type == zipfile.ZIP_DEFLATED
        expected_version = 45 if deflated else 20
        fields = {
            "time": (info.date_time, FIXED_TIME),
            "method": (info.compress_type in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED), True),
            "system": (info.create_system, _UNIX),
            "version": ((info.create_version, info.extract_version), (expected_version, expected_version)),
            "flags": (info.flag_bits, 0),
            "attributes": ((info.external_attr, info.internal_attr, info.volume, info.reserved), (_MODE, 0, 0, 0)),
            "comment": (info.comment, b""),
            "extra": (info.extra, b""),
            "offset": (info.header_offset, position),
        }
        for what, (found, wanted) in fields.items():
            if found != wanted:
                problems.append(f"{info.filename}: ZIP header field '{what}' was changed")
        header = info.FileHeader(zip64=deflated)
        raw.seek(info.header_offset)
        if raw.read(len(header)) != header:
            problems.append(f"{info.filename}: its local ZIP header differs from the central directory's")
        position = info.header_offset + len(header) + info.compress_size
    raw.seek(0, os.SEEK_END)
    size = raw.tell()
    central = b"".join(_central_record(info) for info in infos)
    raw.seek(position)
    if raw.read(len(central)) != central:
        problems.append("the ZIP's central directory was changed")
    end = raw.read(_EOCD.size)
    if len(end) != _EOCD.size or size != position + len(central) + _EOCD.size:
        problems.append("the ZIP's end record is not where it belongs: bytes were added or removed")
    elif end != _EOCD.pack(_EOCD_SIG, 0, 0, len(infos), len(infos), len(central), position, 0):
        problems.append("the ZIP's end record was changed")
    return problems
