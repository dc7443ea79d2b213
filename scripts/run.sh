#!/usr/bin/env bash
# The run command (README "Set-up"): .venv, PostgreSQL and Redis up, then `msgworker run`
# (creates the development database, applies migrations, runs receiver + worker + beat
# until Ctrl-C). Extra arguments go to `msgworker run` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

ensure_venv ""
ensure_postgres
ensure_redis
exec .venv/bin/msgworker run "$@"
