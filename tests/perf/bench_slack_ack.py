"""Ack latency and throughput of `/preflight status` over real HTTP, beside a bare Bolt app.

Three processes so the load generator does not steal the server's GIL: the fake Slack Web API,
the server under test (waitress + Bolt), and this one sending signed requests from threads.
Both servers run the same waitress settings in the same run; the bare app only acks.

    .venv/bin/python -m tests.perf.bench_slack_ack
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from checks import registry
from checks.base import Check, CheckContext, Result, Status
from tests.perf.loadgen import SECRET, load

ROOT = Path(__file__).resolve().parents[2]
LEVELS = (1, 10, 50)
REQUESTS = {1: 100, 10: 600, 50: 1000}


def serve_fake() -> None:
    """Child process: the fake Slack Web API; prints its API and response URLs."""
    from tests.support.slack_fake import FakeSlack

    fake = FakeSlack().start()
    print(fake.api_url, flush=True)
    print(fake.response_url(), flush=True)
    while True:
        time.sleep(3600)


def _two_seconds(ctx: CheckContext) -> Result:
    time.sleep(2)
    return Result(Status.PASS, "a slow target answered after 2 s")


def serve_app(kind: str, api_url: str, db: str) -> None:
    """Child process: the bare app or Preflight under waitress; prints its port."""
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.app import build_app
    from bot.serve import make_http_server
    from bot.services import Services
    from bot.settings import Settings

    if kind == "bare":
        app = App(
            signing_secret=SECRET,
            token_verification_enabled=False,
            client=WebClient(token="xoxb-bench-not-real", base_url=api_url),
        )
        app.command("/preflight")(lambda ack: ack())
    elif kind == "naive":
        # The common mistake: ack, then do the slow work in the listener, on Bolt's default
        # pool of 5 threads. Later requests wait for a free thread before they can even ack.
        app = App(
            signing_secret=SECRET,
            token_verification_enabled=False,
            client=WebClient(token="xoxb-bench-not-real", base_url=api_url),
        )

        # Its refusals are the point; Bolt logs each one at length.
        logging.getLogger("slack_bolt").setLevel(logging.CRITICAL)

        def ack_then_work(ack: Any) -> None:
            ack()
            time.sleep(2)

        app.command("/preflight")(ack_then_work)
    else:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-bench-not-real"),
            slack_signing_secret=SecretStr(SECRET),
            preflight_slack_api_url=api_url,
            preflight_db=db,
            preflight_check_timeout=2,
        )
        env = {
            "PREFLIGHT_DNS_NAMESERVER": "127.0.0.1:9",
            "PREFLIGHT_API_URL": "http://127.0.0.1:9",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": "9",
        }
        if kind == "slow":
            registry.register(
                Check(id="zz_two_seconds", title="slow", section="Bench", run=_two_seconds)
            )
        app = build_app(Services.from_settings(settings, env=env))
    server = make_http_server(app, host="127.0.0.1", port=0, threads=16)
    print(server.effective_port, flush=True)
    server.run()


@contextmanager
def _process(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.perf.bench_slack_ack", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    try:
        yield proc, [proc.stdout.readline().strip()]
    finally:
        proc.terminate()
        proc.wait(10)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load(url: str, response_url: str, concurrency: int, count: int) -> dict[str, float]:
    return load(url, response_url, ("/preflight", "status"), concurrency, count)


def run() -> dict[str, dict[int, dict[str, float]]]:
    figures: dict[str, dict[int, dict[str, float]]] = {}
    with _process("fake") as (fake, first):
        assert fake.stdout is not None
        api_url, response_url = first[0], fake.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("bare", "preflight"):
                db = f"{tmp}/{kind}.db"
                with _process("serve", kind, api_url, db) as (server, port):
                    url = f"http://127.0.0.1:{port[0]}/slack/events"
                    time.sleep(0.5)
                    figures.setdefault(kind, {})[0] = {"idle_rss_mb": _rss_mb(server.pid)}
                    # Warm up: first imports (boto3, psycopg) and the first check run.
                    _load(url, response_url, 1, 3)
                    time.sleep(4)
                    for level in LEVELS:
                        figures[kind][level] = _load(url, response_url, level, REQUESTS[level])
    return figures


def slow_acks() -> dict[str, dict[int, float]]:
    """Max ack latency of N concurrent /preflight status whose work takes 2 s: Preflight (its
    checks take 2 s) against the naive app (ack, then 2 s of work on Bolt's default pool)."""
    out: dict[str, dict[int, float]] = {}
    with _process("fake") as (fake, first):
        assert fake.stdout is not None
        api_url, response_url = first[0], fake.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("naive", "slow"):
                for n in (10, 20):
                    with _process("serve", kind, api_url, f"{tmp}/{kind}{n}.db") as (_, port):
                        url = f"http://127.0.0.1:{port[0]}/slack/events"
                        time.sleep(0.5)
                        _load(url, response_url, 1, 1)  # warm up imports
                        time.sleep(2.5)
                        figures = _load(url, response_url, n, n)
                        out.setdefault(kind, {})[n] = figures["max_ms"]
    return out


def report(figures: dict[str, dict[int, dict[str, float]]]) -> str:
    lines = [
        "/preflight status ack over HTTP (waitress, 16 threads), same run:",
        f"{'app':10} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'non-200':>8}",
    ]
    for kind, levels in figures.items():
        for level in LEVELS:
            f = levels[level]
            lines.append(
                f"{kind:10} {level:>4} {f['p50_ms']:8.1f} {f['p99_ms']:8.1f} "
                f"{f['rps']:8.0f} {f['non_200']:8.0f}"
            )
    for level in LEVELS:
        ratio = figures["preflight"][level]["rps"] / figures["bare"][level]["rps"]
        lines.append(f"throughput preflight/bare at concurrency {level}: {ratio:.0%}")
    lines.append(
        f"idle RSS: bare {figures['bare'][0]['idle_rss_mb']:.0f} MB, "
        f"preflight {figures['preflight'][0]['idle_rss_mb']:.0f} MB"
    )
    return "\n".join(lines)


def report_slow(figures: dict[str, dict[int, float]]) -> str:
    lines = ["concurrent /preflight status whose work takes 2 s, slowest ack (Slack allows 3 s):"]
    labels = {"naive": "Bolt default pool, work in listener", "slow": "Preflight, own work pool"}
    for kind, label in labels.items():
        for n, max_ms in figures[kind].items():
            lines.append(f"  {label:36} {n:3} requests: {max_ms:7.0f} ms")
    return "\n".join(lines)


def test_bench_slack_ack() -> None:
    print("\n" + report(run()))
    print(report_slow(slow_acks()))


if __name__ == "__main__":
    if sys.argv[1:2] == ["fake"]:
        serve_fake()
    elif sys.argv[1:2] == ["serve"]:
        serve_app(*sys.argv[2:5])
    else:
        print(report(run()))
        print(report_slow(slow_acks()))
