"""Signed acks while unsigned hostile requests arrive, beside the same acks in quiet.

The reported attack: one unsigned 30 KB body stalled signed acks for 9.3 s, one 10 MB body pinned
a CPU for 28 minutes, because Bolt logged every refused body and the log redactor backtracked.
Here three senders post unsigned bodies built for that (40 KB and 1 MiB, the cap) in a loop while
signed `/preflight help` commands are timed. Everything is on loopback; the run is bounded.

    .venv/bin/python -m tests.perf.bench_http_hostile
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bot.app import build_app, shutdown
from bot.serve import make_http_server
from bot.services import Services
from bot.settings import Settings
from tests.support.slack_fake import FakeSlack
from tests.support.slack_requests import FORM, post, sign, slash_command

SECRET = "bench-signing-secret-not-real"
SIGNED = 200
HOSTILE = (
    "a://" + ":" * 40_000,
    "password=" * 4_000,
    "a://" + ":" * ((1 << 20) - 10),
    "Bearer " + "A" * ((1 << 20) - 10),
)


def _signed_latencies(url: str, response_url: str) -> list[float]:
    times = []
    for _ in range(SIGNED):
        body, _ = slash_command(text="help", response_url=response_url)
        status, _, elapsed = post(url, body, sign(SECRET, body), timeout=30)
        assert status == 200
        times.append(elapsed * 1000)
    return times


def _summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[int(len(ms) * 0.99) - 1]
    return f"{name:34} p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms  max {ms[-1]:7.1f} ms"


def main() -> None:
    logging.getLogger("preflight.http").setLevel(logging.ERROR)  # one refusal a second is noise
    with FakeSlack() as fake, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            slack_bot_token="xoxb-bench-not-real",
            slack_signing_secret=SECRET,
            preflight_slack_api_url=fake.api_url,
            preflight_db=str(Path(tmp) / "p.db"),
        )
        services = Services.from_settings(settings, env={})
        app = build_app(services)
        server = make_http_server(app, host="127.0.0.1", port=0, threads=16)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.effective_port}/slack/events"
        try:
            quiet = _signed_latencies(url, fake.response_url())
            stop = threading.Event()
            refused = [0]

            def attack(body: str) -> None:
                with httpx.Client(timeout=60) as client:
                    while not stop.is_set():
                        r = client.post(url, content=body.encode(), headers={"Content-Type": FORM})
                        assert r.status_code in (401, 413), r.status_code
                        refused[0] += 1

            attackers = [threading.Thread(target=attack, args=(b,), daemon=True) for b in HOSTILE]
            for t in attackers:
                t.start()
            started = time.perf_counter()
            loud = _signed_latencies(url, fake.response_url())
            seconds = time.perf_counter() - started
            stop.set()
            for t in attackers:
                t.join(timeout=60)
            print(_summary("signed acks, quiet (baseline)", quiet))
            print(_summary("signed acks, under hostile traffic", loud))
            print(f"hostile requests refused meanwhile: {refused[0]} in {seconds:.1f} s")
        finally:
            server.close()
            shutdown(app, timeout=10)
            services.store.close()


if __name__ == "__main__":
    main()
