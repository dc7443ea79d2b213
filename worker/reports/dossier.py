"""``msgworker report number PHONE``: everything on record for one number.

It answers "why did this person get this text?".

Three CSVs, read in the export's snapshot by the number's blind index (so a customer row that
was soft-deleted, or deleted and created again, hides nothing: consent and sends key on the
number, not on the customer):

- consent_events.csv: every ledger event with its full evidence (canonical JSON), hashes;
- inbound_messages.csv: every message the number sent us, with the webhook's receipt time;
- outbound_texts.csv: every outbox row to the number, with the gate's decision, reason, time
  and basis (the consent events it relied on, by id and ledger sequence).

The number's whole chain is checked like ``ledger verify`` checks it (and its state rows must
name its last event), and the integrity files are those of the opt-out report
(worker/reports/export.py, worker/reports/archive.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from compliance.consent_hash import format_ts
from compliance.ledger_chain import ChainBreak, add_break, check_chain
from compliance.phones import mask, normalize
from compliance.report_rules import LedgerEvent
from worker import pii
from worker.audit import Actor
from worker.reports.archive import ReportZip
from worker.reports.chain import ChainResult
from worker.reports.export import ExportResult, audit_export, generator, json_bytes, write_csv
from worker.reports.html import dossier_page
from worker.reports.snapshot import ReadSnapshot, read_snapshot
from worker.reports.verify import FORMAT

__all__ = ["EVENT_COLUMNS", "INBOUND_COLUMNS", "OUTBOUND_COLUMNS", "export_number"]

EVENT_COLUMNS = (
    "seq", "event_id", "kind", "purpose", "source", "scope", "occurred_at", "recorded_at", "idempotency_key",
    "evidence", "prev_hash", "hash",
)  # fmt: skip
INBOUND_COLUMNS = (
    "message_id", "station", "channel", "provider_message_sid", "received_at", "stored_at", "body", "opt_out_type",
    "thread_id", "customer_id", "customer_deleted_at",
)  # fmt: skip
OUTBOUND_COLUMNS = (
    "outbox_id", "station", "purpose", "status", "created_at", "not_before", "decided_at", "gate_decision",
    "gate_reason", "basis_event_ids", "basis_event_seqs", "gate_rules", "gate_basis", "sent_at", "provider_sid",
    "delivery_status", "error_code", "in_reply_to_event_id", "in_reply_to_seq", "campaign_id", "created_by", "body",
)  # fmt: skip

NUMBER_CHECKED = ("every consent event of the number, from its first: its hash recomputed and its link to the "
                  "event before it; and each of its state rows names its last event")

_EVENTS = """
SELECT seq, id, station_id, kind, purpose, source, evidence, occurred_at, recorded_at, idempotency_key, prev_hash, hash
FROM compliance.consent_events WHERE phone_index = %(idx)s ORDER BY seq
"""
_STATES = """
SELECT station_id, last_event_seq, last_event_hash, last_event_id FROM compliance.consent_state
WHERE phone_index = %(idx)s ORDER BY station_id NULLS FIRST
"""
_INBOUND = """
SELECT m.id, m.station_id, m.channel, m.provider_message_id, i.received_at, m.created_at, m.body, m.meta,
       m.thread_id, c.id, c.deleted_at
FROM core.messages m
JOIN core.message_threads t ON t.id = m.thread_id
JOIN core.customers c ON c.id = t.customer_id
LEFT JOIN core.webhook_inbox i ON i.id = m.inbox_id
WHERE c.phone_index = %(idx)s AND m.direction = 'inbound'
ORDER BY m.created_at, m.id
"""
_OUTBOUND = """
SELECT id, station_id, purpose, status, created_at, not_before, decided_at, gate_decision, gate_reason, gate_basis,
       sent_at, provider_sid, delivery_status, error_code, in_reply_to_event_id, campaign_id, created_by, body
FROM core.outbound_messages WHERE to_index = %(idx)s ORDER BY created_at, id
"""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False) if value is not None else ""


def _ts(value: datetime | None) -> str:
    return format_ts(value) if value is not None else ""


@dataclass(frozen=True, slots=True)
class _Read:
    events: list[LedgerEvent]
    chain: ChainResult
    inbound: list[tuple[str, ...]]
    outbound: list[tuple[str, ...]]


def _code(snap: ReadSnapshot, station_id: uuid.UUID | None) -> str:
    info = snap.stations.get(station_id) if station_id is not None else None
    return info.code if info else ("" if station_id is None else str(station_id))


def _read(snap: ReadSnapshot, index: bytes) -> _Read:
    """One number's rows are few (hundreds at most): read into memory, unlike the opt-out report."""
    conn = snap.conn
    events = [LedgerEvent(*row) for row in conn.execute(_EVENTS, {"idx": index})]
    chain = ChainResult()
    check_chain(chain.verify, index, events, 1000)
    chain.events = len(events)
    if events:
        chain.first = (events[0].seq, bytes(events[0].hash).hex())
        chain.last = chain.head = (events[-1].seq, bytes(events[-1].hash).hex())
    by_seq = {e.seq: e for e in events}
    for station_id, last_seq, last_hash, last_id in conn.execute(_STATES, {"idx": index}):
        named = by_seq.get(last_seq)
        if named is None or bytes(named.hash) != bytes(last_hash or b""):
            reason = (f"the state row for scope {_code(snap, station_id) or 'business'} names seq {last_seq} as "
                      "the last event, but no event with that seq and hash exists: it was removed or altered")
            add_break(chain.verify, ChainBreak(int(last_seq or 0), last_id, index, reason), 1000)
    seq_of = {str(e.id): e.seq for e in events}
    inbound: list[tuple[str, ...]] = [
        (str(mid), _code(snap, sid), channel, sid_text, _ts(received), _ts(stored), body or "",
         str((meta or {}).get("OptOutType") or ""), str(thread), str(customer), _ts(deleted))
        for mid, sid, channel, sid_text, received, stored, body, meta, thread, customer, deleted
        in conn.execute(_INBOUND, {"idx": index})
    ]  # fmt: skip
    outbound: list[tuple[str, ...]] = []
    for (oid, sid, purpose, status, created, not_before, decided, decision, reason, basis, sent, provider_sid,
         delivery, error, reply_to, campaign, created_by, body) in conn.execute(_OUTBOUND, {"idx": index}):  # fmt: skip
        basis = basis or {}
        ids = [str(e) for e in basis.get("events") or []]
        outbound.append((
            str(oid), _code(snap, sid), purpose, status, _ts(created), _ts(not_before), _ts(decided),
            decision or "", reason or "", " ".join(ids), " ".join(str(seq_of.get(i, "?")) for i in ids),
            " ".join(str(r) for r in basis.get("rules") or []), _canonical(basis or None), _ts(sent),
            provider_sid or "", delivery or "", "" if error is None else str(error),
            str(reply_to) if reply_to else "", str(seq_of.get(str(reply_to), "")) if reply_to else "",
            str(campaign) if campaign else "", created_by or "", body,
        ))  # fmt: skip
    return _Read(events, chain, inbound, outbound)


def _event_cells(snap: ReadSnapshot, e: LedgerEvent) -> tuple[str, ...]:
    return (
        str(e.seq), str(e.id), e.kind, e.purpose, e.source, _code(snap, e.station_id) or "business",
        _ts(e.occurred_at), _ts(e.recorded_at), e.idempotency_key or "", _canonical(e.evidence),
        bytes(e.prev_hash).hex() if e.prev_hash is not None else "", bytes(e.hash).hex(),
    )  # fmt: skip


def export_number(session: Session, phone: str, *, out: Path, unmask: bool, actor: Actor) -> ExportResult:
    """The dossier ZIP for ``phone`` at ``out``, audited like every export."""
    e164 = normalize(phone, require_valid=False)
    index = pii.blind_index(e164, kind="phone")
    shown = e164 if unmask else mask(e164)
    target = ReportZip(out)
    try:
        with read_snapshot(session) as snap:
            read = _read(snap, index)
            files: dict[str, Any] = {}
            for name, header, table_rows in (
                ("consent_events.csv", EVENT_COLUMNS, [_event_cells(snap, e) for e in read.events]),
                ("inbound_messages.csv", INBOUND_COLUMNS, read.inbound),
                ("outbound_texts.csv", OUTBOUND_COLUMNS, read.outbound),
            ):
                with target.compressed(name) as sink:
                    count = write_csv(sink, header, table_rows)
                member = target.members[-1]
                files[name] = {"sha256": member.sha256, "bytes": member.bytes, "rows": count,
                               "deflated_sha256": member.deflated_sha256}
            parameters = {"phone": shown, "phone_index": index.hex(), "unmask": unmask}
            chain = read.chain
            summary = {
                "format": FORMAT,
                "kind": "number",
                "generator": generator(),
                "generated_at": format_ts(datetime.now(UTC)),
                "snapshot_taken_at": format_ts(snap.taken_at),
                "parameters": parameters,
                "integrity": {"status": "ok" if chain.ok else "INTEGRITY_FAILED", "first_bad_seq": chain.first_bad_seq},
                "counts": {"consent_events": len(read.events), "inbound_messages": len(read.inbound),
                           "outbound_texts": len(read.outbound)},
                "files": files,
            }
            chain_doc = chain.as_dict(snap.snapshot, format_ts(snap.taken_at), NUMBER_CHECKED)
        target.stored("chain.json", json_bytes(chain_doc))
        target.stored("summary.json", json_bytes(summary))
        events_html = [(e.seq, e.kind, e.purpose, e.source, _code(snap, e.station_id) or "business",
                        _ts(e.occurred_at), _ts(e.recorded_at)) for e in read.events]
        outbound_html = [(r[0], r[1], r[2], r[3], r[7], r[8], r[6], r[13], r[10]) for r in read.outbound]
        target.stored("summary.html", dossier_page(summary, events_html, outbound_html))
        sha256 = target.finish()
        rows = len(read.events) + len(read.inbound) + len(read.outbound)
        audit_export(session, actor, resource_type="number_dossier", sha256=sha256, rows=rows,
               parameters={"phone_index": index.hex()}, unmask=unmask, chain=chain, station_id=None,
               file_name=out.name)
        path = target.publish()
    except BaseException:
        target.discard()
        raise
    return ExportResult(sha256=sha256, rows=rows, summary=summary, path=path, chain=chain)
