"""msgworker consent / review / ledger commands, run in-process against the real database."""

from __future__ import annotations

import csv
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from tests.factories import make_customer, make_station, phone
from tests.support.consent import make_inbound
from worker import pii
from worker.cli import app
from worker.consent.inbound import handle_inbound
from worker.db import session_scope
from worker.models import AuditLog, ConsentEvent, ReviewItem
from worker.outbox import enqueue

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.stdout


def show(number: str) -> dict[str, object]:
    data = json.loads(run("consent", "show", number, "--json"))
    assert isinstance(data, dict)
    return data


def test_show_json_has_the_documented_fields(clean_db: str) -> None:
    """consent show --json gives phone, booleans for opted_out / marketing_consent, pending_review and events."""
    number = phone()
    data = show(number)
    assert data["phone"] == number
    assert data["opted_out"] is False
    assert data["marketing_consent"] is False
    assert data["pending_review"] is False
    assert data["events"] == []
    run("consent", "opt-out", number, "--by", "alice", "--note", "called the office")
    data = show(number)
    assert data["opted_out"] is True
    events = data["events"]
    assert isinstance(events, list)
    assert [(e["kind"], e["source"]) for e in events] == [("opt_out", "staff")]
    assert events[0]["evidence"]["by"] == "alice"
    human = run("consent", "show", number)
    assert "opted out: yes" in human


def test_staff_opt_out_writes_audit_and_cancels_unsent(clean_db: str) -> None:
    """opt-out --by records a staff event, an audit row for cli:NAME, and cancels queued texts."""
    number = phone()
    with session_scope() as session:
        station = make_station(session)
        msg_id = enqueue(session, station_id=station.id, to=number, body="Promo", purpose="marketing",
                         idempotency_key=f"m-{uuid.uuid4()}").message.id
    out = run("consent", "opt-out", number, "--by", "carol")
    assert "opt-out recorded" in out
    with session_scope() as session:
        audit = session.execute(select(AuditLog).where(AuditLog.resource_type == "consent_event")).scalar_one()
        assert audit.actor == "cli:carol"
        status = session.execute(text("SELECT status FROM core.outbound_messages WHERE id = :i"), {"i": msg_id})
        assert status.scalar_one() == "cancelled"
    assert "already opted out" in run("consent", "opt-out", number, "--by", "carol")


def test_opt_in_with_evidence_file(clean_db: str, tmp_path: Path) -> None:
    """opt-in --purpose marketing with a JSON evidence file records marketing consent and lifts the opt-out."""
    number = phone()
    run("consent", "opt-out", number, "--by", "dan")
    evidence = tmp_path / "consent.json"
    evidence.write_text(json.dumps({
        "disclosure_version": "2026-01", "url": "https://example.test/join", "ip": "203.0.113.7",
        "consented_at": "2026-03-02T15:00:00Z",
    }))
    out = run("consent", "opt-in", number, "--purpose", "marketing", "--evidence-file", str(evidence), "--by", "dan")
    assert "marketing_consent recorded" in out
    data = show(number)
    assert data["opted_out"] is False
    assert data["marketing_consent"] is True
    events = data["events"]
    assert isinstance(events, list)
    ev = events[-1]
    assert ev["occurred_at"].startswith("2026-03-02T15:00:00")
    assert ev["evidence"]["evidence"]["document"]["ip"] == "203.0.113.7"
    assert len(ev["evidence"]["evidence"]["file_sha256"]) == 64


def test_opt_in_refuses_missing_or_empty_evidence(clean_db: str, tmp_path: Path) -> None:
    """Without usable evidence nothing is recorded and the command says why."""
    number = phone()
    empty = tmp_path / "empty.json"
    empty.write_text("  ")
    result = runner.invoke(app, ["consent", "opt-in", number, "--purpose", "marketing", "--evidence-file", str(empty)])
    assert result.exit_code == 1
    assert "is empty" in result.output
    result = runner.invoke(app, ["consent", "opt-in", number, "--purpose", "marketing",
                                 "--evidence-file", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert show(number)["events"] == []


def test_ledger_verify_catches_tampering(clean_db: str) -> None:
    """ledger verify passes on a clean ledger and, after a raw UPDATE with triggers off, exits 1 naming the seq."""
    numbers = [phone() for _ in range(3)]
    for n in numbers:
        run("consent", "opt-out", n, "--by", "eve")
        run("consent", "opt-out", n, "--by", "eve", "--purpose", "marketing")
    assert "ledger ok: 6 events, 3 numbers" in run("ledger", "verify")
    index = pii.blind_index(numbers[1], kind="phone")
    with session_scope() as session:
        seq = session.execute(
            select(func.min(ConsentEvent.seq)).where(ConsentEvent.phone_index == index)
        ).scalar_one()
        session.execute(text("SET LOCAL session_replication_role = replica"))
        session.execute(
            text("UPDATE compliance.consent_events SET evidence = '{\"by\": \"mallory\"}' WHERE seq = :s"), {"s": seq}
        )
    out = run("ledger", "verify", code=1)
    assert f"first broken link: seq={seq} " in out
    assert "altered" in out
    report = json.loads(run("ledger", "verify", "--json", code=1))
    assert report["first_break"]["seq"] == seq


def test_review_cli_list_and_resolve(clean_db: str) -> None:
    """review list shows the open item with its message; resolve --as opt_out records the opt-out."""
    with session_scope() as session:
        station = make_station(session)
        customer = make_customer(session, station)
        handle_inbound(session, make_inbound(session, station, customer, "Dont text me at work"))
        item_id = session.execute(select(ReviewItem.id)).scalar_one()
        number = pii.decrypt(customer.phone_encrypted or "", kind="phone")
    listing = run("review", "list")
    assert str(item_id) in listing
    assert "Dont text me at work" in listing
    assert json.loads(run("review", "list", "--json"))[0]["id"] == str(item_id)
    out = run("review", "resolve", str(item_id), "--as", "opt_out", "--by", "frank", "--note", "clear revocation")
    assert "resolved_opt_out" in out
    assert "confirmation queued" in out
    assert show(number)["opted_out"] is True
    assert "no open review items" in run("review", "list")
    result = runner.invoke(app, ["review", "resolve", str(item_id), "--as", "not_opt_out", "--by", "f", "--note", "x"])
    assert result.exit_code == 1
    assert "already" in result.output
    result = runner.invoke(app, ["review", "resolve", str(item_id), "--as", "maybe", "--by", "f", "--note", "x"])
    assert result.exit_code == 1


def _write_import_csv(path: Path, good: int, station_code: str) -> dict[int, str]:
    """good rows plus bad rows mixed in; returns {line: expected reason fragment} for the bad ones."""
    bad: dict[int, str] = {}
    kinds = [
        ("not a phone", "", "", "phone:"),
        ("", "", "", "phone: empty"),
        ("+1 415 55", "", "", "phone:"),
        (phone(), "yesterday", "", "not an ISO-8601"),
        (phone(), "2999-01-01T00:00:00Z", "", "in the future"),
        (phone(), "", "NOPE", "unknown station code"),
    ]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phone", "occurred_at", "station", "note"])
        line = 1
        for i in range(good):
            if i % 100 == 50:
                raw, when, st, reason = kinds[(i // 100) % len(kinds)]
                line += 1
                w.writerow([raw, when, st, "bad row"])
                bad[line] = reason
            line += 1
            spelled = f"(415) {2 + i // 1000000}{(i // 10000) % 100:02d}-{i % 10000:04d}" if i % 3 == 0 else \
                f"+1415{2000000 + i:07d}"
            when = "2025-06-01T12:00:00Z" if i % 2 == 0 else ""
            w.writerow([spelled, when, station_code if i % 5 == 0 else "", f"row {i}"])
        line += 1
        f.write('"+14155550100","","","too","many","fields"\n')
        bad[line] = "fields"
    return bad


@pytest.mark.timeout(600)
def test_import_100k_rows_keeps_good_lists_bad_and_reruns_as_noop(clean_db: str, tmp_path: Path) -> None:
    """A 100,000-row opt-out list with bad rows: good rows become opt-outs, bad ones are listed, rerun adds nothing."""
    with session_scope() as session:
        code = make_station(session).code
    path = tmp_path / "optouts.csv"
    good = 100_000
    bad = _write_import_csv(path, good, code)
    rejects = tmp_path / "rejects.csv"
    started = time.monotonic()
    out = run("consent", "import", str(path), "--by", "importer", "--rejects", str(rejects))
    elapsed = time.monotonic() - started
    assert f"recorded: {good}  already recorded: 0  rejected: {len(bad)}" in out, out[:500]
    listed = {int(line): reason for line, reason in (row for row in csv.reader(rejects.open()) if row[0] != "line")}
    assert set(listed) == set(bad)
    for line, fragment in bad.items():
        assert fragment in listed[line], (line, listed[line])
        assert f"rejected line {line}: " in out
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(ConsentEvent)).scalar_one() == good
        states = session.execute(text("SELECT count(*) FROM compliance.consent_state WHERE opted_out")).scalar_one()
        assert states == good
    # (415) 200-0000 and +14152000000 spell the same number: normalised to one key.
    assert show("+14152000000")["opted_out"] is True
    again = run("consent", "import", str(path), "--by", "importer")
    assert f"recorded: 0  already recorded: {good}  rejected: {len(bad)}" in again
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(ConsentEvent)).scalar_one() == good
    # Not a timed assertion (bench/ measures speed); printed so a slow CI run is visible.
    print(f"imported {good} rows in {elapsed:.1f}s ({datetime.now(UTC).isoformat()})")


def test_import_chains_repeats_and_scopes_and_verifies(clean_db: str, tmp_path: Path) -> None:
    """Repeated numbers (even within one batch) chain in file order, station rows scope, and the ledger verifies."""
    from tests.support.consent import settings_override

    with session_scope() as session:
        code = make_station(session).code
    numbers = [phone() for _ in range(30)]
    path = tmp_path / "repeats.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Phone", "Occurred_At", "Station", "Note"])  # header names are case-insensitive
        for day in range(1, 4):
            for n in numbers:
                w.writerow([n, f"2025-0{day}-01", code if day == 2 else "", f"day {day}"])
        w.writerow([numbers[0], "2025-01-01", "", "exact repeat"])
        # The same number twice in one batch, at different times: two events, chained in file order.
        w.writerow([numbers[1], "2025-04-01T10:00:00-04:00", "", "again"])
        w.writerow([numbers[1], "2025-05-01T10:00:00-04:00", "", "and again"])
    with settings_override(CONSENT_OPT_OUT_SCOPE="station"):
        out = run("consent", "import", str(path), "--by", "ops", "--batch-size", "7")
    assert "recorded: 92  already recorded: 1  rejected: 0" in out
    data = show(numbers[0])
    events = data["events"]
    assert isinstance(events, list)
    assert [e["occurred_at"][:10] for e in events] == ["2025-01-01", "2025-02-01", "2025-03-01"]
    assert [e["scope"] == "business" for e in events] == [True, False, True]
    assert events[0]["evidence"]["occurred_at_assumed_utc"] is True
    second = show(numbers[1])["events"]
    assert isinstance(second, list)
    assert [e["occurred_at"][:10] for e in second][-2:] == ["2025-04-01", "2025-05-01"]
    assert "ledger ok: 92 events, 30 numbers" in run("ledger", "verify")


def test_import_refuses_unusable_files(clean_db: str, tmp_path: Path) -> None:
    """A file without a phone column, an empty file or a missing file stops with one clear line."""
    no_phone = tmp_path / "x.csv"
    no_phone.write_text("name,email\nPat,p@example.test\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    cases = ((no_phone, "no phone column"), (empty, "is empty"), (tmp_path / "nope.csv", "not a readable"))
    for path, message in cases:
        result = runner.invoke(app, ["consent", "import", str(path), "--by", "ops"])
        assert result.exit_code == 1
        assert message in result.output
