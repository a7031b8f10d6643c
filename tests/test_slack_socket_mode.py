"""Socket Mode end to end: the app opens a WebSocket to a local stand-in for Slack's socket
server, receives a slash command envelope, and acks it with the answer in the same envelope."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from bot.app import build_app, shutdown
from bot.serve import socket_mode_handler
from bot.services import Services
from tests.support.dns_server import LocalDNS
from tests.support.slack_app import CHECK_ENV, make_settings
from tests.support.slack_fake import FakeSlack

APP_TOKEN = "xapp-1-A000-socket-mode-test-not-real"


class SocketServer:
    """Speaks Slack's Socket Mode protocol: hello, then the envelopes a test queues."""

    def __init__(self) -> None:
        self.outgoing: queue.Queue[dict[str, Any]] = queue.Queue()
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A000"}}
            )
        )
        receiver = threading.Thread(target=self._receive, args=(connection,), daemon=True)
        receiver.start()
        while True:
            envelope = self.outgoing.get()
            if envelope.get("type") == "stop":
                connection.close()
                return
            connection.send(json.dumps(envelope))

    def _receive(self, connection: ServerConnection) -> None:
        try:
            for message in connection:
                self.acks.put(json.loads(message))
        except Exception:  # the connection closed: nothing more to read
            return

    def close(self) -> None:
        self.outgoing.put({"type": "stop"})
        self._server.shutdown()


@pytest.fixture
def socket_server() -> Iterator[SocketServer]:
    server = SocketServer()
    yield server
    server.close()


def test_a_slash_command_over_socket_mode_is_acked_with_its_answer(
    tmp_path: Path, fake_slack: FakeSlack, dns_server: LocalDNS, socket_server: SocketServer
) -> None:
    fake_slack.answer(
        "apps.connections.open", lambda payload: {"ok": True, "url": socket_server.url}
    )
    settings = make_settings(
        tmp_path, fake_slack, slack_signing_secret=None, slack_app_token=APP_TOKEN
    )
    services = Services.from_settings(
        settings, env={**CHECK_ENV, "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver}
    )
    app = build_app(services)
    handler = socket_mode_handler(app, settings)
    handler.connect()
    try:
        socket_server.outgoing.put(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "command": "/preflight",
                    "text": "signoff phase-3-status/all-tests-passing",
                    "user_id": "U123",
                    "channel_id": "C123",
                    "team_id": "T123",
                    "trigger_id": "111.222.socket",
                    "response_url": fake_slack.response_url(),
                },
            }
        )
        ack = socket_server.acks.get(timeout=10)
        assert ack["envelope_id"] == "env-1"
        assert "Signed off `phase-3-status/all-tests-passing`" in ack["payload"]["text"]
        assert services.store.signoff_count() == 1
        # Slack redelivers an envelope it thinks was lost: acked again, applied once.
        socket_server.outgoing.put(
            {
                "envelope_id": "env-2",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "retry_attempt": 1,
                "retry_reason": "timeout",
                "payload": {
                    "command": "/preflight",
                    "text": "signoff phase-3-status/all-tests-passing",
                    "user_id": "U123",
                    "channel_id": "C123",
                    "team_id": "T123",
                    "trigger_id": "111.222.socket",
                    "response_url": fake_slack.response_url(),
                },
            }
        )
        assert socket_server.acks.get(timeout=10)["envelope_id"] == "env-2"
        assert services.store.signoff_count() == 1
        opened = fake_slack.calls_to("apps.connections.open")[0]
        assert opened.token == APP_TOKEN
    finally:
        handler.close()
        shutdown(app, timeout=10)
        services.store.close()
