"""Staff changes to consent and the per-number summary (``msgworker consent ...``).

Staff changes are ledger events like any other (source ``staff``), with the person in the
evidence, plus one public.audit_logs row in the same transaction (worker.audit, from the
required ``actor``). Showing a number's record prints the full number, so it is audited too,
as a ``VIEW``.

- opt-out: revokes (business-wide, or one station with --station); the number's unsent
  rows are cancelled. No confirmation text is sent: the person did not text us, and the
  FCC's one confirmation is optional.
- opt-in: needs an evidence file (the consent's proof: for marketing, prior express
  written consent with its disclosure; docs/compliance.md#consent-tiers). Purpose
  marketing records ``marketing_consent``; all / transactional records ``opt_in``. Both
  lift an opt-out in their scope ("recorded consent").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from compliance.consent_rules import ConsentSnapshot, Kind, Purpose, Source, combine_all
from compliance.phones import normalize
from worker import audit, pii
from worker.audit import Actor
from worker.consent.effects import cancel_after_opt_out
from worker.consent.ledger import RecordResult, record_event
from worker.consent.state import snapshot_of
from worker.errors import ErrorKind, UserError
from worker.models import AuditAction, ConsentEvent, ConsentState, ReviewItem, Station

__all__ = ["Evidence", "StaffError", "consent_summary", "staff_opt_in", "staff_opt_out", "station_by_code"]

MAX_EVIDENCE_BYTES = 1 << 20
MAX_INLINE_TEXT = 64 * 1024


class StaffError(UserError):
    """Raised for unusable staff input (unknown station, empty evidence file, bad purpose)."""


def station_by_code(session: Session, code: str | None) -> Station | None:
    if code is None:
        return None
    station = session.execute(select(Station).where(Station.code == code.strip())).scalar_one_or_none()
    if station is None:
        raise StaffError(f"no station with code {code!r} (see `msgworker station list`)", kind=ErrorKind.NOT_FOUND)
    return station


def _audit(session: Session, result: RecordResult, actor: Actor, reason: str | None) -> None:
    audit.record(
        session,
        actor,
        action=AuditAction.CREATE,
        resource_type="consent_event",
        resource_id=result.event.id,
        station_id=result.event.station_id,
        new_values={
            "kind": result.event.kind,
            "purpose": result.event.purpose,
            "scope": str(result.event.station_id) if result.event.station_id else "business",
            "seq": result.event.seq,
        },
        reason=reason,
    )


def staff_opt_out(
    session: Session,
    phone: str,
    *,
    actor: Actor,
    station: Station | None = None,
    purpose: str = Purpose.ALL,
    note: str | None = None,
    occurred_at: datetime | None = None,
) -> RecordResult:
    if purpose not in (Purpose.ALL, Purpose.MARKETING):
        raise StaffError("opt-out purpose must be all or marketing")
    e164 = normalize(phone, require_valid=False)
    result = record_event(
        session,
        phone_e164=e164,
        kind=Kind.OPT_OUT,
        purpose=purpose,
        source=Source.STAFF,
        evidence={"by": actor.name, "note": note, "method": "staff"},
        occurred_at=occurred_at or datetime.now(UTC),
        station_id=station.id if station else None,
    )
    cancel_after_opt_out(session, result.event.phone_index)
    _audit(session, result, actor, note)
    return result


@dataclass(frozen=True, slots=True)
class Evidence:
    """Evidence handed over in a request (the admin API's JSON document) instead of a file."""

    name: str
    data: bytes


def _evidence_document(source: Path | Evidence) -> dict[str, Any]:
    if isinstance(source, Path):
        if not source.is_file():
            raise StaffError(f"evidence file {source} does not exist", kind=ErrorKind.NOT_FOUND)
        path, name, data = str(source), source.name, source.read_bytes()
    else:
        path, name, data = source.name, source.name, source.data
    if not data.strip():
        raise StaffError(f"evidence file {path} is empty", field="evidence")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise StaffError(f"evidence file {path} is over 1 MiB: store it elsewhere and reference it in a JSON file",
                         field="evidence")
    doc: dict[str, Any] = {"file_name": name, "file_sha256": hashlib.sha256(data).hexdigest(),
                           "file_bytes": len(data)}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return doc  # binary (a scanned form): the digest is the evidence, the file is kept elsewhere
    try:
        parsed = json.loads(text, parse_float=str)
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        doc["document"] = parsed
    elif len(text) <= MAX_INLINE_TEXT:
        doc["document_text"] = text
    return doc


def staff_opt_in(
    session: Session,
    phone: str,
    *,
    purpose: str,
    evidence_file: Path | Evidence,
    actor: Actor,
    station: Station | None = None,
    note: str | None = None,
    occurred_at: datetime | None = None,
) -> RecordResult:
    if purpose not in (Purpose.ALL, Purpose.MARKETING, Purpose.TRANSACTIONAL):
        raise StaffError("purpose must be marketing, transactional or all")
    evidence = _evidence_document(evidence_file)
    document = evidence.get("document") or {}
    if occurred_at is None:
        stated = document.get("consented_at") or document.get("occurred_at")
        if isinstance(stated, str):
            try:
                occurred_at = datetime.fromisoformat(stated.replace("Z", "+00:00"))
            except ValueError as exc:
                raise StaffError(f"evidence consented_at {stated!r} is not ISO-8601") from exc
            if occurred_at.tzinfo is None:
                raise StaffError("evidence consented_at needs a UTC offset (e.g. 2026-03-02T15:00:00Z)")
    e164 = normalize(phone, require_valid=False)
    result = record_event(
        session,
        phone_e164=e164,
        kind=Kind.MARKETING_CONSENT if purpose == Purpose.MARKETING else Kind.OPT_IN,
        purpose=purpose,
        source=Source.STAFF,
        evidence={"by": actor.name, "note": note, "method": "staff", "evidence": evidence},
        occurred_at=occurred_at or datetime.now(UTC),
        station_id=station.id if station else None,
    )
    _audit(session, result, actor, note)
    return result


def _event_json(e: ConsentEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "id": str(e.id),
        "kind": e.kind,
        "purpose": e.purpose,
        "source": e.source,
        "scope": str(e.station_id) if e.station_id else "business",
        "occurred_at": e.occurred_at.astimezone(UTC).isoformat(),
        "recorded_at": e.recorded_at.astimezone(UTC).isoformat(),
        "idempotency_key": e.idempotency_key,
        "evidence": e.evidence,
        "hash": e.hash.hex(),
    }


def _state_json(station_id: uuid.UUID | None, s: ConsentSnapshot) -> dict[str, Any]:
    return {
        "scope": str(station_id) if station_id else "business",
        "opted_out": s.opted_out,
        "marketing_opted_out": s.marketing_opted_out,
        "opted_out_at": s.opted_out_at.isoformat() if s.opted_out_at else None,
        "opt_out_event_id": str(s.opt_out_event_id) if s.opt_out_event_id else None,
        "marketing_consent": s.marketing_consent,
        "marketing_consent_event_id": str(s.marketing_consent_event_id) if s.marketing_consent_event_id else None,
        "pending_review": s.pending_review,
        "last_event_seq": s.last_event_seq,
    }


def consent_summary(
    session: Session, phone: str, *, actor: Actor, station: Station | None = None
) -> dict[str, Any]:
    """Everything on record for a number. Without a station, the most restrictive of all scopes.

    The summary names the full number (and the ledger's evidence), so reading it is a VIEW
    audit row: the number's blind index, never the number itself.
    """
    e164 = normalize(phone, require_valid=False)
    index = pii.blind_index(e164, kind="phone")
    audit.record(
        session,
        actor,
        action=AuditAction.VIEW,
        resource_type="consent_record",
        resource_id=index.hex(),
        station_id=station.id if station else None,
    )
    rows = list(session.execute(select(ConsentState).where(ConsentState.phone_index == index)).scalars())
    snaps = {r.station_id: snapshot_of(r) for r in rows}
    covering = [snaps.get(None), snaps.get(station.id)] if station is not None else list(snaps.values())
    effective = combine_all(covering)
    events = list(
        session.execute(
            select(ConsentEvent).where(ConsentEvent.phone_index == index).order_by(ConsentEvent.seq)
        ).scalars()
    )
    reviews = list(
        session.execute(
            select(ReviewItem).where(ReviewItem.phone_index == index).order_by(ReviewItem.created_at)
        ).scalars()
    )
    return {
        "phone": e164,
        "station": station.code if station else None,
        "opted_out": effective.opted_out,
        "marketing_opted_out": effective.marketing_opted_out,
        "marketing_consent": effective.marketing_consent,
        "pending_review": effective.pending_review,
        "opt_out_event_ids": sorted(str(e) for e in effective.opt_out_event_ids),
        "states": [_state_json(sid, s) for sid, s in sorted(snaps.items(), key=lambda kv: str(kv[0] or ""))],
        "open_reviews": [
            {"id": str(r.id), "deadline_at": r.deadline_at.astimezone(UTC).isoformat(), "status": r.status}
            for r in reviews
            if r.status == "open"
        ],
        "events": [_event_json(e) for e in events],
    }
