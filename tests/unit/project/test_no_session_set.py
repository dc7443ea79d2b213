"""No session-level SET anywhere: a setting or role left on a pooled connection leaks into the next request.

Every SQL string literal in the code (worker/, tasks/, compliance/, bench/, tools/, tests/) is read
with ast; a statement that starts with SET (or has one after a semicolon) must be SET LOCAL (or
SET CONSTRAINTS / SET TRANSACTION, which are transaction-scoped anyway), and set_config's third
argument must be true. RESET and SET SESSION are refused outright.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCANNED = ("worker", "tasks", "compliance", "bench", "tools", "tests")
# The one exemption, exact to the string: PgBouncer's connect_query for the test pool
# (tests/support/pgbouncer.py). PgBouncer runs it once on each new *server* session, with the
# same two timeouts for every client (docs/operations.md "Behind PgBouncer"); it carries no
# role or station context, so nothing of one request can reach the next through it.
EXEMPT = {"tests/support/pgbouncer.py": ["line 30: 'SET statement_timeout = 30000; SET lock_timeout = 10000'"]}

# A SET statement: SET [SESSION] ROLE ..., or SET name = / TO ... (not SET LOCAL, not ON DELETE SET NULL).
_SESSION_SET = re.compile(
    r"(?:^|;)\s*(?:SET\s+(?:SESSION\s+)?(?:ROLE\b|(?!LOCAL\b)[A-Za-z_][\w.]*\s*(?:=|TO\b))|RESET\s+[\w.]+)",
    re.IGNORECASE,
)
_SET_CONFIG_FALSE = re.compile(r"set_config\s*\([^)]*,\s*(?:false|'f'|0)\s*\)", re.IGNORECASE)


def offending(source: str) -> list[str]:
    """The string literals in ``source`` that would change a setting beyond the transaction."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            sql = node.value
            if _SESSION_SET.search(sql) or _SET_CONFIG_FALSE.search(sql):
                found.append(f"line {node.lineno}: {sql.strip()[:80]!r}")
    return found


def test_the_detector_sees_session_level_settings() -> None:
    """SET ROLE, SET app.x, SET SESSION, RESET and set_config(..., false) are found; the LOCAL forms are not."""
    bad = ["SET ROLE msgworker_api", "set app.station_ids = 'x'", "SELECT 1; SET search_path TO x",
           "SET SESSION ROLE x", "RESET ROLE", "SELECT set_config('app.role', 'ADMIN', false)"]
    good = ["SET LOCAL ROLE msgworker_api", "SET LOCAL lock_timeout = '10s'", "SET CONSTRAINTS ALL DEFERRED",
            "UPDATE core.messages SET body = NULL", "SELECT set_config('app.role', :r, true)", "settings"]
    assert all(offending(repr(s)) for s in bad)
    assert not any(offending(repr(s)) for s in good)


def test_no_session_level_set_in_the_code() -> None:
    """No SQL in the repository sets a role or a setting for the rest of the session."""
    offenders = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve() or ".venv" in path.parts:
                continue
            relative = str(path.relative_to(ROOT))
            found = [f for f in offending(path.read_text()) if f not in EXEMPT.get(relative, [])]
            if found:
                offenders[relative] = found
    assert offenders == {}
