"""Retention: an opt-out binds the number, not the customer row; soft-deleting a customer keeps the evidence."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from tests.factories import make_customer, make_station, phone
from tests.support.consent import make_inbound
from tests.support.reports import AUDITOR, events_of, read_csv
from worker.consent.inbound import handle_inbound
from worker.db import session_scope
from worker.models import Customer, OutboundMessage, Station
from worker.outbound.send import send_batch
from worker.outbox import enqueue
from worker.reports.dossier import export_number
from worker.settings import get_settings


def test_opt_out_binds_a_number_whose_customer_was_deleted_and_created_again(clean_db: str, tmp_path: Path) -> None:
    """STOP, customer soft-deleted, a new customer row for the same number: a text to it is still blocked
    (opted_out), and the dossier still shows the first customer's STOP."""
    number = phone()
    with session_scope() as s:
        station = make_station(s)
        first = make_customer(s, station, phone_e164=number)
        handle_inbound(s, make_inbound(s, station, first, "STOP"))
        station_id, first_id = station.id, first.id
    with session_scope() as s:
        s.execute(update(Customer).where(Customer.id == first_id).values(deleted_at=datetime.now(UTC)))
    with session_scope() as s:
        station = s.get(Station, station_id)
        assert station is not None
        again = make_customer(s, station, phone_e164=number, first_name="Pat again")
        outbound_id = enqueue(s, station_id=station_id, to=number, body="Your chef arrives at 6pm",
                              purpose="transactional", idempotency_key="after-recreate",
                              customer_id=again.id).message.id
    settings = get_settings().model_copy(update={"OUTBOUND_RATE_LIMIT_ENABLED": False})
    (result,) = send_batch([outbound_id], settings=settings)
    assert (result.status, result.reason) == ("blocked", "opted_out")
    with session_scope() as s:
        row = s.get(OutboundMessage, outbound_id)
        assert row is not None
        assert row.gate_basis is not None
        assert str(events_of(number)[0].id) in row.gate_basis["events"]
    out = tmp_path / "dossier.zip"
    with session_scope() as s:
        export_number(s, number, out=out, unmask=False, actor=AUDITOR)
    with zipfile.ZipFile(out) as zf:
        inbound = read_csv(zf.read("inbound_messages.csv"))
        outbound = read_csv(zf.read("outbound_texts.csv"))
    assert [(m["body"], m["customer_id"], bool(m["customer_deleted_at"])) for m in inbound] == [
        ("STOP", str(first_id), True)
    ]
    assert {o["outbox_id"]: o["gate_reason"] for o in outbound}[str(outbound_id)] == "opted_out"
    with session_scope() as s:
        customers = s.execute(select(Customer.deleted_at).where(Customer.phone_index == events_of(number)[0]
                                                                .phone_index)).scalars().all()
    assert sorted(d is None for d in customers) == [False, True]
