"""Serving Slack: Socket Mode (no public URL) or HTTP on /slack/events behind waitress.

Waitress is a production WSGI server that runs in-process on every platform, so the same
server object serves the Docker image, a developer's laptop and the tests' real-HTTP runs.
"""

from __future__ import annotations

import copy
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import build_app, shutdown
from bot.http_guard import MAX_BODY_BYTES, guard
from bot.logs import configure_logging
from bot.scheduler import DigestScheduler
from bot.services import Services
from bot.settings import Settings

log = logging.getLogger("preflight.serve")
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(app: App) -> WsgiApp:
    """Bolt on /slack/events behind the guard, a liveness answer on /healthz, 404 elsewhere."""
    secret = getattr(app, "_signing_secret", None)
    if not secret:
        # Without a secret nothing could be verified: HTTP mode must not serve at all.
        raise ValueError("HTTP mode needs the app's signing secret")
    bolt = guard(SlackRequestHandler(app), secret)
    lanes = getattr(app, "_preflight_lanes", None)  # Preflight's app has them, a bare one not

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return [b"ok\n"]
        if path == EVENTS_PATH:
            if lanes is None:
                return bolt(environ, start_response)
            with lanes.turn():  # the guard and the signature check are CPU work too
                return bolt(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]

    return application


# A task's answer below this size waits in its connection's buffer and leaves in one send
# when the task ends (see QuietChannel); a bigger one is sent by the task as it grows.
TASK_SEND_BYTES = 64 * 1024


def quiet_channel() -> type:
    """waitress's HTTP connection class, minus a busy loop and a GIL convoy (see QuietChannel)."""
    from waitress.channel import HTTPChannel

    class QuietChannel(HTTPChannel):
        """Two changes to how an answer leaves, both measured with the server on one CPU:

        - Stock waitress sends every write at once from the task's thread: the header, then
          the body. Each send gives up the GIL, and getting it back behind the threads that
          took it meanwhile took up to 28 ms, with the body still unsent: `/preflight item`
          at c=10 had a p99 of 21-33 ms, all of it there. Here a task only buffers an answer
          below TASK_SEND_BYTES; the main thread, woken when the task ends (as waitress does
          for every task), sends header and body in one write. p99: 10-14 ms.
        - While a task runs, the main thread saw output pending and the socket writable,
          tried the buffer's lock, found it taken and went round select() again, 13-21
          times a request at c=10, each time taking the GIL from the task. So while a task
          runs its output is left to it (unless it waits for the main thread to drain past
          the high watermark). `/decide` at c=10: 0.89-1.01 ms of CPU a request before,
          0.65-0.73 after."""

        def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
            super().__init__(server, sock, addr, _task_send_bytes(adj), map)

        def writable(self) -> bool:
            if (
                self.requests
                and self.total_outbufs_len <= self.adj.outbuf_high_watermark
                and not (self.will_close or self.close_when_flushed)
            ):
                return False
            return bool(super().writable())

    return QuietChannel


@functools.lru_cache(maxsize=8)
def _task_send_bytes(adj: Any) -> Any:
    """The server's adjustments, but a task's writes are sent once TASK_SEND_BYTES are
    buffered rather than at once (waitress's default of 1 byte)."""
    held = copy.copy(adj)
    held.send_bytes = TASK_SEND_BYTES
    return held


def make_http_server(app: App, host: str = "0.0.0.0", port: int = 3000, threads: int = 16) -> Any:
    """A waitress server for app (call .run(); .close() stops it). Threads answer acks only."""
    from waitress.server import BaseWSGIServer, create_server

    server = create_server(
        wsgi_app(app),
        host=host,
        port=port,
        threads=threads,
        ident="preflight",
        clear_untrusted_proxy_headers=True,
        # waitress refuses bigger chunked bodies itself; the guard refuses declared ones unread.
        max_request_body_size=MAX_BODY_BYTES,
        max_request_header_size=64 * 1024,
    )
    # One listening socket gives its server; several (a name with IPv4 and IPv6 addresses)
    # a MultiSocketServer, whose servers are in its map beside their connections.
    channel = quiet_channel()
    for listener in [server, *getattr(server, "map", {}).values()]:
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel
    return server


def serve(settings: Settings, *, http: bool, port: int = 3000) -> None:
    configure_logging(os.environ)
    services = Services.from_settings(settings)
    app = build_app(services)
    # Every process may run one: digest slots are claimed in the store before posting.
    scheduler = DigestScheduler(app.client, services)
    scheduler.start()
    # docker stop sends SIGTERM: leave through the finally below, draining in-flight work.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _serve(app, settings, http=http, port=port)
    finally:
        scheduler.shutdown()
        shutdown(app)


def _serve(app: App, settings: Settings, *, http: bool, port: int) -> None:
    if http:
        if settings.slack_signing_secret is None:
            raise SystemExit("preflight: HTTP mode needs SLACK_SIGNING_SECRET")
        server = make_http_server(app, port=port, threads=settings.preflight_listener_workers)
        freeze_startup_heap()
        log.info("serving Slack over HTTP on port %s%s", port, EVENTS_PATH)
        server.run()
        return
    handler = socket_mode_handler(app, settings)
    freeze_startup_heap()
    log.info("serving Slack over Socket Mode")
    handler.start()


def freeze_startup_heap() -> int:
    """Take what was built before serving out of the cyclic garbage collector's walks; returns
    how many objects that is.

    The modules, the app, its services and the parsed checklist live as long as the process,
    yet every full collection walked all of them with the GIL held: about 107,000 objects,
    40-63 ms of CPU in the bench's server under load, during which no ack moved. Frozen, a
    full collection there took 2 ms. Garbage is collected first so none of it is kept for good."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def socket_mode_handler(app: App, settings: Settings) -> Any:
    """Socket Mode: Slack pushes requests over a WebSocket the app opens; no public URL."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    assert settings.slack_app_token is not None
    return SocketModeHandler(app, settings.slack_app_token.get_secret_value())
