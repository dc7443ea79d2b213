"""The user-error tree: one table for the CLI and the API, every domain refusal in it, no bug swallowed in cli/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from compliance.errors import ComplianceError, InvalidNumber, UnknownZone
from worker.consent.importer import ConsentImportError
from worker.consent.review import ReviewError
from worker.consent.staff import StaffError
from worker.errors import (
    SURFACES,
    Conflict,
    ErrorKind,
    InvalidInput,
    NotFound,
    UserError,
    http_body,
    surface,
)
from worker.identity.stations import StationError
from worker.inputs import parse_id, parse_time
from worker.outbound.held import HeldError
from worker.outbox import EnqueueError

ROOT = Path(__file__).resolve().parents[3]


def test_every_kind_has_one_row_in_the_table() -> None:
    """Each kind maps to an exit code and a 4xx status; the statuses tell the kinds apart (API-only ones too)."""
    assert set(SURFACES) == set(ErrorKind)
    assert {k: s.http_status for k, s in SURFACES.items()} == {
        ErrorKind.NOT_FOUND: 404, ErrorKind.CONFLICT: 409, ErrorKind.INVALID_INPUT: 422,
        ErrorKind.UNAUTHORIZED: 401, ErrorKind.FORBIDDEN: 403, ErrorKind.TOO_LARGE: 413,
    }
    assert all(s.exit_code == 1 for s in SURFACES.values())


@pytest.mark.parametrize("cls", [StationError, HeldError, ReviewError, StaffError, ConsentImportError, EnqueueError])
def test_domain_errors_join_the_tree(cls: type[Exception]) -> None:
    """The domain refusals that were unrelated ValueErrors are user errors now, and no longer ValueErrors."""
    assert issubclass(cls, UserError)
    assert not issubclass(cls, ValueError)


@pytest.mark.parametrize(
    ("err", "status", "code"),
    [
        (NotFound("no station with code 'X'", field="station"), 404, "not_found"),
        (Conflict("review item 1 is already resolved"), 409, "conflict"),
        (InvalidInput("bad"), 422, "invalid_input"),
        (HeldError("no outbox message with id 1", kind=ErrorKind.NOT_FOUND), 404, "not_found"),
        (InvalidNumber("not a phone number"), 422, "invalid_input"),
        (UnknownZone("unknown time zone 'Mars/Base'"), 422, "invalid_input"),
    ],
)
def test_surface_and_body(err: Exception, status: int, code: str) -> None:
    """A refusal answers with its kind's status and a body with a stable code, the message and the field."""
    assert surface(err).http_status == status
    body = http_body(err)
    assert body["code"] == code
    assert body["message"] == str(err)
    assert set(body) == {"code", "message", "field"}


def test_a_bug_is_not_a_user_error() -> None:
    """Anything outside the tree is refused by the table, so no boundary can map a bug to a 4xx."""
    with pytest.raises(TypeError):
        surface(ValueError("a bug"))


def test_unknown_zone_is_a_compliance_error() -> None:
    assert issubclass(UnknownZone, ComplianceError)


def test_inputs_refuse_with_the_field() -> None:
    """Ids and times people type are refused with InvalidInput naming the option."""
    with pytest.raises(InvalidInput, match="'nope' is not a review item id") as caught:
        parse_id("nope", what="a review item id", field="item_id")
    assert caught.value.field == "item_id"
    with pytest.raises(InvalidInput, match="--at needs a UTC offset"):
        parse_time("2026-07-04T10:00", field="--at", example="2026-07-04T10:00Z")
    assert parse_time("2026-07-04T10:00Z", field="--at", example="x").utcoffset() is not None


BROAD = {"ValueError", "Exception", "BaseException"}


def _caught(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return {"BaseException"}
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {n.id if isinstance(n, ast.Name) else getattr(n, "attr", "") for n in nodes}


def test_cli_swallows_no_bug() -> None:
    """No `except ValueError` (or broader) in cli/: a refusal is a UserError, anything else is a bug and shows."""
    offenders = []
    for path in sorted((ROOT / "worker" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and _caught(node) & BROAD:
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
