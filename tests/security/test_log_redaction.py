"""The log filter: every record redacted in every shape, bounded in size, and never raising."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import MAX_RECORD_CHARS, RedactingFilter, bounded
from checks.redact import Redactor
from tests.security.canaries import CANARY_ENV, DB_PASSWORD, leaks, shapes


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose handler carries the redacting filter, writing into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter(Redactor.from_env(CANARY_ENV)))
    logger = logging.getLogger("tests.security.log_redaction")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, buffer
    finally:
        logger.handlers[:] = []
        logger.propagate = True


@pytest.mark.parametrize("shape", sorted(shapes(DB_PASSWORD)))
def test_every_shape_in_message_args_is_masked(logged, shape: str) -> None:
    logger, buffer = logged
    logger.warning("login refused: %s (attempt %d)", shapes(DB_PASSWORD)[shape], 3)
    out = buffer.getvalue()
    assert "login refused: " in out and "(attempt 3)" in out
    assert leaks(DB_PASSWORD, out) == []


def test_tracebacks_and_stacks_are_redacted(logged) -> None:
    logger, buffer = logged
    basic = base64.b64encode(f"app:{DB_PASSWORD}".encode()).decode()
    try:
        raise RuntimeError(f"upstream said Basic {basic} and {DB_PASSWORD}")
    except RuntimeError:
        logger.exception("call failed")
    logger.info("here", stack_info=True)
    out = buffer.getvalue()
    assert "RuntimeError: upstream said Basic" in out and "Stack (most recent call last)" in out
    assert leaks(DB_PASSWORD, out) == []


def test_a_huge_record_is_cut_after_redaction(logged) -> None:
    logger, buffer = logged
    body = "x" * (MAX_RECORD_CHARS - 5) + DB_PASSWORD + "y" * 5_000_000
    logger.info("body: %s", body)
    out = buffer.getvalue()
    assert len(out) < MAX_RECORD_CHARS + 200
    assert "more characters not logged]" in out
    assert leaks(DB_PASSWORD, out) == []


def test_the_cut_never_shows_the_start_of_a_secret() -> None:
    """Secrets back to back shrink to one mask, so the cut lands at the end of the redacted
    window, where the window itself cut a secret: that partial piece must not be shown."""
    redactor = Redactor.from_env(CANARY_ENV)
    text = DB_PASSWORD * 1000
    for limit in range(1000, 1000 + len(DB_PASSWORD)):  # every place the window can end
        out = bounded(redactor, text, limit=limit)
        assert "more characters not logged" in out
        assert leaks(DB_PASSWORD, out) == [], limit
        assert DB_PASSWORD[:4] not in out, limit


def test_bad_format_arguments_do_not_raise(logged) -> None:
    logger, buffer = logged
    logger.info("%d items for %s", "not-a-number", DB_PASSWORD)
    out = buffer.getvalue()
    assert "unformattable arguments" in out
    assert leaks(DB_PASSWORD, out) == []
