# Shared by scripts/test.sh and scripts/run.sh (sourced, not run): the virtualenv and the
# local services this machine kind provides (PostgreSQL on 127.0.0.1:5432, Redis on :6379).

# Create .venv if missing and install the project (with EXTRAS, e.g. "[test]") when
# pyproject.toml changed since the last install.
ensure_venv() {
    local extras="${1:-}"
    if [ ! -x .venv/bin/python ]; then
        echo "creating .venv" >&2
        python3 -m venv .venv
    fi
    local stamp=".venv/.msgworker-installed$extras"
    local digest
    digest="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        echo "installing msgworker$extras into .venv" >&2
        .venv/bin/pip install --quiet --disable-pip-version-check -e ".$extras"
        echo "$digest" > "$stamp"
    fi
}

wait_until() {
    local what="$1"; shift
    for _ in $(seq 1 60); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    echo "error: $what did not come up within 30 s" >&2
    return 1
}

ensure_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
    echo "starting PostgreSQL" >&2
    # shellcheck disable=SC2046 # one cluster version directory on this machine kind
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    wait_until "PostgreSQL" pg_isready -q -h 127.0.0.1 -p 5432
}

ensure_redis() {
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
    echo "starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_until "Redis" redis-cli -h 127.0.0.1 -p 6379 ping
}


# The classifier's misspelling exemptions are derived from Debian's word lists; a test checks
# the committed list is current, so the test machine needs them (root + apt on this kind).
ensure_wordlists() {
    if [ -f /usr/share/dict/american-english ] && [ -f /usr/share/dict/spanish ]; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing Debian word lists (wamerican, wspanish)" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wamerican wspanish >/dev/null
    else
        echo "warning: /usr/share/dict word lists missing and apt-get unavailable; one classifier test will skip" >&2
    fi
}


# The fault suite (tests/fault) runs private clusters and Redis servers of its own: it needs the
# PostgreSQL server binaries (initdb, pg_ctl, postgres under /usr/lib/postgresql/<major>/bin, the
# same package as the shared server), redis-server, and, as root, runuser to start PostgreSQL as
# the postgres user (it refuses to run as root). Installed here if missing (root + apt).
ensure_fault_suite_tools() {
    local missing=()
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
        || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    if [ "$(id -u)" -eq 0 ]; then
        command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
        id postgres >/dev/null 2>&1 || missing+=(postgresql)
    fi
    if [ "${#missing[@]}" -eq 0 ]; then return 0; fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing for the fault suite: ${missing[*]}" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: the fault suite (tests/fault) needs: ${missing[*]}; install them and rerun" >&2
        return 1
    fi
}


# The dashboard's browser tests (tests/e2e/dashboard) drive Debian's chromium through Playwright's
# executable_path; Playwright's own browser download is never used. Installed here if missing
# (root + apt), with a font so that pages render text.
ensure_browser() {
    if [ -x /usr/bin/chromium ]; then return 0; fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing Debian's chromium for the dashboard's browser tests" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
    else
        echo "error: the dashboard's browser tests need /usr/bin/chromium (Debian package chromium); install it and rerun" >&2
        return 1
    fi
}


# The e2e tests run once more through a private PgBouncer in transaction pooling mode
# (MSGWORKER_TEST_PGBOUNCER=1, tests/support/pgbouncer.py), which needs Debian's pgbouncer
# binary. Installed here if missing (root + apt); the service the package ships is not used.
ensure_pgbouncer() {
    if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then return 0; fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing Debian's pgbouncer for the e2e tests through a transaction pooler" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
    else
        echo "error: the e2e tests through PgBouncer need pgbouncer (Debian package pgbouncer); install it and rerun" >&2
        return 1
    fi
}


# The alert rules (docs/alerts.yml) are tested with Prometheus' promtool (tests/unit/project/test_alerts.py),
# from Debian's prometheus package. Installed here if missing (root + apt); the server it ships is not started.
ensure_promtool() {
    if command -v promtool >/dev/null 2>&1; then return 0; fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        echo "== installing Debian's prometheus package for promtool" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    else
        echo "error: the alert rule tests need promtool (Debian package prometheus); install it and rerun" >&2
        return 1
    fi
}
