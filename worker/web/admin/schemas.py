"""Request and response shapes shared by several routes (each route module keeps its own).

Every request model forbids unknown fields, so a misspelt field is a 422 naming it rather
than a default silently taken.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from worker.models import UserRole

__all__ = ["BODY_ROLES", "Note", "Phone", "Request"]

# Roles that read message text, consent evidence and full numbers (docs/admin-api.md): the
# conversations are customer support's work; a station manager's token sees their metadata.
BODY_ROLES = frozenset({UserRole.SUPER_ADMIN, UserRole.ADMIN, UserRole.CUSTOMER_SUPPORT})

Phone = Annotated[str, Field(min_length=1, max_length=40, description="a phone number, E.164 or US national format")]
Note = Annotated[str | None, Field(default=None, max_length=2000)]


class Request(BaseModel):
    """Base of every request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
