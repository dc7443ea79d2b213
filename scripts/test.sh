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
# A full run (no arguments) also runs the whole e2e suite again through a private PgBouncer in
# transaction mode (docs/operations.md "Behind PgBouncer"): the test process and every receiver,
# worker and beat it starts share 10 server sessions, so anything that relied on session state
# (prepared statements, session advisory locks, SET without LOCAL) would fail here. About 8 minutes
# on a quiet 2-core machine, up to ~17 at high load (issue 14 point 8's acceptance, on every run).
if [ "$#" -eq 0 ]; then
    echo "== pytest tests/e2e through PgBouncer (transaction pooling)" >&2
    set +e
    MSGWORKER_TEST_PGBOUNCER=1 .venv/bin/pytest -q tests/e2e
    bouncer_status=$?
    set -e
    if [ "$bouncer_status" -ne 0 ]; then
        status=$bouncer_status
    fi
fi
exit "$status"
