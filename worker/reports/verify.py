"""``msgworker report verify FILE.zip``: is this export exactly as it was written? Needs only the ZIP.

Checks, in order, and names every difference it finds:

1. it is a ZIP and one of ours (a ``SHA256SUMS`` manifest in our form, a summary.json
   that names our format), else a clear refusal;
2. the ZIP's structure: every header field our writer fixes (worker/reports/archive.py);
3. each member's content against ``SHA256SUMS`` (the same check as ``sha256sum -c``), and
   the manifest lists exactly the members there are;
4. each CSV against summary.json: its SHA-256, its byte and row counts, and the SHA-256 of
   its compressed stream (so even bits the decompressor ignores are pinned).

What it cannot know without the database is whether someone rebuilt a whole export with
new hashes: the SHA-256 of the ZIP file is kept in the audit log row of the export and
printed by it; docs/reports.md#verifying-an-export says how an auditor compares the two.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.errors import InvalidInput, NotFound
from worker.reports.archive import MANIFEST, parse_manifest, structure_problems

__all__ = ["FORMAT", "SUMMARY", "ZipCheck", "verify_zip"]

FORMAT = "msgworker-report/1"
# What zipfile raises for a member whose headers or data were damaged (an "encrypted" flag bit,
# an unknown method, a broken stream, a wrong size).
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError)
SUMMARY = "summary.json"


@dataclass
class ZipCheck:
    path: Path
    sha256: str
    problems: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def ledger_failed(self) -> bool:
        """The export itself recorded a broken ledger chain (INTEGRITY_FAILED) when it was made."""
        integrity = (self.summary or {}).get("integrity") or {}
        return isinstance(integrity, dict) and integrity.get("status") == "INTEGRITY_FAILED"

    def as_dict(self) -> dict[str, Any]:
        integrity = (self.summary or {}).get("integrity")
        return {"ok": self.ok, "file": str(self.path), "sha256": self.sha256, "problems": self.problems,
                "kind": (self.summary or {}).get("kind"), "integrity": integrity}


def _member_digest(zf: zipfile.ZipFile, name: str) -> tuple[str | None, str | None]:
    """(sha256, None) or (None, why it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with zf.open(name) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except _UNREADABLE as exc:
        return None, f"{name}: cannot be read back ({exc}): its bytes were changed"
    return digest.hexdigest(), None


def _csv_rows(zf: zipfile.ZipFile, name: str) -> int:
    with zf.open(name) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        return sum(1 for _ in csv.reader(text)) - 1


def _raw_stream_digest(data: bytes, info: zipfile.ZipInfo) -> str:
    start = info.header_offset + len(info.FileHeader(zip64=info.compress_type == zipfile.ZIP_DEFLATED))
    return hashlib.sha256(data[start : start + info.compress_size]).hexdigest()


def _ours(zf: zipfile.ZipFile, path: Path) -> list[tuple[str, str]]:
    names = zf.namelist()
    if MANIFEST not in names or SUMMARY not in names:
        raise InvalidInput(f"{path} is not a msgworker report: it has no {MANIFEST} and {SUMMARY}", field="file")
    try:
        manifest = parse_manifest(zf.read(MANIFEST))
    except _UNREADABLE:
        manifest = None
    if manifest is None:
        raise InvalidInput(f"{path} is not a msgworker report (or its {MANIFEST} was changed): "
                           "the manifest is not in sha256sum form", field="file")
    return manifest


def verify_zip(path: Path) -> ZipCheck:
    """Every difference between the file and what the export wrote (``ok`` when there is none)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist", field="file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="file") from None
    check = ZipCheck(path=path, sha256=hashlib.sha256(data).hexdigest())
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except _UNREADABLE as exc:
        raise InvalidInput(f"{path} is not a ZIP file we can read, or its headers were damaged ({exc})",
                           field="file") from None
    with zf:
        manifest = _ours(zf, path)
        check.problems.extend(structure_problems(data, zf))
        names = [n for n in zf.namelist() if n != MANIFEST]
        listed = [name for name, _ in manifest]
        if listed != names:
            check.problems.append(f"{MANIFEST} lists {listed} but the ZIP holds {names}")
        digests: dict[str, str] = {}
        for name, wanted in manifest:
            if name not in names:
                continue
            found, unreadable = _member_digest(zf, name)
            if unreadable is not None:
                check.problems.append(unreadable)
            elif found != wanted:
                check.problems.append(f"{name}: content changed (SHA-256 {found}, {MANIFEST} says {wanted})")
            else:
                digests[name] = found
        if SUMMARY in digests:
            _check_summary(zf, data, check, digests)
    return check


def _check_summary(zf: zipfile.ZipFile, data: bytes, check: ZipCheck, digests: dict[str, str]) -> None:
    try:
        summary = json.loads(zf.read(SUMMARY))
    except ValueError:
        check.problems.append(f"{SUMMARY} is not JSON")
        return
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        check.problems.append(f"{SUMMARY} does not name the format {FORMAT}")
        return
    check.summary = summary
    files = summary.get("files")
    if not isinstance(files, dict):
        check.problems.append(f"{SUMMARY} has no files section")
        return
    for name, facts in sorted(files.items()):
        if name not in digests or not isinstance(facts, dict):
            check.problems.append(f"{SUMMARY} describes {name}, which is missing or unreadable")
            continue
        info = zf.getinfo(name)
        if facts.get("sha256") != digests[name]:
            check.problems.append(f"{name}: SHA-256 differs from the one in {SUMMARY}")
        if facts.get("bytes") != info.file_size:
            check.problems.append(f"{name}: {info.file_size} bytes, {SUMMARY} says {facts.get('bytes')}")
        if "rows" in facts and facts["rows"] != _csv_rows(zf, name):
            check.problems.append(f"{name}: row count differs from {SUMMARY}'s {facts['rows']}")
        if facts.get("deflated_sha256") != _raw_stream_digest(data, info):
            check.problems.append(f"{name}: its compressed bytes in the ZIP were changed")
