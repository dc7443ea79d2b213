"""Structured logging (structlog) with PII masking on every event.

Logs must never carry a full phone number, a message body or an admin API token: the masking processor runs
last before rendering, so it covers every logger, including stdlib loggers routed through
structlog and libraries that format numbers into their messages.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = ["configure_logging", "mask_phone", "mask_pii", "startup_logger"]

# +E.164, or 10-15 digits with up to two separators between them: a number written loosely,
# "(415) 555-0123" included, and "%2B1415..." as it appears in a form-encoded body.
_PHONE_RE = re.compile(r"(?<![\w%])(?:\+|%2[Bb]|\()?\d(?:[\s().-]{0,2}\d){9,14}(?!\w)")
# Keys whose values are message text (or whole payloads) and never logged as such.
_BODY_KEYS = frozenset({"body", "text", "message_body", "Body", "payload", "raw", "raw_body", "content", "form"})
_PHONE_KEYS = frozenset({"phone", "to", "from", "from_", "To", "From", "phone_e164", "number"})
# Keys whose values are credentials: an admin API request's headers, a bearer token.
_SECRET_KEYS = frozenset({"authorization", "Authorization", "AUTHORIZATION", "api_token", "bearer", "secret"})
# An admin API token anywhere in a string (worker.identity.tokens.TOKEN_PREFIX; a test keeps
# the two in step), and whatever follows "Bearer " in a header written into a message.
_TOKEN_RE = re.compile(r"mwk_[A-Za-z0-9_-]+|(?<=Bearer )\S+", re.IGNORECASE)


def mask_phone(value: str) -> str:
    """Keep the last 2 digits: enough to tell numbers apart in a log, useless to dial."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 4:
        return "***"
    return ("+" if value.startswith("+") else "") + "*" * (len(digits) - 2) + "".join(digits[-2:])


def _mask_text(value: str) -> str:
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), _TOKEN_RE.sub("<redacted token>", value))


def _mask_value(key: str, value: Any) -> Any:
    if key in _SECRET_KEYS and value is not None:
        return "<redacted>"
    if key in _BODY_KEYS and value is not None:
        size = len(value) if isinstance(value, str | bytes) else None
        return f"<redacted {size} chars>" if size is not None else "<redacted>"
    if isinstance(value, str):
        return mask_phone(value) if key in _PHONE_KEYS else _mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, v) for v in value]
    return value


def mask_pii(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask phone numbers everywhere and redact message bodies."""
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        if key == "exc_info" or key == "exception":
            out[key] = _mask_text(value) if isinstance(value, str) else value
        else:
            out[key] = _mask_value(key, value)
    return dict(out)


def _mask_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    exc = event_dict.get("exception")
    if isinstance(exc, str):
        event_dict["exception"] = _mask_text(exc)
    return event_dict


def _renderer(fmt: str) -> Any:
    return structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)


def startup_logger(fmt: str = "console") -> Any:
    """A logger for lines written before ``configure_logging`` ran (the settings' own warnings).

    Unconfigured, structlog prints to stdout, and stdout is the command's output: a
    ``--json`` command printed the development-secrets warning before its JSON. This one
    writes to stderr, masked, in the given format, and changes no global state; once
    logging is configured it is the ordinary logger.
    """
    if structlog.is_configured():
        return structlog.get_logger("worker.settings")
    return structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr),
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_pii,
            _renderer(fmt),
        ],
    )


def configure_logging(level: str = "INFO", fmt: str = "console", *, cache: bool | None = None) -> None:
    """Route structlog and stdlib logging through one masked pipeline to stderr.

    Loggers cache their processor chain on first use (fast), except under APP_ENV=test
    (``cache=None`` decides from the environment): a cached module logger would keep the
    pipeline it first saw, and ``structlog.testing.capture_logs`` in a later test in the
    same process would silently capture nothing.
    """
    if cache is None:
        cache = os.environ.get("APP_ENV") != "test"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        mask_pii,
    ]
    renderer = _renderer(fmt)
    structlog.configure(
        # filter_by_level first: a stdlib-bound logger otherwise runs the whole chain (time
        # stamp, masking) for a debug line that stdlib then drops at INFO; that was ~10% of
        # the ingest worker's CPU for one log.debug per new customer (bench/ingest.py).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _mask_exception,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "twilio.http_client", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
