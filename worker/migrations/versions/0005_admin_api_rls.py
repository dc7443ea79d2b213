"""admin API: bearer tokens, the API and worker database roles, row-level security on station data.

Design and reasons: docs/admin-api.md ("Row-level security"). In short:

- ``identity.api_tokens`` (+ ``identity.api_token_stations``): staff bearer tokens, only their
  SHA-256 stored, with a role, an expiry, a revocation and (STATION_MANAGER) their stations.
- ``msgworker_api``: NOLOGIN, NOINHERIT, no BYPASSRLS, owns nothing; the admin API switches to it
  with ``SET LOCAL ROLE`` in each request's transaction. Granted only the table privileges the
  API needs; tables it is not granted (raw webhooks, send attempts, users...) it cannot read.
- ``msgworker_worker``: NOLOGIN, granted to the role running this migration (the owner, which
  the worker, beat and receiver connect as). Every row-secured table has one policy ``TO
  msgworker_worker USING (true) WITH CHECK (true)``: ingest, sending and the ticks work across
  stations, and FORCE ROW LEVEL SECURITY would otherwise hide every row from the owner too.
- Every table with a ``station_id`` (and the stations and tokens tables) gets ENABLE and FORCE
  ROW LEVEL SECURITY. The API's policies read the request's settings through two helpers, each
  wrapped in ``(SELECT ...)`` so it is evaluated once per statement, and fail closed: no
  ``app.role`` sees no station, no ``app.station_ids`` matches no row.

Roles are cluster-wide: creating them tolerates a concurrent migration of another database,
and the downgrade revokes everything in this database but leaves the roles (other databases
of the cluster may use them; drop them by hand once none does).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00.000000

"""

# ruff: noqa: S105, S608 - SQL built from the fixed names and expressions in this file, no input
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "msgworker_api"
WORKER_ROLE = "msgworker_worker"

# The request's settings, read once per statement (each use is wrapped in a scalar subquery).
SEES_ALL = "(SELECT public.api_sees_all_stations())"
STATIONS = "(SELECT public.api_station_ids())::uuid[]"
ADMINS = "(SELECT public.api_role()) IN ('SUPER_ADMIN', 'ADMIN')"


def _at_station(column: str = "station_id") -> str:
    return f"{SEES_ALL} OR {column} = ANY ({STATIONS})"


def _consent_row(table: str) -> str:
    """A consent row: all-station roles; the token's stations; a business-wide row (station_id
    NULL) only for a number that is a live customer of one of the token's stations."""
    return (
        f"{SEES_ALL} OR station_id = ANY ({STATIONS}) OR (station_id IS NULL AND EXISTS ("
        f"SELECT 1 FROM core.customers c WHERE c.phone_index = {table}.phone_index "
        f"AND c.station_id = ANY ({STATIONS}) AND c.deleted_at IS NULL))"
    )


# An ADMIN may manage every token but a SUPER_ADMIN's.
_TOKEN_ROLE_OK = "(SELECT public.api_role()) = 'SUPER_ADMIN' OR ((SELECT public.api_role()) = 'ADMIN' AND role <> 'SUPER_ADMIN')"
TOKEN_POLICIES = {"select": ADMINS, "insert": _TOKEN_ROLE_OK, "update": _TOKEN_ROLE_OK}
TOKEN_COLUMNS_READ = "id, name, role, created_by, created_at, expires_at, revoked_at, revoked_by"
TOKEN_COLUMNS_WRITE = "id, name, role, token_hash, created_by, expires_at, revoked_at, revoked_by"
TOKEN_COLUMNS_UPDATE = "revoked_at, revoked_by"

# Every row-secured table: (privileges granted to the API role, {command: policy expression}).
# "select" is USING; "insert" is WITH CHECK; "update" is both. No entry: the API may not do it.
# Consent rows are written only by all-station roles: the hash chain reads the number's last
# event, which a station-bound reader could not see, so it would chain to the wrong one.
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "identity.stations": ("SELECT, INSERT", {"select": _at_station("id"), "insert": ADMINS}),
    "identity.station_senders": ("SELECT, INSERT", {"select": _at_station(), "insert": ADMINS}),
    "identity.station_users": ("", {}),
    "identity.api_tokens": ("", TOKEN_POLICIES),  # column grants in upgrade(): token_hash is never readable
    "identity.api_token_stations": ("SELECT, INSERT", {"select": ADMINS, "insert": ADMINS}),
    "core.customers": ("SELECT", {"select": _at_station()}),
    "core.chefs": ("", {}),
    "core.bookings": ("", {}),
    "core.message_threads": ("SELECT", {"select": _at_station()}),
    "core.messages": ("SELECT", {"select": _at_station()}),
    "core.outbound_messages": (
        "SELECT, INSERT, UPDATE",
        {"select": _at_station(), "insert": _at_station(), "update": _at_station()},
    ),
    "compliance.consent_events": (
        "SELECT, INSERT",
        {"select": _consent_row("consent_events"), "insert": SEES_ALL},
    ),
    "compliance.consent_state": (
        "SELECT, INSERT, UPDATE",
        {"select": _consent_row("consent_state"), "insert": SEES_ALL, "update": SEES_ALL},
    ),
    "compliance.review_items": ("SELECT, UPDATE", {"select": _consent_row("review_items"), "update": SEES_ALL}),
    "public.audit_logs": (
        "SELECT, INSERT",
        {
            # The log is the admins'; anyone may read back the rows they wrote (INSERT ... RETURNING).
            "select": f"{ADMINS} OR actor = (SELECT public.api_actor())",
            # A row names the token that acted, at a station it may act at.
            "insert": f"actor = (SELECT public.api_actor()) AND ({_at_station()})",
        },
    ),
    "marketing.campaigns": ("SELECT", {"select": _at_station()}),
    "marketing.campaign_recipients": ("", {}),
    "feedback.coupon_pools": ("", {}),
    "feedback.customer_reviews": ("", {}),
    "feedback.discount_coupons": ("", {}),
}

SCHEMAS = ("identity", "core", "compliance", "marketing")

_HELPERS = """
CREATE OR REPLACE FUNCTION public.api_role() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT NULLIF(current_setting('app.role', true), '') $$;
CREATE OR REPLACE FUNCTION public.api_actor() RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT NULLIF(current_setting('app.actor', true), '') $$;
CREATE OR REPLACE FUNCTION public.api_sees_all_stations() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(NULLIF(current_setting('app.role', true), '') IN ('SUPER_ADMIN', 'ADMIN', 'CUSTOMER_SUPPORT'), false) $$;
CREATE OR REPLACE FUNCTION public.api_station_ids() RETURNS uuid[] LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT string_to_array(NULLIF(current_setting('app.station_ids', true), ''), ',')::uuid[] $$;
"""

_ROLES = f"""
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{API_ROLE}') THEN
    BEGIN
      CREATE ROLE {API_ROLE} NOLOGIN NOINHERIT NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created meanwhile by another database's migration
    END;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER_ROLE}') THEN
    BEGIN
      CREATE ROLE {WORKER_ROLE} NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{API_ROLE}'
             AND (rolinherit OR rolbypassrls OR rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb)) THEN
    RAISE EXCEPTION 'role {API_ROLE} exists with more than NOLOGIN NOINHERIT NOBYPASSRLS: fix it by hand first';
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{WORKER_ROLE}' AND rolcanlogin) THEN
    RAISE EXCEPTION 'role {WORKER_ROLE} must be NOLOGIN: it only carries the worker''s policies';
  END IF;
  -- The migrating role (the owner the worker connects as) carries the worker's policies and may
  -- SET ROLE to the API role. A superuser needs neither (it bypasses RLS and may SET ROLE anyway).
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    BEGIN
      IF NOT pg_has_role(current_user, '{WORKER_ROLE}', 'MEMBER') THEN
        EXECUTE format('GRANT {WORKER_ROLE} TO %I', current_user);
      END IF;
      IF NOT pg_has_role(current_user, '{API_ROLE}', 'MEMBER') THEN
        EXECUTE format('GRANT {API_ROLE} TO %I', current_user);
      END IF;
    EXCEPTION WHEN unique_violation THEN NULL;  -- granted meanwhile by another database's migration
    END;
  END IF;
END
$roles$;
"""

_TOKENS = """
CREATE TABLE IF NOT EXISTS identity.api_tokens (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name varchar(100) NOT NULL,
    role user_role NOT NULL,
    token_hash bytea NOT NULL,
    created_by varchar(200) NOT NULL,
    created_at timestamptz DEFAULT now() NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    revoked_by varchar(200),
    CONSTRAINT pk_api_tokens PRIMARY KEY (id),
    CONSTRAINT uq_api_tokens_token_hash UNIQUE (token_hash),
    CONSTRAINT ck_api_tokens_hash_length CHECK (octet_length(token_hash) = 32),
    CONSTRAINT ck_api_tokens_revoked CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE TABLE IF NOT EXISTS identity.api_token_stations (
    token_id uuid NOT NULL,
    station_id uuid NOT NULL,
    CONSTRAINT pk_api_token_stations PRIMARY KEY (token_id, station_id),
    CONSTRAINT fk_api_token_stations_token_id_api_tokens FOREIGN KEY (token_id)
        REFERENCES identity.api_tokens (id) ON DELETE CASCADE,
    CONSTRAINT fk_api_token_stations_station_id_stations FOREIGN KEY (station_id)
        REFERENCES identity.stations (id) ON DELETE RESTRICT
);
CREATE INDEX IF NOT EXISTS ix_api_token_stations_station_id ON identity.api_token_stations (station_id);
"""

# Columns the policies and the API's keyset lists filter and sort on that had no index yet
# (every station_id already has one). Built CONCURRENTLY: these tables take writes all day.
INDEXES = {
    "ix_message_threads_recent": "core.message_threads (last_message_at, id)",
    "ix_message_threads_station_recent": "core.message_threads (station_id, last_message_at, id)",
    "ix_audit_logs_actor": "public.audit_logs (actor)",
}


def _policies(table: str, rules: dict[str, str]) -> list[str]:
    out = [
        f"DROP POLICY IF EXISTS worker_all ON {table}",
        f"CREATE POLICY worker_all ON {table} AS PERMISSIVE FOR ALL TO {WORKER_ROLE} USING (true) WITH CHECK (true)",
    ]
    for command, expression in rules.items():
        policy = f"api_{command}"
        out.append(f"DROP POLICY IF EXISTS {policy} ON {table}")
        clause = f"WITH CHECK ({expression})" if command == "insert" else f"USING ({expression})"
        if command == "update":
            clause += f" WITH CHECK ({expression})"
        out.append(f"CREATE POLICY {policy} ON {table} AS PERMISSIVE FOR {command.upper()} TO {API_ROLE} {clause}")
    return out


def upgrade() -> None:
    """Upgrade schema. Idempotent up to the index builds (re-run from the start after a failure there)."""
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(_ROLES)
    op.execute(_HELPERS)
    op.execute(_TOKENS)
    for schema in SCHEMAS:
        op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {API_ROLE}")
    for table, (privileges, rules) in TABLES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        if privileges:
            op.execute(f"GRANT {privileges} ON {table} TO {API_ROLE}")
        for statement in _policies(table, rules):
            op.execute(statement)
    op.execute(f"GRANT SELECT ({TOKEN_COLUMNS_READ}) ON identity.api_tokens TO {API_ROLE}")
    op.execute(f"GRANT INSERT ({TOKEN_COLUMNS_WRITE}) ON identity.api_tokens TO {API_ROLE}")
    op.execute(f"GRANT UPDATE ({TOKEN_COLUMNS_UPDATE}) ON identity.api_tokens TO {API_ROLE}")
    with op.get_context().autocommit_block():  # commits the above first
        for name, target in INDEXES.items():
            schema = target.split(".")[0]
            invalid = op.get_bind().exec_driver_sql(
                f"SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('{schema}.{name}') AND NOT indisvalid"
            ).first()
            if invalid:  # an interrupted concurrent build leaves an invalid index behind
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    """Downgrade schema (the roles stay: see the module docstring)."""
    for name, target in INDEXES.items():
        op.execute(f"DROP INDEX IF EXISTS {target.split('.')[0]}.{name}")
    for table, (_privileges, rules) in TABLES.items():
        for command in rules:
            op.execute(f"DROP POLICY IF EXISTS api_{command} ON {table}")
        op.execute(f"DROP POLICY IF EXISTS worker_all ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM {API_ROLE}")
    op.execute("DROP TABLE identity.api_token_stations")
    op.execute("DROP TABLE identity.api_tokens")
    for schema in SCHEMAS:
        op.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {API_ROLE}")
    op.execute(
        "DROP FUNCTION public.api_role(), public.api_actor(), public.api_sees_all_stations(), public.api_station_ids()"
    )
