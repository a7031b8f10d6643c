"""The production HTTP server (waitress, bot/serve.py) with its quiet connection class: the
main thread no longer spins while a task runs, a small answer leaves in one send from the main
thread, and answers of every size still arrive whole, over keep-alive, including one past the
high watermark that the main thread must help drain."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from waitress.server import create_server

from bot.serve import TASK_SEND_BYTES, quiet_channel
from tests.support.slack_app import serving

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
BIG = 40 * 1024 * 1024  # past waitress's 16 MiB high watermark: the main thread must help


def _answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    size = int(environ.get("QUERY_STRING") or "2")
    start_response("200 OK", [("Content-Length", str(size))])
    if size > 1024 * 1024:  # streamed in chunks, as a big export would be
        chunk = b"o" * (1024 * 1024)
        return (chunk for _ in range(size // len(chunk)))
    return [b"o" * size]


def _served(app: WsgiApp, channel: type | None = None) -> Any:
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    server.channel_class = channel or quiet_channel()
    return serving(server)


def test_the_main_thread_leaves_a_running_task_its_output() -> None:
    """Ten clients at once over keep-alive. The stock connection had the main thread try to
    send, round after round of select(), while a task was still sending its own answer (786
    futile attempts for these 500 requests on the 2-core test machine); the quiet one never
    does."""
    futile = [0]
    answers: list[tuple[int, bytes]] = []

    class Probe(quiet_channel()):  # type: ignore[misc]
        def handle_write(self) -> None:
            if self.requests and self.total_outbufs_len <= self.adj.outbuf_high_watermark:
                futile[0] += 1  # a task is running and sends its own output
            super().handle_write()

    with _served(_answer, channel=Probe) as url:
        clients = [httpx.Client() for _ in range(10)]

        def run(client: httpx.Client) -> None:
            for _ in range(50):
                response = client.get(f"{url}/?200")
                answers.append((response.status_code, response.content))

        threads = [threading.Thread(target=run, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for client in clients:
            client.close()
    assert answers == [(200, b"o" * 200)] * 500
    assert futile[0] == 0


def test_a_small_answer_leaves_in_one_send_after_its_task() -> None:
    """Stock waitress sends the header and then the body from the task's thread, each send
    giving up the GIL that the task must then win back before the body can go (the p99 of
    `/preflight item` at c=10 was 21-33 ms from that alone). Here the task only buffers, and
    the server's own thread sends header and body together once the task has ended."""
    sends: list[tuple[str, int]] = []

    class Probe(quiet_channel()):  # type: ignore[misc]
        def send(self, data: bytes, do_close: bool = True) -> int:
            sent = int(super().send(data, do_close=do_close))
            sends.append((threading.current_thread().name, sent))
            return sent

    size = TASK_SEND_BYTES // 2
    with _served(_answer, channel=Probe) as url, httpx.Client() as client:
        for _ in range(20):
            response = client.get(f"{url}/?{size}")
            assert response.status_code == 200 and response.content == b"o" * size
    assert len(sends) == 20
    assert all(not name.startswith("waitress-") and sent > size for name, sent in sends)


@pytest.mark.parametrize("size", [0, 1, 70_000, 3 * 1024 * 1024, BIG])
def test_answers_of_every_size_arrive_whole(size: int) -> None:
    with _served(_answer) as url, httpx.Client(timeout=60) as client:
        for _ in range(2):  # twice on one connection: keep-alive after a big answer
            response = client.get(f"{url}/?{size}")
            assert response.status_code == 200 and response.content == b"o" * size


def test_make_http_server_uses_the_quiet_connection() -> None:
    from slack_bolt import App

    from bot.serve import make_http_server

    app = App(
        signing_secret="quiet-not-real",  # pragma: allowlist secret
        token="xoxb-quiet-not-real",
        token_verification_enabled=False,
    )
    server = make_http_server(app, host="127.0.0.1", port=0, threads=2)
    try:
        assert server.channel_class.__name__ == "QuietChannel"
    finally:
        server.close()
