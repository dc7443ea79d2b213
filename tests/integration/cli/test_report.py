"""msgworker report opt-outs|verify|number in-process on the real database: output, exit codes, audit, refusals."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.factories import make_customer, make_station, phone
from tests.support.cli import run
from tests.support.consent import make_inbound
from tests.support.reports import events_of, read_csv, tamper
from worker.cli import app
from worker.consent.inbound import handle_inbound
from worker.db import session_scope
from worker.models import AuditLog, Station
from worker.outbound.send import send_batch
from worker.outbox import enqueue
from worker.settings import get_settings

TODAY = datetime.now(UTC).date().isoformat()


def _stops(*bodies: str, station_code: str | None = None) -> list[str]:
    """One customer per body, each texting it in; their numbers."""
    numbers = []
    with session_scope() as s:
        station = make_station(s, code=station_code)
        for body in bodies:
            number = phone()
            handle_inbound(s, make_inbound(s, station, make_customer(s, station, phone_e164=number), body))
            numbers.append(number)
    return numbers


def _audit_rows(resource_type: str) -> list[AuditLog]:
    with session_scope() as s:
        return list(s.execute(select(AuditLog).where(AuditLog.resource_type == resource_type)
                              .order_by(AuditLog.created_at)).scalars())


def _opt_outs(cli: CliRunner, out: Path, *extra: str) -> tuple[int, str]:
    return run(cli, "report", "opt-outs", "--from", TODAY, "--to", TODAY, "--out", str(out), "--by", "alice", *extra)


def test_export_writes_the_zip_and_exactly_one_audit_row(cli: CliRunner, tmp_path: Path) -> None:
    """One export: the ZIP, one VIEW audit row naming who, the parameters, the rows and the file's SHA-256."""
    _stops("STOP", "stop texting me")
    out = tmp_path / "nov.zip"
    code, output = _opt_outs(cli, out)
    assert code == 0, output
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"2 rows; sha256 {digest}" in output
    assert "ledger integrity ok" in output
    (row,) = _audit_rows("opt_out_report")
    assert (row.action.value, row.actor, row.resource_id) == ("VIEW", "cli:alice", digest)
    assert row.new_values is not None
    assert row.new_values["rows"] == 2
    assert row.new_values["file_sha256"] == digest
    assert row.new_values["unmasked"] is False
    assert row.new_values["parameters"] == {"from": TODAY, "to": TODAY, "station": None, "unmask": False,
                                            "format": "zip"}
    assert row.new_values["integrity"] == "ok"
    assert [p.name for p in tmp_path.iterdir()] == ["nov.zip"]


def test_two_exports_give_identical_csv_bytes(cli: CliRunner, tmp_path: Path) -> None:
    """The same parameters over the same data: byte-identical opt_outs.csv (and the stdout CSV is the same bytes)."""
    _stops("STOP", "=SUM(1+1) please stop texting me", "Cancel")
    for name in ("a.zip", "b.zip"):
        assert _opt_outs(cli, tmp_path / name)[0] == 0
    first, second = (zipfile.ZipFile(tmp_path / n).read("opt_outs.csv") for n in ("a.zip", "b.zip"))
    assert first == second
    result = cli.invoke(app, ["report", "opt-outs", "--from", TODAY, "--to", TODAY, "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == first
    assert len(_audit_rows("opt_out_report")) == 3
    assert first.count(b"\r\n") == 4
    assert b",'=SUM(1+1) please stop texting me," in first


def test_json_format_and_unmask(cli: CliRunner) -> None:
    """--format json streams the rows, the summary and the chain; --unmask shows full numbers and is audited."""
    (number,) = _stops("STOP")
    result = cli.invoke(app, ["report", "opt-outs", "--from", TODAY, "--to", TODAY, "--format", "json", "--unmask"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout_bytes)
    (row,) = doc["rows"]
    assert row["phone"] == number
    assert doc["summary"]["figures"]["revocations"] == 1
    assert doc["chain"]["status"] == "ok"
    (audit,) = _audit_rows("opt_out_report")
    assert audit.new_values is not None
    assert audit.new_values["unmasked"] is True
    assert audit.new_values["file_sha256"] == hashlib.sha256(result.stdout_bytes).hexdigest()


def test_station_filter(cli: CliRunner, tmp_path: Path) -> None:
    """--station keeps only revocations that came through that station, and is named in the audit row."""
    _stops("STOP", station_code="EAST1")
    (west,) = _stops("STOP", station_code="WEST1")
    out = tmp_path / "west.zip"
    assert _opt_outs(cli, out, "--station", "west1")[0] == 0
    rows = read_csv(zipfile.ZipFile(out).read("opt_outs.csv"))
    assert [r["event_id"] for r in rows] == [str(events_of(west)[0].id)]
    assert rows[0]["station"] == "WEST1"
    (audit,) = _audit_rows("opt_out_report")
    assert audit.new_values is not None
    assert audit.new_values["parameters"]["station"] == "WEST1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-30", "--to", "2026-11-01"], "the range is reversed"),
        (["--from", TODAY, "--to", (datetime.now(UTC).date() + timedelta(days=1)).isoformat()], "in the future"),
        (["--from", "2026-11-31", "--to", TODAY], "is not a date"),
        (["--from", TODAY, "--to", TODAY, "--station", "NOPE9"], "no station with code 'NOPE9'"),
    ],
)
def test_bad_input_is_refused_and_leaves_no_file(cli: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    """A reversed or future range, a bad date, an unknown station: one line, exit 1, no file, no audit row."""
    code, output = run(cli, "report", "opt-outs", *args, "--out", str(tmp_path / "r.zip"))
    assert code == 1
    assert message in output
    assert list(tmp_path.iterdir()) == []
    assert _audit_rows("opt_out_report") == []


def test_output_paths_that_cannot_be_written(cli: CliRunner, tmp_path: Path) -> None:
    """A missing directory, a directory that is a file, an existing file, a name not .zip: refused, nothing left."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "exists.zip").write_bytes(b"keep me")
    cases = {
        tmp_path / "missing" / "r.zip": "is not a directory",
        tmp_path / "afile" / "r.zip": "is not a directory",
        tmp_path / "exists.zip": "already exists",
        tmp_path / "r.csv": "ending in .zip",
    }
    for out, message in cases.items():
        code, output = _opt_outs(cli, out)
        assert code == 1, output
        assert message in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "exists.zip"]
    assert (tmp_path / "exists.zip").read_bytes() == b"keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory(cli: CliRunner, tmp_path: Path) -> None:
    """A directory without write permission is refused before anything is read."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, output = _opt_outs(cli, locked / "r.zip")
    assert code == 1
    assert "cannot write" in output


def test_a_tampered_ledger_row_exports_as_integrity_failed(cli: CliRunner, tmp_path: Path) -> None:
    """A row edited behind the trigger: the next export is written, marked INTEGRITY_FAILED with the seq, exit 2."""
    number, _other = _stops("STOP", "STOP")
    (event,) = events_of(number)
    assert _opt_outs(cli, tmp_path / "before.zip")[0] == 0
    tamper("UPDATE compliance.consent_events SET evidence = jsonb_set(evidence, '{raw_body}', '\"START\"') "
           "WHERE id = :i", i=event.id)
    out = tmp_path / "after.zip"
    code, output = _opt_outs(cli, out)
    assert code == 2
    assert f"INTEGRITY_FAILED: the ledger is broken at seq {event.seq}" in output
    with zipfile.ZipFile(out) as zf:
        chain = json.loads(zf.read("chain.json"))
        summary = json.loads(zf.read("summary.json"))
    assert (chain["status"], chain["first_bad_seq"]) == ("INTEGRITY_FAILED", event.seq)
    assert chain["breaks"][0]["reason"].startswith("stored hash does not match")
    assert summary["integrity"] == {"status": "INTEGRITY_FAILED", "first_bad_seq": event.seq}
    assert "INTEGRITY_FAILED" in zipfile.ZipFile(out).read("summary.html").decode()
    (audit,) = [a for a in _audit_rows("opt_out_report") if a.new_values and a.new_values["file_name"] == "after.zip"]
    assert audit.new_values is not None
    assert (audit.new_values["integrity"], audit.new_values["first_bad_seq"]) == ("INTEGRITY_FAILED", event.seq)
    code, output = run(cli, "report", "verify", str(out))
    assert code == 2
    assert "records INTEGRITY_FAILED" in output


def test_a_deleted_last_event_is_found(cli: CliRunner, tmp_path: Path) -> None:
    """Removing a number's last event (nothing links to it) is found through its state row."""
    (number,) = _stops("STOP")
    (event,) = events_of(number)
    tamper("DELETE FROM compliance.consent_events WHERE id = :i", i=event.id)
    code, output = _opt_outs(cli, tmp_path / "r.zip")
    assert code == 2
    assert f"broken at seq {event.seq}" in output


def test_verify_command(cli: CliRunner, tmp_path: Path) -> None:
    """verify: ok and exit 0 for the file as written; CHANGED naming the file and exit 1 after an edit."""
    _stops("STOP")
    out = tmp_path / "r.zip"
    assert _opt_outs(cli, out)[0] == 0
    code, output = run(cli, "report", "verify", str(out))
    assert (code, output.startswith("ok: ")) == (0, True), output
    data = bytearray(out.read_bytes())
    data[60] ^= 0x01  # inside opt_outs.csv's compressed bytes
    out.write_bytes(bytes(data))
    code, output = run(cli, "report", "verify", str(out))
    assert code == 1
    assert "CHANGED" in output
    assert "opt_outs.csv" in output
    code, output = run(cli, "report", "verify", str(tmp_path / "none.zip"))
    assert (code, "does not exist" in output) == (1, True)


def test_number_dossier(cli: CliRunner, tmp_path: Path) -> None:
    """The dossier: every consent event, inbound message and outbound text with its decision; audited; verifiable."""
    (number,) = _stops("STOP")
    (event,) = events_of(number)
    out = tmp_path / "dossier.zip"
    code, output = run(cli, "report", "number", number, "--out", str(out), "--by", "bob")
    assert code == 0, output
    with zipfile.ZipFile(out) as zf:
        events = read_csv(zf.read("consent_events.csv"))
        inbound = read_csv(zf.read("inbound_messages.csv"))
        outbound = read_csv(zf.read("outbound_texts.csv"))
        summary = json.loads(zf.read("summary.json"))
    assert [e["event_id"] for e in events] == [str(event.id)]
    assert json.loads(events[0]["evidence"])["raw_body"] == "STOP"
    assert [m["body"] for m in inbound] == ["STOP"]
    (confirmation,) = outbound
    assert confirmation["in_reply_to_event_id"] == str(event.id)
    assert confirmation["in_reply_to_seq"] == str(event.seq)
    assert summary["parameters"]["phone"] == "+*********" + number[-2:]
    assert summary["counts"] == {"consent_events": 1, "inbound_messages": 1, "outbound_texts": 1}
    (audit,) = _audit_rows("number_dossier")
    assert audit.actor == "cli:bob"
    assert audit.new_values is not None
    assert number not in json.dumps(audit.new_values)
    assert run(cli, "report", "verify", str(out))[0] == 0


def test_dossier_shows_the_gate_decision_and_its_basis(cli: CliRunner, tmp_path: Path) -> None:
    """A text blocked by the gate appears with decision, reason and the consent events it relied on (by seq)."""
    (number,) = _stops("STOP")
    (event,) = events_of(number)
    with session_scope() as s:
        station_id = s.execute(select(Station.id)).scalar_one()
        blocked_id = enqueue(s, station_id=station_id, to=number, body="promo", purpose="marketing",
                             idempotency_key="promo-1").message.id
    settings = get_settings().model_copy(update={"OUTBOUND_RATE_LIMIT_ENABLED": False})
    (result,) = send_batch([blocked_id], settings=settings)
    assert result.status == "blocked"
    out = tmp_path / "d.zip"
    assert run(cli, "report", "number", number, "--out", str(out))[0] == 0
    rows = {r["outbox_id"]: r for r in read_csv(zipfile.ZipFile(out).read("outbound_texts.csv"))}
    row = rows[str(blocked_id)]
    assert (row["gate_decision"], row["gate_reason"]) == ("blocked", "opted_out")
    assert str(event.id) in row["basis_event_ids"].split()
    assert str(event.seq) in row["basis_event_seqs"].split()
    assert json.loads(row["gate_basis"])["outcome"] == "blocked"
