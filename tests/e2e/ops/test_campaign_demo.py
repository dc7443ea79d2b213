"""`msgworker demo campaigns` on a freshly migrated database: both campaigns end to end, twice."""

from __future__ import annotations

import pytest

from tests.e2e.ops.test_demo import fresh_db, msgworker

pytestmark = pytest.mark.e2e
__all__ = ["fresh_db"]


def test_campaign_demo_plays_both_kinds_and_prints_the_status_counts(fresh_db: str) -> None:
    """A "4" escalates with a recovery code; 20 customers end 8 sent, 5 deferred, 4 blocked, 3 cancelled."""
    assert msgworker("db", "upgrade", db=fresh_db).returncode == 0
    for _ in range(2):
        run = msgworker("demo", "campaigns", db=fresh_db)
        assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
        out = run.stdout
        assert "review   escalated; recovery code SRY" in out
        assert "audience 20: blocked 4, cancelled 3, queued 5, sent 8" in out
        assert "blocked:no_marketing_consent: 4" in out
        assert "cancelled:opted_out: 3" in out
