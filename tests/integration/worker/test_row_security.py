"""Row-level security as PostgreSQL enforces it (migration 0005), tested in SQL, below the API.

- the catalog: every table with a station_id (and stations, tokens) has ENABLE and FORCE ROW
  LEVEL SECURITY, every view is security_invoker, the API role is NOLOGIN NOINHERIT with no
  BYPASSRLS and owns nothing;
- fail closed: as the API role with no request settings (or empty ones), every table it may
  read returns no rows;
- a station manager's settings show that station's rows only, and a write naming another
  station is refused by the policy's WITH CHECK;
- the worker's own work (the ingest upsert, a consent event, the outbox) runs under FORCE ROW
  LEVEL SECURITY for a non-superuser owner that is a member of msgworker_worker, and the same
  role without that membership sees nothing: the worker policy is what lets it work.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from tests import factories
from worker.audit import Actor
from worker.consent import staff
from worker.ingest.records import insert_sms
from worker.models.base import SCHEMAS
from worker.outbox import enqueue
from worker.phone import PhoneNumber

APP_SCHEMAS = [*SCHEMAS, "public"]


def _api(session: Session, *, role: str | None, stations: list[uuid.UUID], actor: str = "api:test") -> None:
    session.execute(text("SET LOCAL ROLE msgworker_api"))
    if role is not None:
        session.execute(
            text("SELECT set_config('app.role', :r, true), set_config('app.station_ids', :s, true), "
                 "set_config('app.actor', :a, true)"),
            {"r": role, "s": ",".join(map(str, stations)), "a": actor},
        )


def _readable_tables(session: Session) -> list[str]:
    return list(session.execute(text(
        "SELECT table_schema || '.' || table_name FROM information_schema.role_table_grants "
        "WHERE grantee = 'msgworker_api' AND privilege_type = 'SELECT' "
        "UNION SELECT DISTINCT table_schema || '.' || table_name FROM information_schema.column_privileges "
        "WHERE grantee = 'msgworker_api' AND privilege_type = 'SELECT' ORDER BY 1"
    )).scalars())


@pytest.fixture
def two_stations(db_session: Session) -> dict[str, Any]:
    """Two stations, each with a customer, a thread and messages (ingest), consent and an outbox row."""
    out: dict[str, Any] = {}
    for tag in ("a", "b"):
        station = factories.make_station(db_session)
        number = factories.phone()
        record = insert_sms(db_session, station_id=station.id, phone=PhoneNumber.parse(number),
                            at=datetime.now(UTC), message=_sms())
        staff.staff_opt_out(db_session, number, actor=Actor.cli("test"), station=station, purpose="marketing")
        enqueue(db_session, station=station, to=number, body="hi", purpose="transactional",
                idempotency_key=f"rls:{uuid.uuid4()}")
        out[tag] = {"station": station.id, "phone": number, "thread": record.thread_id}
    # A business-wide opt-out of A's customer: a row with no station_id.
    staff.staff_opt_out(db_session, out["a"]["phone"], actor=Actor.cli("test"))
    db_session.flush()
    return out


def _sms() -> dict[str, Any]:
    return {"provider_message_id": "SM" + uuid.uuid4().hex, "body": "hello", "media": None, "num_segments": 1,
            "meta": None, "inbox_id": None}


def test_every_station_table_forces_row_security_and_views_are_invokers(db_session: Session) -> None:
    """No table with a station_id lacks ENABLE or FORCE ROW LEVEL SECURITY; no view lacks security_invoker."""
    tables = db_session.execute(text(
        "SELECT n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(:schemas) AND EXISTS ("
        "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'station_id' AND NOT a.attisdropped)"
    ), {"schemas": APP_SCHEMAS}).all()
    assert len(tables) >= 15, tables  # the catalog query finds the station tables, so the check is not vacuous
    assert [t for t, enabled, forced in tables if not (enabled and forced)] == []
    views = db_session.execute(text(
        "SELECT n.nspname || '.' || c.relname, coalesce(c.reloptions, '{}') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(:schemas)"
    ), {"schemas": APP_SCHEMAS}).all()
    assert [v for v, options in views if not any(o in ("security_invoker=true", "security_invoker=on")
                                                 for o in options)] == []
    for extra in ("identity.stations", "identity.api_tokens"):
        assert db_session.execute(text("SELECT relrowsecurity AND relforcerowsecurity FROM pg_class "
                                       "WHERE oid = CAST(:t AS regclass)"), {"t": extra}).scalar_one(), extra


def test_the_api_role_is_powerless_by_itself(db_session: Session) -> None:
    """msgworker_api cannot log in, inherits nothing, cannot bypass RLS, is no superuser, owns nothing."""
    role = db_session.execute(text(
        "SELECT rolcanlogin, rolinherit, rolbypassrls, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = 'msgworker_api'")).one()
    assert tuple(role) == (False, False, False, False, False, False)
    owned = db_session.execute(text(
        "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = 'msgworker_api')"
    )).scalar_one()
    assert owned == 0
    assert db_session.execute(text("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                                   "WHERE r.rolname = 'msgworker_api'")).scalar_one() == 0


@pytest.mark.parametrize("settings", [None, ("", []), ("STATION_MANAGER", []), ("NOT_A_ROLE", [])],
                         ids=["no-settings", "empty", "manager-without-stations", "unknown-role"])
def test_no_station_context_reads_no_rows(db_session: Session, two_stations: dict[str, Any],
                                          settings: tuple[str, list[uuid.UUID]] | None) -> None:
    """As the API role without a usable request context, every table it may read returns no rows."""
    tables = _readable_tables(db_session)
    assert "core.messages" in tables
    assert "compliance.consent_state" in tables
    with db_session.begin_nested():
        _api(db_session, role=settings[0] if settings else None, stations=settings[1] if settings else [])
        counts = {t: db_session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}
        db_session.rollback()
    assert {t: n for t, n in counts.items() if n} == {}


def test_a_managers_settings_show_that_station_only(db_session: Session, two_stations: dict[str, Any]) -> None:
    """With A's station id, station rows are A's; consent shows A's rows and the business-wide row of A's customer."""
    a, b = two_stations["a"], two_stations["b"]
    with db_session.begin_nested():
        _api(db_session, role="STATION_MANAGER", stations=[a["station"]])
        for table in ("core.customers", "core.message_threads", "core.messages", "core.outbound_messages",
                      "identity.station_senders"):
            ids = set(db_session.execute(text(f"SELECT DISTINCT station_id FROM {table}")).scalars())
            assert ids == {a["station"]}, table
        scopes = set(db_session.execute(text("SELECT station_id FROM compliance.consent_state")).scalars())
        assert scopes == {a["station"], None}
        stations = set(db_session.execute(text("SELECT id FROM identity.stations")).scalars())
        assert b["station"] not in stations
        assert a["station"] in stations
        db_session.rollback()


def test_a_write_naming_another_station_fails_the_policy_check(db_session: Session,
                                                                two_stations: dict[str, Any]) -> None:
    """Inserting an outbox row for B with A's settings is refused by WITH CHECK (new row violates the policy)."""
    a, b = two_stations["a"], two_stations["b"]
    with db_session.begin_nested():
        _api(db_session, role="STATION_MANAGER", stations=[a["station"]])
        with pytest.raises(ProgrammingError) as caught:
            enqueue(db_session, station_id=b["station"], to=b["phone"], body="x", purpose="transactional",
                    idempotency_key=f"rls:{uuid.uuid4()}")
        assert isinstance(caught.value.orig, psycopg.errors.InsufficientPrivilege)
        assert "row-level security" in str(caught.value.orig)
        db_session.rollback()


@pytest.fixture
def owner_role(db_session: Session) -> str:
    """A non-superuser stand-in for the production owner, created inside the test's rolled-back transaction."""
    name = f"msgworker_t_owner_{uuid.uuid4().hex[:8]}"
    db_session.execute(text(f"CREATE ROLE {name} NOLOGIN"))
    for schema in SCHEMAS:
        db_session.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {name}"))
        db_session.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {name}"))
    db_session.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}"))
    return name


@pytest.mark.parametrize("member", [True, False], ids=["worker-member", "not-a-member"])
def test_the_worker_works_across_stations_only_through_its_policy(
    db_session: Session, two_stations: dict[str, Any], owner_role: str, member: bool
) -> None:
    """Ingest, consent and the outbox work for every station as a member of msgworker_worker; without it, no row."""
    if member:
        db_session.execute(text(f"GRANT msgworker_worker TO {owner_role}"))
    with db_session.begin_nested():
        db_session.execute(text(f"SET LOCAL ROLE {owner_role}"))
        visible = set(db_session.execute(text("SELECT DISTINCT station_id FROM core.messages")).scalars())
        if not member:
            assert visible == set()
            with pytest.raises(ProgrammingError):
                factories.make_station(db_session)
        else:
            assert visible == {two_stations["a"]["station"], two_stations["b"]["station"]}
            station = factories.make_station(db_session)
            number = factories.phone()
            record = insert_sms(db_session, station_id=station.id, phone=PhoneNumber.parse(number),
                                at=datetime.now(UTC), message=_sms())
            assert record.message_id is not None
            staff.staff_opt_out(db_session, number, actor=Actor.cli("worker-test"))
            queued = enqueue(db_session, station=station, to=number, body="hi", purpose="transactional",
                             idempotency_key=f"rls:{uuid.uuid4()}")
            assert queued.created
        db_session.rollback()
