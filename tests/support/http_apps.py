"""Local HTTP(S) apps for the web checks: headers, redirects, CORS, rate limits, an API.

An app is a function from `Request` to `Reply`; `http_app(app, tls=False, delay_s=0.0)`
serves it on a free loopback port (HTTPS with the test CA's certificate for 127.0.0.1) and
records every request. delay_s makes each answer wait, standing in for a slow server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from tests.support.tls_servers import LOOPBACK, server_context


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


App = Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server behind a load balancer
    timeout = 5  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        self.server.requests.append(request)
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        reply = self.server.app(request)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        body = b"" if self.command == "HEAD" else reply.body
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def version_string(self) -> str:
        return "test-app"  # keep the Server header neutral; apps add what they test

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: App, tls: ssl.SSLContext | None, delay_s: float) -> None:
        self.app = app
        self.tls = tls
        self.delay_s = delay_s
        self.requests: list[Request] = []
        super().__init__((LOOPBACK, 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's thread, so one slow client
        # cannot hold up the accept loop.
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(5)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-request are expected (timeouts, bursts)


class HttpApp:
    """A running app: its base URL, port and the requests it received."""

    def __init__(self, app: App, tls: ssl.SSLContext | None = None, delay_s: float = 0.0):
        self._server = _Server(app, tls, delay_s)
        self.port: int = self._server.server_address[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def http_app(tls_certs: dict[str, trustme.LeafCert]) -> Iterator[Callable[..., HttpApp]]:
    """Factory: `http_app(app, tls=False, delay_s=0.0)` -> a running HttpApp."""
    started: list[HttpApp] = []

    def start(app: App, *, tls: bool = False, delay_s: float = 0.0) -> HttpApp:
        context = server_context(tls_certs["valid"]) if tls else None
        running = HttpApp(app, context, delay_s)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


# --- Header sets -------------------------------------------------------------------------

GOOD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    # Helmet's default policy: 'unsafe-inline' for styles only.
    "Content-Security-Policy": (
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
        "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
        "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
        "upgrade-insecure-requests"
    ),
}
BARE_EXPRESS_HEADERS = {"X-Powered-By": "Express", "Content-Type": "text/html"}


def headers_app(headers: dict[str, str]) -> App:
    """Answers 200 with exactly these headers."""
    return lambda request: Reply(200, dict(headers))


# --- Redirects ---------------------------------------------------------------------------


def redirect_app(status: int, location: str) -> App:
    """Answers every request with `status` and `Location: location`; `{host}` in location
    becomes the host name the client asked for (as a real redirect rule does)."""

    def app(request: Request) -> Reply:
        host = (request.header("host") or "").rsplit(":", 1)[0]
        return Reply(status, {"Location": location.replace("{host}", host)}, b"")

    return app


# --- CORS --------------------------------------------------------------------------------


def cors_app(mode: str, allowed_origin: str | None = None) -> App:
    """mode: "echo" (reflects any Origin, with credentials), "star" (`*`), "star_credentials"
    (`*` plus credentials), "strict" (only allowed_origin), "none" (no CORS headers)."""

    def app(request: Request) -> Reply:
        origin = request.header("origin")
        headers: dict[str, str] = {}
        if mode == "echo" and origin:
            headers = {"Access-Control-Allow-Origin": origin}
            headers["Access-Control-Allow-Credentials"] = "true"
        elif mode == "star":
            headers = {"Access-Control-Allow-Origin": "*"}
        elif mode == "star_credentials":
            headers = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Credentials": "true",
            }
        elif mode == "strict" and origin and origin == allowed_origin:
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Vary": "Origin",
            }
        if request.method == "OPTIONS" and headers:
            headers["Access-Control-Allow-Methods"] = "GET,POST"
            headers["Access-Control-Allow-Headers"] = "authorization,content-type"
        return Reply(204 if request.method == "OPTIONS" else 200, headers, b"")

    return app


# --- Rate limits -------------------------------------------------------------------------


class RateLimitedApp:
    """Answers 200 for the first `limit` requests, then 429 (with or without headers).
    advertise=True adds RateLimit-* headers to every answer."""

    def __init__(self, limit: int, *, with_headers: bool = True, advertise: bool = False):
        self.limit = limit
        self.with_headers = with_headers
        self.advertise = advertise
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            self.count += 1
            n = self.count
        headers = {"Content-Type": "application/json"}
        if self.advertise:
            headers.update(
                {
                    "RateLimit-Limit": str(self.limit),
                    "RateLimit-Remaining": str(max(self.limit - n, 0)),
                    "RateLimit-Reset": "60",
                }
            )
        if n <= self.limit:
            return Reply(200, headers, b"{}")
        if self.with_headers:
            headers.update({"Retry-After": "60", "RateLimit-Limit": str(self.limit)})
        return Reply(429, headers, b'{"error": "too many requests"}')


# --- An API with token auth ----------------------------------------------------------------

STATS = {"total": 12, "new": 3, "contacted": 9}


def api_app(token: str, mode: str = "auth") -> App:
    """mode: "auth" (JSON with the token, 401 without), "open" (JSON for everyone),
    "forbidden_json" (403 without the token), "non_json" (HTML with the token), "error" (500)."""

    def app(request: Request) -> Reply:
        authorized = request.header("authorization") == f"Bearer {token}"
        json_headers = {"Content-Type": "application/json"}
        if mode == "error":
            return Reply(500, json_headers, b'{"error": "internal"}')
        if mode == "open" or authorized:
            if mode == "non_json":
                return Reply(200, {"Content-Type": "text/html"}, b"<html>frontend</html>")
            return Reply(200, json_headers, json.dumps(STATS).encode())
        status = 403 if mode == "forbidden_json" else 401
        return Reply(status, json_headers, b'{"error": "unauthorized"}')

    return app


def refused_url(scheme: str = "http") -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    return f"{scheme}://{LOOPBACK}:{port}"


@contextlib.contextmanager
def serving(app: App, **kwargs: Any) -> Iterator[HttpApp]:
    """An app outside pytest fixtures (benchmarks)."""
    running = HttpApp(app, **kwargs)
    try:
        yield running
    finally:
        running.close()
