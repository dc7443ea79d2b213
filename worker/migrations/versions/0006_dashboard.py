"""dashboard: server-side sessions, the station a revocation came through, campaign grants.

For the compliance dashboard (docs/dashboard.md):

- ``identity.dashboard_sessions``: one row per sign-in. The browser's cookie holds a random
  secret; only its SHA-256 is stored (as with API tokens). A session belongs to a staff user
  (``public.users``, argon2 password) or to an API token, never both; its role and stations
  are read from that user or token at every request, so deactivating the user or revoking the
  token ends the session's access at once. Idle and absolute expiry are checked against
  ``last_seen_at`` and ``created_at``; ``ended_at`` records a sign-out. Only the owner reads
  it: the API role has no grant.
- ``public.uuid_or_null(text)`` and ``compliance.received_station(station_id, evidence)``:
  the station a consent event came through, as the opt-out report attributes it (the
  station texted, else the event's scope, else the station a staff change named), an
  IMMUTABLE function (LEAKPROOF when a superuser migrates: see ``_LEAKPROOF``) so that it can
  be indexed, and the index used under row-level security. ``ix_consent_events_revocation_station``
  indexes revocations by it and by receipt time, ``ix_consent_events_revocation_by_review``
  those decided by review: the overview's per-station figures read only their station's
  revocations in the range.
- Grants and policies so that a dashboard request (running as ``msgworker_api``, like an
  admin API request) can show campaign progress, preview the gate and pause, resume or cancel
  a campaign, seeing only its stations' campaigns: UPDATE on campaigns; SELECT and UPDATE on
  campaign recipients and SELECT on runs and steps, of campaigns the request can see (the
  subquery on ``marketing.campaigns`` is itself under that table's policy); SELECT on
  bookings, coupon pools and codes at the request's stations; SELECT on
  ``compliance.undeliverable_numbers`` (a blind index and an error code: what the gate reads).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 15:00:00.000000

"""

# ruff: noqa: S608 - SQL built from the fixed names and expressions in this file, no input
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "msgworker_api"
WORKER_ROLE = "msgworker_worker"
SEES_ALL = "(SELECT public.api_sees_all_stations())"
STATIONS = "(SELECT public.api_station_ids())::uuid[]"
AT_STATION = f"{SEES_ALL} OR station_id = ANY ({STATIONS})"
# A row of a campaign the request can see: the subquery reads marketing.campaigns under its own policy.
OF_VISIBLE_CAMPAIGN = "campaign_id IN (SELECT c.id FROM marketing.campaigns c)"

_SESSIONS = """
CREATE TABLE identity.dashboard_sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    secret_hash bytea NOT NULL,
    csrf_token varchar(64) NOT NULL,
    user_id uuid,
    token_id uuid,
    created_at timestamptz DEFAULT now() NOT NULL,
    last_seen_at timestamptz DEFAULT now() NOT NULL,
    ended_at timestamptz,
    ended_reason varchar(16),
    CONSTRAINT pk_dashboard_sessions PRIMARY KEY (id),
    CONSTRAINT uq_dashboard_sessions_secret_hash UNIQUE (secret_hash),
    CONSTRAINT ck_dashboard_sessions_hash_length CHECK (octet_length(secret_hash) = 32),
    CONSTRAINT ck_dashboard_sessions_one_holder CHECK ((user_id IS NULL) <> (token_id IS NULL)),
    CONSTRAINT ck_dashboard_sessions_ended CHECK ((ended_at IS NULL) = (ended_reason IS NULL)),
    CONSTRAINT fk_dashboard_sessions_user_id_users FOREIGN KEY (user_id)
        REFERENCES public.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_dashboard_sessions_token_id_api_tokens FOREIGN KEY (token_id)
        REFERENCES identity.api_tokens (id) ON DELETE CASCADE
);
CREATE INDEX ix_dashboard_sessions_user_id ON identity.dashboard_sessions (user_id);
CREATE INDEX ix_dashboard_sessions_token_id ON identity.dashboard_sessions (token_id);
"""

_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION public.uuid_or_null(value text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN value::uuid END $$;
CREATE OR REPLACE FUNCTION compliance.received_station(station_id uuid, evidence jsonb) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS
$$ BEGIN
  RETURN coalesce(public.uuid_or_null(evidence->>'received_station_id'), station_id,
                  public.uuid_or_null(evidence->>'station_id'));
END $$;
GRANT EXECUTE ON FUNCTION public.uuid_or_null(text) TO msgworker_api;
GRANT EXECUTE ON FUNCTION compliance.received_station(uuid, jsonb) TO msgworker_api;
"""
# Under row-level security PostgreSQL uses a condition as an index condition only if every
# function in it is LEAKPROOF (it runs before the policy's check). received_station never
# raises and reveals nothing but its result, so it is declared so, which only a superuser may
# do; a migration run by another role leaves it off (the overview then reads the station's
# revocations by receipt time and filters: correct, slower) and says so.
_LEAKPROOF = """
DO $leak$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION compliance.received_station(uuid, jsonb) LEAKPROOF;
  ELSE
    RAISE NOTICE 'compliance.received_station is not LEAKPROOF (needs a superuser): run ALTER FUNCTION compliance.received_station(uuid, jsonb) LEAKPROOF as one for the dashboard overview to use its index under row-level security';
  END IF;
END
$leak$;
"""

REVOCATIONS = "('opt_out', 'carrier_opt_out', 'marketing_consent_revoked')"
# Revocations by the station they came through and receipt time; and, apart, those decided by
# review (their station is the reviewed message's, read through the review_opened event).
INDEXES = {
    "ix_consent_events_revocation_station": (
        f"compliance.consent_events (compliance.received_station(station_id, evidence), occurred_at) "
        f"WHERE kind IN {REVOCATIONS}"
    ),
    "ix_consent_events_revocation_by_review": (
        f"compliance.consent_events (occurred_at) WHERE kind IN {REVOCATIONS} AND evidence ? 'opened_event_id'"
    ),
}

# table -> (privileges for the API role, {command: policy}); "update" is USING and WITH CHECK.
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "marketing.campaigns": ("UPDATE", {"update": AT_STATION}),
    "marketing.campaign_recipients": ("SELECT, UPDATE", {"select": OF_VISIBLE_CAMPAIGN, "update": OF_VISIBLE_CAMPAIGN}),
    "core.bookings": ("SELECT", {"select": AT_STATION}),
    "feedback.coupon_pools": ("SELECT", {"select": AT_STATION}),
    "feedback.discount_coupons": ("SELECT", {"select": AT_STATION}),
}
# Tables without a station_id, new to row-level security: the worker keeps every row.
NEW_RLS = {
    "marketing.campaign_runs": ("SELECT", {"select": OF_VISIBLE_CAMPAIGN}),
    "marketing.campaign_steps": ("SELECT", {"select": OF_VISIBLE_CAMPAIGN}),
}
PLAIN_GRANTS = {"compliance.undeliverable_numbers": "SELECT"}


def _policy(table: str, command: str, expression: str) -> list[str]:
    name = f"api_{command}"
    clause = f"USING ({expression})" + (f" WITH CHECK ({expression})" if command == "update" else "")
    return [
        f"DROP POLICY IF EXISTS {name} ON {table}",
        f"CREATE POLICY {name} ON {table} AS PERMISSIVE FOR {command.upper()} TO {API_ROLE} {clause}",
    ]


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(_SESSIONS)
    op.execute(_FUNCTIONS)
    op.execute(_LEAKPROOF)
    op.execute(f"GRANT USAGE ON SCHEMA feedback TO {API_ROLE}")
    for table, (_privileges, _rules) in NEW_RLS.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"DROP POLICY IF EXISTS worker_all ON {table}")
        op.execute(f"CREATE POLICY worker_all ON {table} AS PERMISSIVE FOR ALL TO {WORKER_ROLE} "
                   "USING (true) WITH CHECK (true)")
    for table, (privileges, rules) in {**TABLES, **NEW_RLS}.items():
        op.execute(f"GRANT {privileges} ON {table} TO {API_ROLE}")
        for command, expression in rules.items():
            for statement in _policy(table, command, expression):
                op.execute(statement)
    for table, privileges in PLAIN_GRANTS.items():
        op.execute(f"GRANT {privileges} ON {table} TO {API_ROLE}")
    with op.get_context().autocommit_block():  # commits the above first; the ledger takes writes all day
        for name, target in INDEXES.items():
            invalid = op.get_bind().exec_driver_sql(
                f"SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('compliance.{name}') AND NOT indisvalid"
            ).first()
            if invalid:  # an interrupted concurrent build leaves an invalid index behind
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS compliance.{name}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    """Downgrade schema."""
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS compliance.{name}")
    for table, (privileges, rules) in {**TABLES, **NEW_RLS}.items():
        for command in rules:
            op.execute(f"DROP POLICY IF EXISTS api_{command} ON {table}")
        op.execute(f"REVOKE {privileges} ON {table} FROM {API_ROLE}")
    for table in NEW_RLS:
        op.execute(f"DROP POLICY IF EXISTS worker_all ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table, privileges in PLAIN_GRANTS.items():
        op.execute(f"REVOKE {privileges} ON {table} FROM {API_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA feedback FROM {API_ROLE}")
    op.execute("DROP FUNCTION compliance.received_station(uuid, jsonb)")
    op.execute("DROP FUNCTION public.uuid_or_null(text)")
    op.execute("DROP TABLE identity.dashboard_sessions")
