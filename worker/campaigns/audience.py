"""Who a campaign texts: live customers with a number, of its station or of every active station.

One number is one recipient: two customer rows with the same number (two stations) get one
text per run (the fan-out keeps the first by customer id; a unique index on the recipient rows
holds it).
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["AUDIENCE_SQL", "audience_size"]

# Parameters: :station (NULL: every active station). Rows: customer id, station, blind index.
AUDIENCE_SQL = """
  SELECT cu.id, cu.station_id, cu.phone_index, cu.phone_encrypted, cu.first_name, cu.address_encrypted
  FROM core.customers cu JOIN identity.stations st ON st.id = cu.station_id
  WHERE cu.deleted_at IS NULL AND st.deleted_at IS NULL AND st.status = 'active'
    AND (CAST(:station AS uuid) IS NULL OR cu.station_id = CAST(:station AS uuid))
"""


def audience_size(session: Session, station_id: uuid.UUID | None) -> int:
    """How many distinct numbers the audience has (what a coupon pool must cover)."""
    return int(
        session.execute(
            text(f"SELECT count(DISTINCT a.phone_index) FROM ({AUDIENCE_SQL}) a"),  # noqa: S608 - constant SQL
            {"station": station_id},
        ).scalar_one()
    )
