"""The load generator the ack benchmarks share: signed slash commands over real HTTP from a
pool of threads, with latency percentiles, throughput and (given its pid) the server's CPU.

Each thread keeps one keep-alive connection through the standard library's http.client, whose
cost per request is a fraction of httpx's: with httpx the generator itself ran out of CPU at
about 2,600 requests a second against waitress's bare /healthz (8,400 with http.client), and
the time a response waited for its thread to be scheduled counted as the server's latency."""

from __future__ import annotations

import gc
import http.client
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.slack_requests import sign, slash_command

SECRET = "bench-signing-secret-not-real"  # pragma: allowlist secret


def cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    url: str,
    response_url: str,
    command: tuple[str, str],
    concurrency: int,
    count: int,
    server_pid: int | None = None,
    rate: float | None = None,
) -> dict[str, float]:
    """`count` signed deliveries of `command` (name, text) from `concurrency` threads, from 40
    channels and 500 users: p50, p99, max, req/s, non-200 answers, and the server's CPU time
    per request when its pid is given.

    Without `rate` each thread sends its next request as soon as the last is answered (a
    closed loop). With it, request n is due `n / rate` seconds after the start and its latency
    counts from then, so time spent waiting for a free thread counts too."""
    bodies = []
    for i in range(count):
        body, _ = slash_command(
            command[0],
            command[1],
            response_url=response_url,
            channel_id=f"C{i % 40:08d}",
            user_id=f"U{i % 500:05d}",
        )
        bodies.append((body, sign(SECRET, body)))
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    target = urlsplit(url)
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []

    def post(body: bytes, headers: dict[str, str]) -> int:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(
                target.hostname or "127.0.0.1", target.port, timeout=10
            )
            with lock:
                opened.append(conn)
        try:
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            conn.close()  # the next request on this thread opens a new connection
            return 0

    def one(item: tuple[int, tuple[str, dict[str, str]]]) -> None:
        nonlocal failures
        n, (body, headers) = item
        started = time.perf_counter()
        if rate:
            due = begun + n / rate
            if due > started:
                time.sleep(due - started)
            started = due
        status = post(body.encode(), headers)
        took = time.perf_counter() - started
        with lock:
            latencies.append(took)
            if status != 200:
                failures += 1

    # No collection in this process while it measures, as timeit does: a full one here took
    # 27-80 ms with every client thread stopped, counted as the server's latency (a bare app's
    # c=10 p99 read 46-51 ms in some runs, 12 in the others).
    gc.collect()
    gc.disable()
    try:
        cpu = cpu_s(server_pid) if server_pid else 0.0
        begun = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, enumerate(bodies)))
        wall = time.perf_counter() - begun
        cpu = cpu_s(server_pid) - cpu if server_pid else float("nan")
    finally:
        gc.enable()
    for conn in opened:
        conn.close()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": max(latencies) * 1000,
        "rps": count / wall,
        "non_200": failures,
        "cpu_ms": cpu * 1000 / count,
    }
