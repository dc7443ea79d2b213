"""report verify: an export ZIP checked with nothing but the file; one edited byte anywhere is found."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.factories import make_customer, make_station, phone
from tests.support.consent import make_inbound
from tests.support.reports import Exported, export
from worker.consent.inbound import handle_inbound
from worker.db import session_scope
from worker.errors import InvalidInput, NotFound
from worker.reports.verify import verify_zip

ROOT = Path(__file__).resolve().parents[3]
MEMBERS = ["opt_outs.csv", "chain.json", "summary.json", "summary.html", "SHA256SUMS"]


@pytest.fixture
def exported(clean_db: str, tmp_path: Path) -> Exported:
    """A real export of two revocations (one body a customer could use to attack a spreadsheet)."""
    with session_scope() as s:
        station = make_station(s)
        for body in ("STOP", "=cmd|' /C calc'!A0 stop texting me"):
            handle_inbound(s, make_inbound(s, station, make_customer(s, station, phone_e164=phone()), body))
    today = datetime.now(UTC).date()
    return export(tmp_path, today, today)


def _rezip(source: Path, target: Path, edit: str) -> None:
    """Copy the export member by member with a plain zip tool, flipping one byte of ``edit``."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = bytearray(src.read(info.filename))
            if info.filename == edit:
                data[len(data) // 2] ^= 0x01
            dst.writestr(info, bytes(data))


def test_an_untouched_export_verifies(exported: Exported) -> None:
    """The ZIP as written: ok, and its SHA-256 is the one the export reported (and audited)."""
    check = verify_zip(exported.path)
    assert check.problems == []
    assert check.sha256 == exported.result.sha256 == hashlib.sha256(exported.path.read_bytes()).hexdigest()
    assert [i.filename for i in zipfile.ZipFile(exported.path).infolist()] == MEMBERS


@pytest.mark.parametrize("member", MEMBERS)
def test_one_edited_byte_in_each_file_is_named(exported: Exported, tmp_path: Path, member: str) -> None:
    """One byte changed in any member (re-zipped by an ordinary tool) is found, and the member is named."""
    changed = tmp_path / f"changed-{member}.zip"
    _rezip(exported.path, changed, member)
    try:
        problems = verify_zip(changed).problems
    except InvalidInput as exc:  # the manifest itself no longer parses: refused, naming it
        problems = [f"refused: {exc}"]
    if member == "SHA256SUMS":
        named = [p for p in problems if "SHA256SUMS says" in p or (p.startswith("refused") and "SHA256SUMS" in p)]
        assert named, problems
    else:
        assert any(p.startswith(f"{member}: content changed") for p in problems), problems


def test_every_single_byte_of_the_zip_is_covered(exported: Exported, tmp_path: Path) -> None:
    """Flipping any one byte of the ZIP file, header or data, makes verify fail or refuse: none slips through."""
    data = exported.path.read_bytes()
    target = tmp_path / "flipped.zip"
    slipped = []
    for position in range(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        target.write_bytes(bytes(flipped))
        try:
            if verify_zip(target).ok:
                slipped.append(position)
        except InvalidInput:
            pass
    assert slipped == []


def test_an_appended_byte_is_found(exported: Exported, tmp_path: Path) -> None:
    """Bytes added after the end record (where zip tools ignore them) are found too."""
    target = tmp_path / "longer.zip"
    target.write_bytes(exported.path.read_bytes() + b"\x00")
    assert any("end record" in p for p in verify_zip(target).problems)


def test_a_zip_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    """A ZIP without our manifest and summary, a file that is no ZIP, and a missing file: each a clear refusal."""
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("opt_outs.csv", "seq\r\n1\r\n")
    with pytest.raises(InvalidInput, match="not a msgworker report"):
        verify_zip(foreign)
    text = tmp_path / "notes.zip"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match="not a ZIP file"):
        verify_zip(text)
    with pytest.raises(NotFound, match="does not exist"):
        verify_zip(tmp_path / "missing.zip")


def test_an_auditor_repeats_the_check_with_sha256sum_and_the_documented_script(
    exported: Exported, tmp_path: Path
) -> None:
    """docs/reports.md's recipe works as written: sha256sum -c on the unzipped files, then its Python script."""
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(exported.path) as zf:
        zf.extractall(unpacked)
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == 4
    doc = (ROOT / "docs" / "reports.md").read_text()
    script = re.search(r"<!-- auditor-script -->\n```python\n(.*?)```", doc, re.DOTALL)
    assert script is not None, "docs/reports.md must hold the auditor's script"
    (tmp_path / "check.py").write_text(script.group(1))
    ran = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(unpacked)], capture_output=True, text=True,
                         check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "rows: 2" in ran.stdout
    (unpacked / "opt_outs.csv").write_bytes((unpacked / "opt_outs.csv").read_bytes().replace(b"STOP", b"STOp"))
    ran = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(unpacked)], capture_output=True, text=True,
                         check=False)
    assert ran.returncode != 0
    assert "opt_outs.csv" in ran.stdout + ran.stderr
