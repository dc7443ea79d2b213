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
exit "$status"
