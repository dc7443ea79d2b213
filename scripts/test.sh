#!/usr/bin/env bash
# The test command (README "Set-up"): .venv with the test extras, PostgreSQL and Redis up,
# then ruff, mypy and pytest. Extra arguments go to pytest (e.g. scripts/test.sh -x tests/unit).
# Exits non-zero if any step fails, including pytest collecting no tests (its exit code 5).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_venv "[test]"
ensure_postgres
ensure_redis
ensure_wordlists
ensure_fault_suite_tools
ensure_browser
ensure_pgbouncer
ensure_promtool

status=0
echo "== ruff check ." >&2
.venv/bin/ruff check . || status=1
echo "== mypy worker compliance tasks" >&2
.venv/bin/mypy worker compliance tasks || status=1
echo "== pytest $*" >&2
set +e
.venv/bin/pytest "$@"
pytest_status=$?
set -e
if [ "$pytest_status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
fi
if [ "$pytest_status" -ne 0 ]; then
    status=$pytest_status
fi
# A full run (no arguments) also runs the flows that depend on sharing server sessions correctly
# through a private PgBouncer in transaction mode (docs/operations.md "Behind PgBouncer"): ingest
# and delivery callbacks through the drain, a STOP's confirmation and a STOP racing sends (the
# per-number advisory locks), the send path, and two beats ticking one campaign (SKIP LOCKED).
# A subset, about 2 minutes, to keep CI near its budget; MSGWORKER_TEST_PGBOUNCER=1 pytest
# tests/e2e runs all of them that way.
if [ "$#" -eq 0 ]; then
    echo "== pytest through PgBouncer (transaction pooling)" >&2
    set +e
    MSGWORKER_TEST_PGBOUNCER=1 .venv/bin/pytest -q \
        tests/e2e/ingest/test_inbound.py \
        tests/e2e/outbound/test_send.py \
        tests/e2e/outbound/test_facts.py \
        tests/e2e/outbound/test_send_race.py \
        tests/e2e/consent/test_race.py \
        "tests/e2e/campaigns/test_campaign_run.py::test_two_beats_and_overlapping_ticks_send_each_recipient_once" \
        "tests/e2e/campaigns/test_campaign_run.py::test_a_stop_mid_campaign_cancels_that_numbers_pending_rows"
    bouncer_status=$?
    set -e
    if [ "$bouncer_status" -ne 0 ]; then
        status=$bouncer_status
    fi
fi
exit "$status"
