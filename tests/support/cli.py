"""Running `msgworker` commands in-process (typer's CliRunner) against the real database."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from typer.testing import CliRunner

from worker.cli import app


@pytest.fixture
def cli(clean_db: str) -> Iterator[CliRunner]:
    """A runner; the commands configure logging onto the runner's stream, so it is restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield CliRunner()
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


def run(cli: CliRunner, *args: str) -> tuple[int, str]:
    """(exit code, output); an exception other than a clean exit fails the test with its traceback."""
    result = cli.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
