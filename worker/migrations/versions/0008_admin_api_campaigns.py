"""admin API campaigns, coupons and feedback: the grants and policies their routes need.

Issue 12's last routes (docs/admin-api.md) run as ``msgworker_api`` under row-level security,
like every admin API request. Migration 0006 already lets a request read its stations'
campaigns, their recipients, runs, steps, pools and codes, and pause, resume or cancel them.
This adds what creating a campaign, redeeming a code and listing escalations write or read:

- INSERT on ``marketing.campaigns``: an admin anywhere (a station's or an all-station
  campaign), anyone else only at one of the request's stations. So a station manager cannot
  create an all-station campaign (``station_id`` NULL matches none of their stations), and
  customer support, which has no stations on its token, cannot create one at all, even past
  the route's role check.
- INSERT on ``marketing.campaign_steps`` (a review request's reminder): only for a campaign the
  request can see (the subquery reads ``marketing.campaigns`` under its own policy).
- UPDATE on ``feedback.discount_coupons`` (a redemption): an admin, or a code issued at one of
  the request's stations. Support has no stations, so none.
- SELECT on ``feedback.customer_reviews`` (the escalations list): the request's stations, every
  station for the all-station roles.

Report exports need nothing here: like the dashboard's, they run as the owner after the
request's own transaction has checked the station (worker/web/admin/routes/reports.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 14:00:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

API_ROLE = "msgworker_api"
SEES_ALL = "(SELECT public.api_sees_all_stations())"
STATIONS = "(SELECT public.api_station_ids())::uuid[]"
ADMINS = "(SELECT public.api_role()) IN ('SUPER_ADMIN', 'ADMIN')"
AT_STATION = f"{SEES_ALL} OR station_id = ANY ({STATIONS})"
ADMIN_OR_OWN_STATION = f"{ADMINS} OR station_id = ANY ({STATIONS})"
OF_VISIBLE_CAMPAIGN = "campaign_id IN (SELECT c.id FROM marketing.campaigns c)"

# table -> (privilege, command, expression). "insert" is WITH CHECK; "update" USING and WITH CHECK.
POLICIES: dict[str, tuple[str, str, str]] = {
    "marketing.campaigns": ("INSERT", "insert", ADMIN_OR_OWN_STATION),
    "marketing.campaign_steps": ("INSERT", "insert", OF_VISIBLE_CAMPAIGN),
    "feedback.discount_coupons": ("UPDATE", "update", ADMIN_OR_OWN_STATION),
    "feedback.customer_reviews": ("SELECT", "select", AT_STATION),
}


def upgrade() -> None:
    """Upgrade schema (idempotent: each policy is dropped if present first)."""
    op.execute("SET LOCAL lock_timeout = '10s'")
    for table, (privilege, command, expression) in POLICIES.items():
        op.execute(f"GRANT {privilege} ON {table} TO {API_ROLE}")
        clause = f"WITH CHECK ({expression})" if command == "insert" else f"USING ({expression})"
        if command == "update":
            clause += f" WITH CHECK ({expression})"
        op.execute(f"DROP POLICY IF EXISTS api_{command} ON {table}")
        op.execute(f"CREATE POLICY api_{command} ON {table} AS PERMISSIVE FOR {command.upper()} TO {API_ROLE} "
                   f"{clause}")


def downgrade() -> None:
    """Downgrade schema."""
    for table, (privilege, command, _expression) in POLICIES.items():
        op.execute(f"DROP POLICY IF EXISTS api_{command} ON {table}")
        op.execute(f"REVOKE {privilege} ON {table} FROM {API_ROLE}")
