"""One error body for every refusal: ``{"code", "message", "field"}`` (worker/errors.py's ``http_body``).

User errors answer with their kind's status (worker.errors.SURFACES); a request pydantic
cannot read (malformed JSON, a wrong type, an unknown field, an id of the wrong shape) is a
422 in the same shape, naming the first field at fault; Starlette's own refusals (no such
route, wrong method) keep their status with the same body. Anything else is a bug, left to
Starlette: logged with its traceback and answered 500 with no detail.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from worker.errors import USER_ERRORS, ErrorKind, http_body, surface

__all__ = ["ERROR_RESPONSES", "ErrorBody", "install_error_handlers"]

class ErrorBody(BaseModel):
    """Every 4xx: a stable code, a sentence for a person, and the input at fault (or null)."""

    code: str
    message: str
    field: str | None


# Declared on every operation, so the OpenAPI document lists what a client can get back.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "No valid bearer token (missing, malformed, unknown, revoked or expired: never said which)."),
        (403, "The token's role may not do this."),
        (404, "No such object, or not one this token can see."),
        (409, "The object's state refuses the change."),
        (413, "The request body is over the limit."),
        (422, "The request cannot be used as given; `field` names the input at fault."),
    )
}

_STATUS_CODES = {404: ErrorKind.NOT_FOUND.value, 405: "method_not_allowed", 413: ErrorKind.TOO_LARGE.value}


def _field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    async def user_error(_: Request, exc: Exception) -> JSONResponse:
        status = surface(exc).http_status
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(http_body(exc), status_code=status, headers=headers)

    for kind in USER_ERRORS:
        app.add_exception_handler(kind, user_error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return JSONResponse({"code": ErrorKind.INVALID_INPUT.value, "message": message, "field": field},
                            status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse({"code": code, "message": str(exc.detail), "field": None},
                            status_code=exc.status_code, headers=exc.headers)
