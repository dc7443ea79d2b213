"""The receiver's /metrics: counters only, so it answers at once while the database is silent, and a webhook
the receiver could not store is counted as 503."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import processes
from tests.support.servers import BlackHole
from tests.support.webhooks import SMS_PATH, new_sid, signed_form, sms_pairs


def webhook_counts(base: str) -> dict[tuple[str, str], float]:
    started = time.monotonic()
    body = httpx.get(base + "/metrics", timeout=5).raise_for_status().text
    assert time.monotonic() - started < 1.0
    return {
        (s.labels["provider"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "msgworker_webhooks_total"
    }


def test_a_webhook_not_stored_is_counted_503_and_metrics_need_no_database(proc_dir: Path) -> None:
    hole = BlackHole()
    silent = f"postgresql+psycopg://postgres@127.0.0.1:{hole.port}/msgworker"
    proc, base = processes.start_receiver(proc_dir, env={"DATABASE_URL": silent, "WEBHOOK_STORE_TIMEOUT": "2"})
    try:
        assert webhook_counts(base) == {}
        body, headers = signed_form(SMS_PATH, sms_pairs(sid=new_sid(), from_="+14155550123", to="+12125550100"))
        assert httpx.post(base + SMS_PATH, content=body, headers=headers, timeout=30).status_code == 503
        assert webhook_counts(base) == {("twilio_sms", "503"): 1}
    finally:
        proc.stop()
        hole.close()
