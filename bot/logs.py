"""Logging that cannot leak: every record passes the redactor, and Slack's libraries stay quiet.

slack_bolt and slack_sdk log request bodies and headers at DEBUG; they are capped at INFO
whatever the root level, and the redactor still masks anything secret-shaped that gets through.

Redaction is linear in the text (checks.redact), and bounded too: a message or traceback longer
than MAX_RECORD_CHARS is cut, after redaction, so one huge record costs milliseconds at most.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from checks.redact import RUN, Redactor

QUIET = ("slack_bolt", "slack_sdk", "urllib3", "botocore", "waitress.queue")
MAX_RECORD_CHARS = 64 * 1024
# Redacted beyond the cut, so a secret that straddles it is still recognised whole.
_LOOKAHEAD_CHARS = 4 * 1024


def bounded(redactor: Redactor, text: str, limit: int = MAX_RECORD_CHARS) -> str:
    """text redacted, cut to `limit` characters with a note of how many were dropped."""
    if len(text) <= limit:
        return redactor.text(text)
    window = redactor.text(text[: limit + _LOOKAHEAD_CHARS])
    # The window's last RUN-1 characters may be the start of a secret cut by the window itself
    # (too short to be recognised as a run of it): never show them.
    head = window[: min(limit, len(window) - (RUN - 1))]
    return f"{head}… [{len(text) - limit:,} more characters not logged]"


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: log what we have rather than raise from a filter
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = bounded(self._redact, message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, so handlers don't re-render the raw one.
            record.exc_text = bounded(
                self._redact, logging.Formatter().formatException(record.exc_info)
            )
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = bounded(self._redact, record.exc_text)
        if record.stack_info:
            record.stack_info = bounded(self._redact, record.stack_info)
        return True


def configure_logging(env: Mapping[str, str], level: int = logging.INFO) -> logging.Handler:
    """Root handler with redaction; returns it so tests can attach the same filter."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor.from_env(env)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(
            max(level, logging.INFO if name.startswith("slack") else logging.WARNING)
        )
    return handler
