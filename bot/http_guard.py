"""The door of HTTP mode: nothing past it is read, logged or answered before it is verified.

Bolt parses a request body (and logs it when the signature fails) before its own verification
runs, so on the public internet a request is checked here first, in this order:

1. method and size: only POST; a declared `Content-Length` over the cap is refused (413) without
   reading a byte of the body; a chunked body is read at most cap + 1 bytes;
2. timestamp: digits only, within five minutes of now;
3. signature: HMAC-SHA256 of `v0:{ts}:{body}` with the signing secret, over the raw bytes;
4. shape: a verified body must still be a form or JSON object Bolt can parse (400 otherwise).

A refusal is one log line with the reason, the peer and the size: never the body or headers.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger("preflight.http")

MAX_BODY_BYTES = 1 << 20  # Slack's own payloads are far smaller; anything bigger is not Slack
MAX_SKEW_S = 300  # Slack's documented replay window
_SIGNATURE_LEN = len("v0=") + 64

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Refused(Exception):
    """A request the guard will not pass on; args are (HTTP status line, reason for the log)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


def _plain(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def read_capped(environ: dict[str, Any], cap: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (413) anything over cap without reading past cap + 1."""
    declared = environ.get("CONTENT_LENGTH") or ""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if declared:
        if not declared.isdigit() or len(declared) > 12:
            raise Refused("400 Bad Request", "malformed Content-Length")
        length = int(declared)
        if length > cap:
            raise Refused("413 Payload Too Large", f"declared {length} bytes")
        body: bytes = stream.read(length)
        return body
    # No length: a chunked body (waitress de-chunks it). Read one byte past the cap to know.
    body = stream.read(cap + 1)
    if len(body) > cap:
        raise Refused("413 Payload Too Large", "chunked body over the cap")
    return body


def verify(
    secret: bytes, body: bytes, timestamp: str, signature: str, now: float | None = None
) -> None:
    """Raise Refused(401) unless timestamp is fresh and signature signs it with the body."""
    if not timestamp or not signature:
        raise Refused("401 Unauthorized", "missing signature or timestamp")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused("401 Unauthorized", "malformed timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_S:
        raise Refused("401 Unauthorized", "stale timestamp")
    if len(signature) != _SIGNATURE_LEN or not signature.startswith("v0="):
        raise Refused("401 Unauthorized", "malformed signature")
    # slack_sdk's verifier decodes the body as UTF-8 first and raises on anything else, so the
    # same v0 HMAC is computed here over the raw bytes: a non-UTF-8 body is just unverified.
    basestring = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret, basestring, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refused("401 Unauthorized", "wrong signature")


def check_shape(body: bytes, content_type: str) -> None:
    """Raise Refused(400) unless a verified body is something Bolt can parse safely."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("400 Bad Request", "body is not UTF-8") from None
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            parsed = json.loads(text)
        except ValueError:
            raise Refused("400 Bad Request", "JSON body does not parse") from None
        if not isinstance(parsed, dict):
            raise Refused("400 Bad Request", "JSON body is not an object")
        return
    # The keys decide the shape, and only a payload's value is read: decoding every value as
    # parse_qs does cost more than the rest of the guard (Bolt parses the form itself later).
    keys: set[str] = set()
    payload: str | None = None
    for pair in text.split("&"):
        key, _, value = pair.partition("=")
        key = unquote_plus(key)
        keys.add(key)
        if key == "payload" and payload is None:
            payload = unquote_plus(value)
    if payload is not None:
        try:
            parsed = json.loads(payload)
        except ValueError:
            raise Refused("400 Bad Request", "interaction payload does not parse") from None
        if not isinstance(parsed, dict):
            raise Refused("400 Bad Request", "interaction payload is not an object")
    elif not keys & {"command", "type", "ssl_check"}:
        raise Refused("400 Bad Request", "neither a command, an event nor an interaction")


class _LogThrottle:
    """At most one refusal line a second, so a flood of junk cannot flood the log."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self._interval = interval_s
        self._last = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def allow(self) -> int | None:
        """None: stay quiet. Otherwise log now, mentioning this many suppressed lines."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._suppressed += 1
                return None
            self._last, suppressed, self._suppressed = now, self._suppressed, 0
            return suppressed


def guard(inner: WsgiApp, signing_secret: str) -> WsgiApp:
    """Wrap Bolt's WSGI app so that only verified, bounded, parseable requests reach it."""
    if not signing_secret.strip():
        raise ValueError("an empty signing secret verifies nothing")
    secret = signing_secret.encode()
    throttle = _LogThrottle()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "?")
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise Refused("405 Method Not Allowed", "not a POST")
            body = read_capped(environ)
            verify(
                secret,
                body,
                environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""),
                environ.get("HTTP_X_SLACK_SIGNATURE", ""),
            )
            check_shape(body, environ.get("CONTENT_TYPE", ""))
        except Refused as refused:
            size = environ.get("CONTENT_LENGTH") or "chunked"
            suppressed = throttle.allow()
            if suppressed is not None:
                more = f" ({suppressed} more refused in the last second)" if suppressed else ""
                log.warning(
                    "refused request from %s (%s bytes): %s%s", peer, size, refused.reason, more
                )
            return _plain(start_response, refused.status, refused.status.split(" ", 1)[1].lower())
        # Bolt reads the body again from wsgi.input: hand it the bytes already read.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["preflight.verified_at"] = time.time()
        return inner(environ, start_response)

    return application
