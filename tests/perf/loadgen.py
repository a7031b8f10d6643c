"""The load generator the ack benchmarks share: signed slash commands over real HTTP from a
pool of threads, with latency percentiles, throughput and (given its pid) the server's CPU."""

from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

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
) -> dict[str, float]:
    """`count` signed deliveries of `command` (name, text) from `concurrency` threads, from 40
    channels and 500 users: p50, p99, max, req/s, non-200 answers, and the server's CPU time
    per request when its pid is given."""
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
    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=concurrency))

    def one(item: tuple[str, dict[str, str]]) -> None:
        nonlocal failures
        body, headers = item
        started = time.perf_counter()
        try:
            status = client.post(url, content=body.encode(), headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        took = time.perf_counter() - started
        with lock:
            latencies.append(took)
            if status != 200:
                failures += 1

    cpu = cpu_s(server_pid) if server_pid else 0.0
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, bodies))
    wall = time.perf_counter() - started
    cpu = cpu_s(server_pid) - cpu if server_pid else float("nan")
    client.close()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": max(latencies) * 1000,
        "rps": count / wall,
        "non_200": failures,
        "cpu_ms": cpu * 1000 / count,
    }
