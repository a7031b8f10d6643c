"""Logging that cannot leak: every record passes the redactor, and Slack's libraries stay quiet.

slack_bolt and slack_sdk log request bodies and headers at DEBUG; they are capped at INFO
whatever the root level, and the redactor still masks anything secret-shaped that gets through.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from checks.redact import Redactor

QUIET = ("slack_bolt", "slack_sdk", "urllib3", "botocore", "waitress.queue")


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact.text(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, so handlers don't re-render the raw one.
            record.exc_text = self._redact.text(
                logging.Formatter().formatException(record.exc_info)
            )
            record.exc_info = None
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
