"""A small threaded HTTP(S) server on 127.0.0.1 standing in for the app under load and for
Sentry's ingest endpoint.

`load_http_server(...)` (fixture factory) starts one with a handler behaviour: a fixed delay,
a status for every n-th request, and it records each request (method, path, headers, body)
and how long the server itself spent on it. Servers stop at the end of the test.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoadServer:
    """A running server and what it saw."""

    httpd: ThreadingHTTPServer
    delay_s: float = 0.0
    status: int = 200
    fail_every: int = 0  # every n-th request answers fail_status
    fail_status: int = 500
    keep_bodies: bool = True
    close_connections: bool = False  # answer with "Connection: close" and hang up
    requests: list[RecordedRequest] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # time spent in the handler
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops bursts of connects: 1 s SYN retries

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up mid-answer (the load test's time limit) is expected here
        pass


def start_load_server(tls: ssl.SSLContext | None = None, **behaviour: Any) -> LoadServer:
    """Start a server on a free loopback port (HTTP/1.1 keep-alive; HTTPS with tls)."""
    holder: dict[str, LoadServer] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body are separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold every answer back ~40 ms
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self) -> None:
            server = holder["server"]
            t0 = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server.lock:
                server.requests.append(
                    RecordedRequest(
                        self.command,
                        self.path,
                        dict(self.headers.items()),
                        body if server.keep_bodies else b"",
                    )
                )
                n = len(server.requests)
            if server.delay_s:
                time.sleep(server.delay_s)
            status = server.status
            if server.fail_every and n % server.fail_every == 0:
                status = server.fail_status
            payload = b'{"id":"ok"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if server.close_connections:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)
            with server.lock:
                server.server_ms.append((time.perf_counter() - t0) * 1000)

        do_GET = _answer
        do_POST = _answer

    httpd = _QuietServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    server = LoadServer(httpd=httpd, **behaviour)
    holder["server"] = server
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="load-http", daemon=True
    ).start()
    return server


@pytest.fixture
def load_http_server() -> Iterator[Callable[..., LoadServer]]:
    started: list[LoadServer] = []

    def factory(**behaviour: Any) -> LoadServer:
        server = start_load_server(**behaviour)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def load_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def load_ca_bundle(load_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """PEM of the CA that signed the HTTPS server's certificate, for PREFLIGHT_CA_BUNDLE."""
    path = tmp_path_factory.mktemp("load-ca") / "ca.pem"
    load_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def load_https_server(load_ca: trustme.CA) -> Iterator[Callable[..., LoadServer]]:
    """Like load_http_server, over TLS with a certificate for localhost and 127.0.0.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    started: list[LoadServer] = []

    def factory(**behaviour: Any) -> LoadServer:
        server = start_load_server(tls=context, **behaviour)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
