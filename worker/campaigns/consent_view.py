"""The consent rows covering many numbers at once, for the fan-out's opt-out check and the preview.

Reads compliance.consent_state without the per-number lock: neither caller decides a send. The
fan-out only ever holds a text back with what it reads here (an opted-out number's row is
cancelled instead of queued); every queued text is still decided by the send gate under the
lock, at send time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from compliance.consent_rules import ConsentSnapshot, EffectiveConsent, combine
from worker.consent.state import SNAPSHOT_FIELDS, snapshot_of

__all__ = ["ConsentRows", "consent_rows", "covering", "suppressed"]

# {phone_index: {station_id or None (business-wide): snapshot}}
ConsentRows = dict[bytes, dict[uuid.UUID | None, ConsentSnapshot]]

_ROWS = text(
    f"SELECT phone_index, station_id, {', '.join(SNAPSHOT_FIELDS)} FROM compliance.consent_state "  # noqa: S608
    "WHERE phone_index = ANY(:indexes)"
)


def consent_rows(session: Session, indexes: Iterable[bytes]) -> ConsentRows:
    wanted = list({bytes(i) for i in indexes})
    out: ConsentRows = {}
    if not wanted:
        return out
    for row in session.execute(_ROWS, {"indexes": wanted}).mappings():
        out.setdefault(bytes(row["phone_index"]), {})[row["station_id"]] = snapshot_of(row)
    return out


def covering(rows: ConsentRows, phone_index: bytes, station_id: uuid.UUID) -> EffectiveConsent:
    """The consent covering a send from ``station_id`` (business-wide row and the station's)."""
    scopes = rows.get(phone_index, {})
    return combine(scopes.get(None), scopes.get(station_id))


def suppressed(rows: ConsentRows, phone_index: bytes, station_id: uuid.UUID, purpose: str) -> bool:
    """True when the number is opted out of this purpose (the fan-out cancels instead of queueing)."""
    consent = covering(rows, phone_index, station_id)
    return consent.opted_out or (purpose == "marketing" and consent.marketing_opted_out)
