"""The OpenAPI document fuzzed by schemathesis (4.x), once per role, in-process over ASGI.

For each role, every operation in /openapi.json gets generated requests with that role's
fixture token; each response goes through schemathesis's default checks (no server error,
status codes and bodies as documented, ...) plus ``ignored_auth`` (an operation that declares
a bearer token must refuse a request without one, or with a bad one) and one of ours: a
STATION_MANAGER of station A never receives an id of station B (in JSON, a CSV, or any file of
an export ZIP). At least 250 cases per role,
so 1,000 or more in all, must run.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from tests.support.admin_world import World
from worker.web.admin.app import create_admin_app

ROLES = ("SUPER_ADMIN", "ADMIN", "CUSTOMER_SUPPORT", "STATION_MANAGER")
EXAMPLES_PER_OPERATION = 25
# Schema-valid input may still be refused by a rule JSON Schema cannot state (a phone number
# that does not parse, an unknown time zone, a cursor we never gave out): a 422 in the error
# body is an accepted answer to it. Everything else keeps schemathesis's defaults.
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
)
MIN_CASES_PER_ROLE = 250


def _readable(body: bytes) -> str:
    """A response as text to search: JSON and CSV as they are, an export ZIP's members unpacked."""
    if body.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    return body.decode("utf-8", "replace")


def no_other_station(world: World, role: str) -> schemathesis.CheckFunction:
    """A check: a STATION_MANAGER response names nothing of the other station."""
    foreign = world.b.ids() | {world.b.code}

    def check(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
        if role == "STATION_MANAGER":
            shown = _readable(response.content)
            leaked = sorted(i for i in foreign if i in shown)
            assert not leaked, f"station B's {leaked} in a response to station A's manager"

    return check


@pytest.mark.parametrize("role", ROLES)
def test_the_openapi_document_holds_for_every_role(world: World, role: str) -> None:
    """Generated requests as this role: no 5xx, responses as documented, auth enforced, no other station's ids."""
    app = create_admin_app()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    checks = [ignored_auth, no_other_station(world, role)]
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(headers=world.auth(role), additional_checks=checks)

        run()
    print(f"schemathesis {role}: {cases} cases")
    assert cases >= MIN_CASES_PER_ROLE
