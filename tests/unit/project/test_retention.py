"""Retention (docs/reports.md#retention): no code deletes evidence, and deleting a customer cascades into none of it."""

from __future__ import annotations

import re
from pathlib import Path

from worker.models import Base

ROOT = Path(__file__).resolve().parents[3]
EVIDENCE_TABLES = (
    "compliance.consent_events", "compliance.consent_state", "compliance.review_items", "core.outbound_messages",
    "core.send_attempts", "core.messages", "core.delivery_events", "core.webhook_inbox", "audit_logs",
)  # fmt: skip
EVIDENCE_MODELS = ("ConsentEvent", "ConsentState", "ReviewItem", "OutboundMessage", "SendAttempt", "Message",
                   "DeliveryEvent", "WebhookInbox", "AuditLog")  # fmt: skip

_SQL = re.compile(
    r"\b(?:DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(?:ONLY\s+)?(?:\w+\.)?(" +
    "|".join(re.escape(t.split(".")[-1]) for t in EVIDENCE_TABLES) + r")\b",
    re.IGNORECASE,
)
# An ORM delete of an evidence model, or a session's delete of any row (Redis clients' .delete is not).
_ORM = re.compile(r"\bdelete\(\s*(?:" + "|".join(EVIDENCE_MODELS) + r")\b|\b(?:session|s|self\.session)\.delete\(")


def deletions(source: str) -> list[str]:
    """Every statement in ``source`` that could delete an evidence row (SQL text or ORM)."""
    return [m.group(0) for m in _SQL.finditer(source)] + [m.group(0) for m in _ORM.finditer(source)]


def test_the_scanner_finds_deletes() -> None:
    """The check below can fail: SQL and ORM deletes of evidence tables are recognised, others are not."""
    assert deletions('text("DELETE FROM compliance.consent_events WHERE seq = 1")')
    assert deletions("session.execute(delete(OutboundMessage).where(...))")
    assert deletions("session.delete(row)")
    assert deletions("TRUNCATE core.messages")
    assert deletions('text("DELETE FROM core.customers")') == []


def test_no_code_deletes_evidence() -> None:
    """Nothing in worker/, tasks/ or compliance/ deletes consent events, send decisions, messages or audit rows."""
    found = {}
    for package in ("worker", "tasks", "compliance"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            hits = deletions(path.read_text())
            if hits:
                found[str(path.relative_to(ROOT))] = hits
    assert found == {}


def test_deleting_a_customer_cascades_into_no_evidence() -> None:
    """Foreign keys from evidence tables to customers, threads and outbox rows never cascade a delete."""
    cascading = []
    for table in Base.metadata.sorted_tables:
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        if name not in EVIDENCE_TABLES:
            continue
        for fk in table.foreign_keys:
            target = fk.column.table
            if target.name in ("customers", "message_threads") and fk.ondelete == "CASCADE":
                cascading.append(f"{name}.{fk.parent.name}")
    assert cascading == []
