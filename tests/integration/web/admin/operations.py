"""Every admin API operation with a request that should succeed against the test world (station A's objects).

The role table in test_roles.py and the isolation tests in test_isolation.py share these, so a
new operation is added here once; test_roles checks that the app serves nothing missing from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.admin_world import Side, World


@dataclass(frozen=True)
class Operation:
    op_id: str
    method: str
    path: Callable[[Side, World], str]
    body: Callable[[Side, World], dict[str, Any] | None] = lambda side, world: None
    ok: int = 200

    def request(self, side: Side, world: World) -> tuple[str, str, dict[str, Any] | None]:
        return self.method, self.path(side, world), self.body(side, world)


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


OPERATIONS = [
    Operation("list_stations", "GET", lambda s, w: "/stations"),
    Operation("get_station", "GET", lambda s, w: f"/stations/{s.station_id}"),
    Operation("create_station", "POST", lambda s, w: "/stations", ok=201,
              body=lambda s, w: {"code": f"N{uuid.uuid4().hex[:8]}", "name": "New", "timezone": "America/Chicago",
                                 "brand": "Hibachi Home"}),
    Operation("list_senders", "GET", lambda s, w: f"/senders?station_code={s.code}"),
    Operation("create_sender", "POST", lambda s, w: "/senders", ok=201,
              body=lambda s, w: {"station_code": s.code, "channel": "facebook",
                                 "address": str(uuid.uuid4().int)[:16]}),
    Operation("list_threads", "GET", lambda s, w: "/threads"),
    Operation("get_thread", "GET", lambda s, w: f"/threads/{s.thread_id}"),
    Operation("list_thread_messages", "GET", lambda s, w: f"/threads/{s.thread_id}/messages"),
    Operation("lookup_consent", "POST", lambda s, w: "/consent/lookup",
              body=lambda s, w: {"phone": s.phone, "station_id": str(s.station_id)}),
    Operation("staff_opt_out", "POST", lambda s, w: "/consent/opt-out", ok=201,
              body=lambda s, w: {"phone": s.phone, "station_id": str(s.station_id), "note": "asked by phone"}),
    Operation("staff_opt_in", "POST", lambda s, w: "/consent/opt-in", ok=201,
              body=lambda s, w: {"phone": s.phone, "purpose": "marketing", "station_id": str(s.station_id),
                                 "evidence": {"form": "web signup", "consented_at": "2026-11-01T15:00:00Z"}}),
    Operation("list_reviews", "GET", lambda s, w: "/reviews"),
    Operation("resolve_review", "POST", lambda s, w: f"/reviews/{s.review_id}/resolve",
              body=lambda s, w: {"resolution": "not_opt_out", "note": "asked about a booking"}),
    Operation("list_held", "GET", lambda s, w: "/held"),
    Operation("release_held", "POST", lambda s, w: f"/held/{s.held_id}/release", body=lambda s, w: {"state": "TX"}),
    Operation("cancel_held", "POST", lambda s, w: f"/held/{s.held_id}/cancel", body=lambda s, w: {"note": "no"}),
    Operation("create_send", "POST", lambda s, w: "/sends", ok=201,
              body=lambda s, w: {"station_id": str(s.station_id), "to": s.phone, "body": "Your chef is on the way",
                                 "purpose": "transactional", "client_key": uuid.uuid4().hex}),
    Operation("get_send", "GET", lambda s, w: f"/sends/{s.send_id}"),
    Operation("list_campaigns", "GET", lambda s, w: "/campaigns"),
    Operation("create_campaign", "POST", lambda s, w: "/campaigns", ok=201,
              body=lambda s, w: {"kind": "broadcast", "name": "Winter menu", "station_code": s.code,
                                 "template": "{brand}: the winter menu is here",
                                 "at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}),
    Operation("get_campaign", "GET", lambda s, w: f"/campaigns/{s.campaigns.draft_id}"),
    Operation("campaign_status", "GET", lambda s, w: f"/campaigns/{s.campaigns.running_id}/status"),
    Operation("preview_campaign", "GET", lambda s, w: f"/campaigns/{s.campaigns.draft_id}/preview"),
    Operation("start_campaign", "POST", lambda s, w: f"/campaigns/{s.campaigns.draft_id}/start"),
    Operation("pause_campaign", "POST", lambda s, w: f"/campaigns/{s.campaigns.running_id}/pause"),
    Operation("resume_campaign", "POST", lambda s, w: f"/campaigns/{s.campaigns.paused_id}/resume"),
    Operation("cancel_campaign", "POST", lambda s, w: f"/campaigns/{s.campaigns.draft_id}/cancel"),
    Operation("redeem_coupon", "POST", lambda s, w: "/coupons/redeem",
              body=lambda s, w: {"code": s.campaigns.coupon_code.lower()}),
    Operation("list_escalations", "GET", lambda s, w: "/feedback/escalations"),
    Operation("export_opt_outs", "POST", lambda s, w: "/reports/opt-outs",
              body=lambda s, w: {"from": _days_ago(30), "to": _days_ago(0), "station_code": s.code}),
    Operation("export_dossier", "POST", lambda s, w: "/reports/number", body=lambda s, w: {"phone": s.phone}),
    Operation("list_audit_log", "GET", lambda s, w: "/audit-log"),
    Operation("list_tokens", "GET", lambda s, w: "/tokens"),
    Operation("create_token", "POST", lambda s, w: "/tokens", ok=201,
              body=lambda s, w: {"name": "kiosk", "role": "STATION_MANAGER", "station_ids": [str(s.station_id)]}),
    Operation("revoke_token", "POST", lambda s, w: f"/tokens/{w.token_ids['STATION_MANAGER_B']}/revoke"),
]
BY_ID = {op.op_id: op for op in OPERATIONS}
