"""Keyset pagination: a page of items and an opaque cursor for the next one.

A cursor is the sort key of the last item sent (base64url of a small JSON array), so the next
page starts strictly after it: no OFFSET scan, and rows inserted meanwhile neither repeat nor
shift the pages. Clients treat it as opaque; a cursor that does not decode, or that belongs
to another list, is a 422 naming ``cursor``. Visibility is not in the cursor: whatever it
says, the database's row-level security decides which rows a request can reach.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from worker.errors import InvalidInput

__all__ = ["CursorParam", "Limit", "Page", "decode_cursor", "encode_cursor", "page_of", "paginate_in_memory"]

T = TypeVar("T")
# Items per page: 50 unless asked, at most 200.
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
CursorParam = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "t" and isinstance(raw, str):
            return datetime.fromisoformat(raw)
        if tag == "u" and isinstance(raw, str):
            return uuid.UUID(raw)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise ValueError("not a cursor value")


def encode_cursor(list_name: str, key: Sequence[Any]) -> str:
    raw = json.dumps([list_name, [_plain(v) for v in key]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(list_name: str, cursor: str | None, arity: int) -> tuple[Any, ...] | None:
    """The sort key a cursor carries (None for the first page); InvalidInput if it is not one of ours."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, key = json.loads(raw)
        values = tuple(_typed(v) for v in key)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API gave out", field="cursor") from None
    if name != list_name or len(values) != arity:
        raise InvalidInput("cursor belongs to another list", field="cursor")
    return values


def page_of(
    list_name: str, rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """The first ``limit`` of ``rows`` (fetched with one extra) and the cursor after them, if more remain."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(list_name, key(items[-1])) if more and items else None


def paginate_in_memory(
    list_name: str,
    rows: Sequence[T],
    cursor: str | None,
    limit: int,
    key: Callable[[T], Sequence[Any]],
    arity: int,
) -> tuple[list[T], str | None]:
    """Keyset pages over a short list a service returns whole (the review queue, held texts,
    stations), sorted here by ``key``: the same cursors as the SQL lists, without a second query."""
    after = decode_cursor(list_name, cursor, arity)
    rows = sorted(rows, key=lambda r: tuple(key(r)))
    if after is not None:
        rows = [r for r in rows if tuple(key(r)) > after]
    return page_of(list_name, rows, limit, key)
