"""Helpers shared by CLI commands: logging set-up and clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from worker.errors import USER_ERRORS, surface
from worker.logging import configure_logging
from worker.settings import get_settings


def setup() -> None:
    s = get_settings()
    configure_logging(s.LOG_LEVEL, s.LOG_FORMAT)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a user error (worker.errors) into its one line and exit code; let bugs surface as bugs."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(str(exc), surface(exc).exit_code)
