"""PII at rest on the real database: ciphertext in the columns, blind indexes, and key rotation.

Rotation runs as a real ``msgworker pii rotate`` process with a new key put first in
PII_KEYS, exactly as an operator would run it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Table, select, text

from tests.factories import make_customer, make_station, phone
from tests.support import env as test_env
from tests.support.processes import VENV_BIN
from worker import outbox, pii
from worker.db import session_scope
from worker.models import Base, ConsentEvent, ConsentState, Customer, OutboundMessage, ReviewItem, WebhookInbox
from worker.ops import pii_rotation
from worker.pii import KeyRing, PiiError

OLD_KEYS = f"t1:{test_env.TEST_PII_KEY}"
NEW_KEY = "t2:" + base64.urlsafe_b64encode(b"second-test-pii-key-0123456789ab").decode()
ROTATED_RING = KeyRing.parse(f"{NEW_KEY},{OLD_KEYS}", test_env.TEST_INDEX_KEY)


def raw(sql: str, **params: object) -> list[tuple[object, ...]]:
    with session_scope() as s:
        return [tuple(r) for r in s.execute(text(sql), params).all()]


def rotate(*args: str, keys: str = f"{NEW_KEY},{OLD_KEYS}") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "msgworker"), "pii", "rotate", *args],
        env={**os.environ, "PII_KEYS": keys},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_customer_pii_columns_hold_ciphertext_not_plaintext(db_session) -> None:
    """Phone and email are stored as v1.<key>.<blob> tokens that contain no trace of the value."""
    station = make_station(db_session)
    number = phone()
    customer = make_customer(db_session, station, phone_e164=number, email="pat@example.test")
    customer.address_encrypted = pii.encrypt("12 Main St, Springfield", kind="address")
    db_session.flush()

    row = db_session.execute(
        text("SELECT phone_encrypted, email_encrypted, address_encrypted FROM core.customers WHERE id = :id"),
        {"id": customer.id},
    ).one()
    for token, plain in zip(row, (number, "pat@example.test", "12 Main St, Springfield"), strict=True):
        assert token.startswith("v1.t1.")
        assert plain not in token
        assert number.lstrip("+") not in token
    assert pii.decrypt(row[0], kind="phone") == number
    assert pii.decrypt(row[1], kind="email") == "pat@example.test"
    assert pii.decrypt(row[2], kind="address") == "12 Main St, Springfield"


def test_outbox_recipient_is_ciphertext(db_session) -> None:
    """The outbox stores the recipient only as ciphertext plus blind index."""
    station = make_station(db_session)
    number = phone()
    result = outbox.enqueue(
        db_session,
        station_id=station.id,
        to=number,
        body="hi",
        purpose="transactional",
        idempotency_key=uuid.uuid4().hex,
    )
    token, index = db_session.execute(
        text("SELECT to_encrypted, to_index FROM core.outbound_messages WHERE id = :id"), {"id": result.message.id}
    ).one()
    assert number.lstrip("+") not in token
    assert pii.decrypt(token, kind="phone") == number
    assert bytes(index) == pii.blind_index(number, kind="phone")


def test_encryption_is_randomized_and_bound_to_kind() -> None:
    """The same value encrypts differently each time, and a phone token does not decrypt as an email."""
    a, b = pii.encrypt("+14155550100", kind="phone"), pii.encrypt("+14155550100", kind="phone")
    assert a != b
    with pytest.raises(PiiError, match="wrong key or kind"):
        pii.decrypt(a, kind="email")


def test_blind_index_is_stable_keyed_and_per_kind() -> None:
    """Equal values give equal indexes; another index key or another kind gives another index."""
    number = "+14155550100"
    idx = pii.blind_index(number, kind="phone")
    assert len(idx) == 32
    assert idx == pii.blind_index(number, kind="phone")
    assert idx != pii.blind_index(number, kind="email")
    assert idx != hashlib.sha256(number.encode()).digest()
    other = KeyRing.parse(OLD_KEYS, base64.urlsafe_b64encode(b"another-index-key-0123456789abcd").decode())
    assert other.blind_index(number, kind="phone") != idx


def test_old_key_still_decrypts_after_new_key_is_put_first() -> None:
    """A value written under t1 decrypts once t2 is first in the ring; new values use t2."""
    old_token = pii.encrypt("+14155550100", kind="phone")
    assert pii.key_id_of(old_token) == "t1"
    assert ROTATED_RING.decrypt(old_token, kind="phone") == "+14155550100"
    new_token = ROTATED_RING.encrypt("+14155550100", kind="phone")
    assert pii.key_id_of(new_token) == "t2"
    only_new = KeyRing.parse(NEW_KEY, test_env.TEST_INDEX_KEY)
    with pytest.raises(PiiError, match="'t1', which is not in PII_KEYS"):
        only_new.decrypt(old_token, kind="phone")


def test_every_encrypted_column_is_rotated_or_explained() -> None:
    """A new *_encrypted column cannot be added without deciding whether rotation covers it."""
    covered = {(rt.name, c) for rt in pii_rotation.ROTATED_TABLES for c in rt.columns}
    explained = set(pii_rotation.NOT_ROTATED)
    found = {
        (f"{t.schema or 'public'}.{t.name}", c.name)
        for t in Base.metadata.tables.values()
        for c in t.columns
        if c.name.endswith("_encrypted")
    }
    assert found == covered | explained
    assert not covered & explained


@dataclass
class Seeded:
    customers: dict[uuid.UUID, tuple[str, str, str]]
    phones: dict[str, str]  # table -> plaintext, for the single-row tables
    ledger_seq: int
    updated_at: datetime


def _seed(n_customers: int = 5) -> Seeded:
    """Rows in every table that holds PII, all under the old key t1, committed."""
    customers: dict[uuid.UUID, tuple[str, str, str]] = {}
    with session_scope() as s:
        station = make_station(s)
        for i in range(n_customers):
            number, email, address = phone(), f"c{i}@example.test", f"{i} Elm St"
            c = make_customer(s, station, phone_e164=number, email=email)
            c.address_encrypted = pii.encrypt(address, kind="address")
            customers[c.id] = (number, email, address)
        p = {t: phone() for t in ("outbox", "state", "review", "ledger")}
        outbox.enqueue(
            s, station_id=station.id, to=p["outbox"], body="x", purpose="transactional", idempotency_key="k1"
        )
        s.add(
            ConsentState(
                phone_index=pii.blind_index(p["state"], kind="phone"),
                phone_encrypted=pii.encrypt(p["state"], kind="phone"),
            )
        )
        s.add(
            ReviewItem(
                phone_index=pii.blind_index(p["review"], kind="phone"),
                phone_encrypted=pii.encrypt(p["review"], kind="phone"),
                classification={"intent": "ambiguous"},
                deadline_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        s.add(
            WebhookInbox(
                provider="twilio_sms",
                provider_event_id="SM" + "0" * 32,
                payload_encrypted=pii.encrypt(f"From={p['outbox']}&Body=STOP", kind=pii_rotation.INBOX_PAYLOAD_KIND),
            )
        )
        event = ConsentEvent(
            phone_index=pii.blind_index(p["ledger"], kind="phone"),
            phone_encrypted=pii.encrypt(p["ledger"], kind="phone"),
            kind="opt_out",
            purpose="all",
            source="sms_keyword",
            evidence={},
            occurred_at=datetime.now(UTC),
            hash=os.urandom(32),
        )
        s.add(event)
        s.flush()
        seq = event.seq
    # A recognisable updated_at, to prove rotation does not touch it.
    stamp = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    with session_scope() as s:
        s.execute(text("UPDATE core.customers SET updated_at = :t"), {"t": stamp})
        s.execute(text("UPDATE core.outbound_messages SET updated_at = :t"), {"t": stamp})
    return Seeded(customers, p, seq, stamp)


def _key_ids(table: Table, column: str) -> list[str]:
    return [
        str(v).split(".")[1]
        for (v,) in raw(f"SELECT {column} FROM {table.schema}.{table.name} WHERE {column} IS NOT NULL")
    ]


def test_rotate_reencrypts_everything_rotatable_and_leaves_the_ledger(clean_db: str) -> None:
    """After `pii rotate` every rotatable value is under t2 and decrypts to the same text; the ledger stays under t1."""
    seeded = _seed()
    before_index = raw("SELECT id, phone_index FROM core.customers ORDER BY id")

    proc = rotate("--batch-size", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done: every rotatable value is under key t2" in proc.stdout
    assert "core.customers: 5 row(s) in 3 batch(es), 15 value(s) re-encrypted" in proc.stdout
    assert "compliance.consent_events.phone_encrypted: left under its original keys" in proc.stdout
    assert "core.customers" in proc.stderr  # the progress bar

    for rt in pii_rotation.ROTATED_TABLES:
        for column in rt.columns:
            assert set(_key_ids(rt.table, column)) <= {"t2"}, (rt.name, column)
    assert _key_ids(ConsentEvent.__table__, "phone_encrypted") == ["t1"]  # type: ignore[arg-type]

    with session_scope() as s:
        for c in s.scalars(select(Customer)):
            number, email, address = seeded.customers[c.id]
            assert c.phone_encrypted is not None
            assert c.email_encrypted is not None
            assert c.address_encrypted is not None
            assert ROTATED_RING.decrypt(c.phone_encrypted, kind="phone") == number
            assert ROTATED_RING.decrypt(c.email_encrypted, kind="email") == email
            assert ROTATED_RING.decrypt(c.address_encrypted, kind="address") == address
            assert c.updated_at == seeded.updated_at
        om = s.scalars(select(OutboundMessage)).one()
        assert ROTATED_RING.decrypt(om.to_encrypted, kind="phone") == seeded.phones["outbox"]
        assert om.updated_at == seeded.updated_at
        state = s.scalars(select(ConsentState)).one()
        assert ROTATED_RING.decrypt(state.phone_encrypted, kind="phone") == seeded.phones["state"]
        review = s.scalars(select(ReviewItem)).one()
        assert ROTATED_RING.decrypt(review.phone_encrypted, kind="phone") == seeded.phones["review"]
        inbox = s.scalars(select(WebhookInbox)).one()
        assert ROTATED_RING.decrypt(inbox.payload_encrypted, kind=pii_rotation.INBOX_PAYLOAD_KIND).endswith("Body=STOP")
        event = s.scalars(select(ConsentEvent)).one()
        assert ROTATED_RING.decrypt(event.phone_encrypted, kind="phone") == seeded.phones["ledger"]
    # Lookups are unchanged: the blind index is not part of rotation.
    assert raw("SELECT id, phone_index FROM core.customers ORDER BY id") == before_index


def test_rotate_resumes_after_an_interrupted_run(clean_db: str) -> None:
    """A run stopped after one batch keeps that batch; the rerun finishes only what is left."""
    _seed(n_customers=7)

    first = rotate("--batch-size", "3", "--max-batches", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "core.customers: 3 row(s) in 1 batch(es), 9 value(s) re-encrypted" in first.stdout
    assert "rerun to continue" in first.stdout
    assert sorted(_key_ids(Customer.__table__, "phone_encrypted")) == ["t1"] * 4 + ["t2"] * 3  # type: ignore[arg-type]

    second = rotate("--batch-size", "3")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "core.customers: 4 row(s) in 2 batch(es), 12 value(s) re-encrypted" in second.stdout
    assert set(_key_ids(Customer.__table__, "phone_encrypted")) == {"t2"}  # type: ignore[arg-type]

    third = rotate()
    assert third.returncode == 0
    assert "core.customers: 0 row(s) in 0 batch(es), 0 value(s) re-encrypted" in third.stdout


def test_rotate_dry_run_counts_and_changes_nothing(clean_db: str) -> None:
    """--dry-run reports rows per table and key usage, and writes nothing."""
    _seed(n_customers=4)
    before = raw("SELECT phone_encrypted FROM core.customers ORDER BY id")
    proc = rotate("--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "core.customers: 4 row(s) to re-encrypt under t2" in proc.stdout
    assert "core.customers.phone_encrypted: t1=4" in proc.stdout
    assert "compliance.consent_events.phone_encrypted: t1=1  (not rotated" in proc.stdout
    assert raw("SELECT phone_encrypted FROM core.customers ORDER BY id") == before


def test_rotate_reports_values_it_cannot_decrypt_and_does_the_rest(clean_db: str) -> None:
    """A value under a key missing from PII_KEYS is named with its row id; other rows still rotate; exit 1."""
    seeded = _seed(n_customers=3)
    stranger = KeyRing.parse(
        "zz:" + base64.urlsafe_b64encode(b"a-key-nobody-has-0123456789abcde").decode(), test_env.TEST_INDEX_KEY
    )
    bad_id = next(iter(seeded.customers))
    with session_scope() as s:
        s.execute(
            text("UPDATE core.customers SET email_encrypted = :v WHERE id = :id"),
            {"v": stranger.encrypt("x@example.test", kind="email"), "id": bad_id},
        )
    proc = rotate()
    assert proc.returncode == 1
    assert f"failed: core.customers id={bad_id} email_encrypted" in proc.stderr
    assert "'zz', which is not in PII_KEYS" in proc.stderr
    assert "1 value(s) could not be re-encrypted" in proc.stderr
    # The same row's phone was still re-encrypted, and so was everything else.
    assert set(_key_ids(Customer.__table__, "phone_encrypted")) == {"t2"}  # type: ignore[arg-type]


def test_status_names_keys_in_use_and_keys_that_can_go(clean_db: str) -> None:
    """`pii status` counts values per key, and says when an old key is no longer used anywhere."""
    _seed(n_customers=2)
    with session_scope() as s:
        s.execute(text("DELETE FROM core.outbound_messages"))
    env = {**os.environ, "PII_KEYS": f"{NEW_KEY},{OLD_KEYS}"}
    cmd = [str(VENV_BIN / "msgworker"), "pii", "status"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "core.customers.phone_encrypted: t1=2" in out
    assert "current key: t2; ring: t2, t1" in out
    assert "can be removed" not in out  # t1 is still used

    # With a third, unused old key in the ring, status says it can go.
    spare = "t0:" + base64.urlsafe_b64encode(b"an-old-unused-key-0123456789abcd").decode()
    env["PII_KEYS"] = f"{NEW_KEY},{OLD_KEYS},{spare}"
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "no value uses t0: it can be removed from PII_KEYS" in out
