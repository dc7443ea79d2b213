"""The logging pipeline (configure_logging): no full phone number and no message body reaches
the output, whichever logger, field, nesting or format carries it."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator

import pytest
import structlog

from worker.logging import configure_logging, mask_phone

PHONE = "+14155550123"
DIGITS = "4155550123"
BODY = "STOP texting me, this is Pat at 12 Elm St"


@pytest.fixture
def emit(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str], str]]:
    """Configure logging in a format, log through it, and return what reached stderr."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def configured(fmt: str) -> str:
        configure_logging("DEBUG", fmt)
        capsys.readouterr()
        return fmt

    yield configured  # type: ignore[misc]
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


def output(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def assert_no_phone(text: str) -> None:
    assert DIGITS not in text
    assert "415) 555-0123" not in text
    assert "555-0123" not in text


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_phone_fields_and_message_strings_are_masked(emit, capsys, fmt: str) -> None:
    """A number in a phone-named field, in another field's text and in the event text is masked, keeping 2 digits."""
    emit(fmt)
    log = structlog.get_logger("test")
    log.info(f"sending to {PHONE}", phone=PHONE, detail="retry for (415) 555-0123 at 9pm", to="415.555.0123")
    out = output(capsys)
    assert_no_phone(out)
    assert "*23" in out


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_bodies_are_redacted_with_their_length_only(emit, capsys, fmt: str) -> None:
    """Body-like fields are replaced by their size; the words never appear."""
    emit(fmt)
    structlog.get_logger("test").info("inbound_received", body=BODY, Body=BODY, text=BODY, payload={"Body": BODY})
    out = output(capsys)
    assert "STOP texting" not in out
    assert "Elm St" not in out
    assert f"<redacted {len(BODY)} chars>" in out


def test_nested_structures_are_masked(emit, capsys) -> None:
    """Numbers inside nested dicts and lists (e.g. provider extras) are masked at any depth."""
    emit("json")
    structlog.get_logger("test").info(
        "twilio_extras", meta={"From": PHONE, "geo": {"FromCity": "SF", "numbers": [PHONE, "%2B14155550123"]}}
    )
    out = output(capsys)
    assert_no_phone(out)
    event = json.loads(out.strip().splitlines()[-1])
    assert event["meta"]["From"] == mask_phone(PHONE)
    assert event["meta"]["geo"]["FromCity"] == "SF"


def test_stdlib_loggers_are_masked_too(emit, capsys) -> None:
    """Libraries logging through the stdlib (celery, httpx, twilio) go through the same masking."""
    emit("console")
    logging.getLogger("twilio.somewhere").warning("POST Messages.json To=%s Body=%s", PHONE, "hi")
    out = output(capsys)
    assert_no_phone(out)
    assert "*23" in out


def test_exception_text_is_masked(emit, capsys) -> None:
    """An exception whose message carries a number is rendered with the number masked."""
    emit("json")
    try:
        raise ValueError(f"number {PHONE} is not textable")
    except ValueError:
        structlog.get_logger("test").exception("send_failed")
    out = output(capsys)
    assert_no_phone(out)
    assert "is not textable" in out


def test_json_format_is_one_parseable_object_per_line(emit, capsys) -> None:
    """LOG_FORMAT=json emits one JSON object per event with event, level, logger and UTC timestamp."""
    emit("json")
    msg_id = str(uuid.uuid4())
    structlog.get_logger("worker.test").info("message_sent", message_id=msg_id, sid="SM" + "0123456789" * 3 + "ab")
    [line] = output(capsys).strip().splitlines()
    event = json.loads(line)
    assert event["event"] == "message_sent"
    assert event["level"] == "info"
    assert event["logger"] == "worker.test"
    assert event["timestamp"].endswith("Z")
    # Ids are left alone: they are what makes a log useful.
    assert event["message_id"] == msg_id
    assert event["sid"] == "SM" + "0123456789" * 3 + "ab"


def test_mask_phone_keeps_only_the_last_two_digits() -> None:
    """The mask keeps the leading + and the last two digits; short strings are fully hidden."""
    assert mask_phone(PHONE) == "+*********23"
    assert mask_phone("(415) 555-0123") == "********23"
    assert mask_phone("12") == "***"


class _CountingMapping(dict[str, str]):
    """A field value that counts how often the pipeline looks inside it (mask_pii does)."""

    reads = 0

    def items(self):  # type: ignore[override]
        type(self).reads += 1
        return super().items()


def test_lines_below_the_level_skip_the_processor_chain(capsys) -> None:
    """A debug line at INFO is dropped before masking and rendering run, not after (hot-path cost)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", "json")
        log = structlog.get_logger("test.level")
        _CountingMapping.reads = 0
        log.debug("below_level", data=_CountingMapping(a="b"))
        assert _CountingMapping.reads == 0
        assert "below_level" not in capsys.readouterr().err
        log.info("at_level", data=_CountingMapping(a="b"))
        assert _CountingMapping.reads == 1
        assert "at_level" in capsys.readouterr().err
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()


TOKEN = "mwk_" + "Ab3_-x" * 7 + "Z"  # the shape worker.identity.tokens issues


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_admin_tokens_and_authorization_headers_never_reach_the_output(emit, capsys, fmt: str) -> None:
    """A bearer token is redacted in an Authorization field, in a headers mapping, in any text, and from stdlib."""
    emit(fmt)
    log = structlog.get_logger("test")
    log.info("request", authorization=f"Bearer {TOKEN}", headers={"Authorization": f"Bearer {TOKEN}"})
    log.warning(f"refused token {TOKEN}", detail=f"Authorization: Bearer {TOKEN}")
    logging.getLogger("uvicorn.error").error("bad header Authorization: Bearer %s", TOKEN)
    out = output(capsys)
    assert TOKEN not in out
    assert TOKEN[4:20] not in out
    assert "<redacted" in out


def test_the_log_mask_knows_the_token_prefix() -> None:
    """The masking pattern follows the prefix tokens are issued with (the two live in different layers)."""
    from worker.identity.tokens import TOKEN_PREFIX
    from worker.logging import _TOKEN_RE

    assert TOKEN.startswith(TOKEN_PREFIX)
    assert _TOKEN_RE.search(TOKEN_PREFIX + "x" * 43) is not None
