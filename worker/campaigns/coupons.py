"""Coupon pools and their codes: generated or imported, claimed once, redeemed once.

A code is ``available`` in its pool until a claim issues it to one customer: the claim picks
codes with ``FOR UPDATE SKIP LOCKED`` (concurrent fan-out chunks never wait on, nor take, each
other's codes) and moves each from ``available`` only once, and a recipient row has at most one
code (unique key), so no code is assigned twice and no recipient gets two. An issued code is
``redeemed`` (once: a second redemption is refused, naming the first), ``expired`` (the
maintenance tick) or ``void``.

When a pool runs dry, the campaign's recipient is ``skipped`` with ``pool_empty`` unless the
pool has a fallback code, which is then sent instead (it is not a unique code, so it is not
recorded as issued). A pool with a low-stock threshold logs ``coupon_pool_low_stock`` once when
its available codes fall below it (again after it was refilled and fell again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from compliance.coupon_codes import CodeError, Reject, check_generation, generate, normalize_code, read_csv
from worker import audit
from worker.audit import Actor
from worker.campaigns.errors import CampaignError
from worker.db import driver_connection
from worker.errors import ErrorKind
from worker.identity.stations import find_station
from worker.models import AuditAction, CouponPool, DiscountCoupon

__all__ = [
    "CodeWant",
    "ImportReport",
    "check_stock",
    "claim",
    "create_pool",
    "expire_issued",
    "generate_codes",
    "import_codes",
    "list_pools",
    "redeem",
    "release",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CodeWant:
    """One code wanted: for a campaign recipient, or for a review (service recovery)."""

    customer_id: uuid.UUID
    station_id: uuid.UUID
    recipient_id: uuid.UUID | None = None
    review_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    rejects: list[Reject]


def _invalid(message: str, field: str) -> CampaignError:
    return CampaignError(message, kind=ErrorKind.INVALID_INPUT, field=field)


def create_pool(
    session: Session, actor: Actor, *, name: str, station_code: str | None, source: str,
    purpose: str = "campaign", prefix: str = "", length: int | None = None, discount_cents: int = 0,
    description: str | None = None, valid_days: int | None = None, fallback_code: str | None = None,
    low_stock_threshold: int = 0,
) -> CouponPool:
    if not name.strip():
        raise _invalid("--name must not be empty", "name")
    if purpose not in ("campaign", "service_recovery"):
        raise _invalid("--purpose must be campaign or service_recovery", "purpose")
    if source not in ("generated", "imported"):
        raise _invalid("--source must be generated or imported", "source")
    if discount_cents < 0 or low_stock_threshold < 0 or (valid_days is not None and valid_days <= 0):
        raise _invalid("discount, threshold and valid days cannot be negative", "discount_cents")
    if source == "generated":
        try:
            prefix = check_generation(prefix, length or 8, 1)
        except CodeError as exc:
            raise _invalid(str(exc), "length") from None
    station = find_station(session, station_code) if station_code else None
    pool = CouponPool(
        station_id=station.id if station else None, name=name.strip(), purpose=purpose, source=source,
        prefix=prefix, code_length=(length or 8) if source == "generated" else None, discount_cents=discount_cents,
        description=description, valid_days=valid_days,
        fallback_code=normalize_code(fallback_code) if fallback_code else None,
        low_stock_threshold=low_stock_threshold, created_by=actor.label,
    )
    session.add(pool)
    session.flush()
    audit.record(session, actor, action=AuditAction.CREATE, resource_type="coupon_pool", resource_id=pool.id,
                 station_id=pool.station_id, new_values={"name": pool.name, "purpose": purpose, "source": source,
                                                         "prefix": prefix, "length": pool.code_length})
    return pool


def _pool(session: Session, pool_id: uuid.UUID) -> CouponPool:
    pool = session.get(CouponPool, pool_id)
    if pool is None or pool.deleted_at is not None:
        raise CampaignError(f"no coupon pool {pool_id} (see `msgworker coupon pool list`)", kind=ErrorKind.NOT_FOUND)
    return pool


def _insert_codes(session: Session, pool: CouponPool, codes: list[tuple[str, date | None]]) -> set[str]:
    """Insert available codes; returns the codes stored (others already existed, in any pool)."""
    stored: set[str] = set()
    for start in range(0, len(codes), 5000):
        part = codes[start:start + 5000]
        rows = [{"pool_id": pool.id, "station_id": pool.station_id, "customer_id": None, "code": code,
                 "discount_cents": pool.discount_cents, "status": "available", "expires_on": expires}
                for code, expires in part]
        result = session.execute(
            insert(DiscountCoupon).values(rows).on_conflict_do_nothing(index_elements=["code"])
            .returning(DiscountCoupon.code)
        )
        stored.update(result.scalars())
    return stored


def generate_codes(session: Session, pool_id: uuid.UUID, count: int, actor: Actor) -> int:
    """Add ``count`` new CSPRNG codes to a generated pool (collisions with stored codes re-drawn)."""
    pool = _pool(session, pool_id)
    if pool.source != "generated":
        raise _invalid(f"pool {pool.name!r} takes imported codes (`msgworker coupon import`)", "pool")
    if count > 1_000_000:
        raise _invalid("at most 1,000,000 codes at a time", "count")
    added = 0
    try:
        while added < count:
            batch = generate(pool.prefix, pool.code_length or 8, count - added)
            added += len(_insert_codes(session, pool, [(c, None) for c in batch]))
    except CodeError as exc:
        raise _invalid(str(exc), "count") from None
    audit.record(session, actor, action=AuditAction.CREATE, resource_type="coupon_codes", resource_id=pool.id,
                 station_id=pool.station_id, new_values={"generated": added})
    return added


def import_codes(session: Session, pool_id: uuid.UUID, csv_text: str, actor: Actor) -> ImportReport:
    """Codes from a POS/e-commerce CSV; every line not added is listed with its reason."""
    pool = _pool(session, pool_id)
    if pool.source != "imported":
        raise _invalid(f"pool {pool.name!r} generates its codes (`msgworker coupon generate`)", "pool")
    try:
        accepted, rejects = read_csv(csv_text)
    except CodeError as exc:
        raise _invalid(str(exc), "file") from None
    stored = _insert_codes(session, pool, [(c.code, c.expires_on) for c in accepted])
    rejects += [Reject(c.line, c.code, "the code already exists (in this or another pool)")
                for c in accepted if c.code not in stored]
    rejects.sort(key=lambda r: r.line)
    audit.record(session, actor, action=AuditAction.CREATE, resource_type="coupon_codes", resource_id=pool.id,
                 station_id=pool.station_id, new_values={"imported": len(stored), "rejected": len(rejects)})
    return ImportReport(added=len(stored), rejects=rejects)


# The codes picked are paired with the wants by position in one multi-array unnest (a shorter
# array is padded with NULL: a want without a code matches no row), not by joining two row sets
# on a row number: with a generic plan's one-row estimates that join became a nested loop over
# every pair (1,000 x 1,000 comparisons per chunk of the fan-out, ~230 ms). Run on the session's
# psycopg connection with the arrays in binary: psycopg's text format quotes each element through
# a regular expression (~5 ms a chunk here).
_CLAIM = """
    WITH picked AS (
      SELECT array_agg(id ORDER BY code) AS ids FROM (
        SELECT id, code FROM feedback.discount_coupons
        WHERE pool_id = %(pool)s AND status = 'available' AND (expires_on IS NULL OR expires_on >= current_date)
        ORDER BY code LIMIT %(n)s FOR UPDATE SKIP LOCKED) p),
    wanted AS (
      SELECT * FROM unnest((SELECT ids FROM picked), CAST(%(customers)b AS uuid[]), CAST(%(stations)b AS uuid[]),
                           CAST(%(recipients)b AS uuid[]), CAST(%(reviews)b AS uuid[]))
        WITH ORDINALITY AS w(code_id, customer_id, station_id, recipient_id, review_id, n))
    UPDATE feedback.discount_coupons d
    SET status = 'issued', customer_id = w.customer_id, station_id = w.station_id, recipient_id = w.recipient_id,
        review_id = w.review_id, issued_at = now(), updated_at = now(),
        expires_on = CASE WHEN CAST(%(valid_days)s AS int) IS NULL THEN d.expires_on
                          ELSE LEAST(COALESCE(d.expires_on, 'infinity'::date),
                                     CAST(now() AS date) + CAST(%(valid_days)s AS int)) END
    FROM wanted w
    WHERE d.id = w.code_id
    RETURNING w.n, d.id, d.code
"""


def claim(session: Session, pool_id: uuid.UUID, wants: list[CodeWant]) -> list[tuple[uuid.UUID, str] | None]:
    """Issue one code per want, in order ((code id, code), or None when the pool ran dry)."""
    if not wants:
        return []
    pool = _pool(session, pool_id)
    rows = driver_connection(session).execute(_CLAIM, {
        "pool": pool_id, "n": len(wants), "valid_days": pool.valid_days,
        "customers": [w.customer_id for w in wants], "stations": [w.station_id for w in wants],
        "recipients": [w.recipient_id for w in wants], "reviews": [w.review_id for w in wants],
    }).fetchall()
    out: list[tuple[uuid.UUID, str] | None] = [None] * len(wants)
    for n, code_id, code in rows:
        out[int(n) - 1] = (code_id, code)
    return out


def release(session: Session, code_ids: list[uuid.UUID]) -> None:
    """Put issued codes whose text could not be queued back into their pool."""
    if code_ids:
        session.execute(text(
            "UPDATE feedback.discount_coupons SET status = 'available', customer_id = NULL, recipient_id = NULL, "
            "review_id = NULL, issued_at = NULL, station_id = p.station_id, updated_at = now() "
            "FROM feedback.coupon_pools p WHERE p.id = discount_coupons.pool_id AND discount_coupons.id = ANY(:ids) "
            "AND discount_coupons.status = 'issued'"
        ), {"ids": code_ids})


def redeem(session: Session, raw_code: str, actor: Actor, *, now: datetime) -> DiscountCoupon:
    """Mark an issued code redeemed; a second redemption is refused, naming the first."""
    code = normalize_code(raw_code)
    row = session.execute(
        select(DiscountCoupon).where(DiscountCoupon.code == code).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise CampaignError(f"no coupon code {code!r}", kind=ErrorKind.NOT_FOUND, field="code")
    if row.status == "redeemed":
        assert row.redeemed_at is not None
        raise CampaignError(
            f"code {code} was already redeemed at {row.redeemed_at.isoformat()} by {row.redeemed_by}",
            kind=ErrorKind.CONFLICT, field="code",
        )
    if row.status == "available":
        raise CampaignError(f"code {code} was never issued to a customer", kind=ErrorKind.CONFLICT, field="code")
    if row.status == "void":
        raise CampaignError(f"code {code} was voided", kind=ErrorKind.CONFLICT, field="code")
    if row.status == "expired" or (row.expires_on is not None and row.expires_on < now.date()):
        raise CampaignError(f"code {code} expired on {row.expires_on}", kind=ErrorKind.CONFLICT, field="code")
    row.status, row.redeemed_at, row.redeemed_by = "redeemed", now, actor.name
    session.flush()
    audit.record(session, actor, action=AuditAction.UPDATE, resource_type="coupon", resource_id=row.id,
                 station_id=row.station_id, old_values={"status": "issued"}, new_values={"status": "redeemed"})
    return row


def expire_issued(session: Session) -> int:
    """Issued codes past their expiry become ``expired`` (idempotent; the maintenance tick)."""
    return int(session.execute(text(
        "UPDATE feedback.discount_coupons SET status = 'expired', updated_at = now() "
        "WHERE status = 'issued' AND expires_on < current_date"
    )).rowcount or 0)  # type: ignore[attr-defined]


def check_stock(session: Session) -> list[tuple[str, int]]:
    """Warn once per pool that fell below its threshold; returns (pool name, available) warned now."""
    rows = session.execute(text(
        """
        SELECT p.id, p.name, p.low_stock_threshold, p.low_stock_warned_at,
               (SELECT count(*) FROM feedback.discount_coupons d WHERE d.pool_id = p.id AND d.status = 'available')
        FROM feedback.coupon_pools p
        WHERE p.deleted_at IS NULL AND p.low_stock_threshold > 0
        FOR UPDATE OF p SKIP LOCKED
        """
    )).all()
    warned: list[tuple[str, int]] = []
    for pool_id, name, threshold, warned_at, available in rows:
        low = available < threshold
        if low and warned_at is None:
            log.warning("coupon_pool_low_stock", pool_id=str(pool_id), available=int(available), threshold=threshold)
            warned.append((name, int(available)))
        if low != (warned_at is not None):
            session.execute(text("UPDATE feedback.coupon_pools SET low_stock_warned_at = CASE WHEN :low THEN now() END "
                                 "WHERE id = :id"), {"low": low, "id": pool_id})
    return warned


def list_pools(session: Session) -> list[tuple[CouponPool, dict[str, int]]]:
    """Pools with their code counts by status."""
    pools = list(session.execute(select(CouponPool).where(CouponPool.deleted_at.is_(None))
                                 .order_by(CouponPool.created_at)).scalars())
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for pool_id, status, n in session.execute(
        select(DiscountCoupon.pool_id, DiscountCoupon.status, func.count()).group_by(DiscountCoupon.pool_id,
                                                                                     DiscountCoupon.status)
    ):
        if pool_id is not None:
            counts.setdefault(pool_id, {})[status] = int(n)
    return [(p, counts.get(p.id, {})) for p in pools]
