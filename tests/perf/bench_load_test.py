"""load_test's own accuracy and throughput: its live mode against a local server that answers
in about 5 ms, at concurrency 50.

The server runs in a separate process (so it does not share the load generator's GIL) and
measures its own latency per request. The p95 the check reports should be within 2x of the
server's own p95; the requests per second show how much load the check generates from one
process. A closed-loop generator that runs out of CPU adds queueing to every latency
(latency >= concurrency / max throughput), so the ratio is a measure of its overhead.

    .venv/bin/python -m tests.perf.bench_load_test [--requests N] [--concurrency C] [--delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from typing import Any

import httpx
import uvloop

from checks import load_test
from checks.base import CheckContext
from checks.runner import run_one


def _serve(port_out: Any, delay_s: float) -> None:
    """Child process: an asyncio server answering GET / after delay_s over keep-alive
    connections; GET /__stats returns (and clears) its own per-request times in ms, from the
    request's head read to the answer written. A threaded http.server cannot answer 50
    concurrent requests in ~5 ms: it would measure itself, not the load generator."""
    samples: list[float] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                t0 = time.perf_counter()
                stats = head.startswith(b"GET /__stats")
                if stats:
                    body = json.dumps(samples).encode()
                    samples.clear()
                else:
                    await asyncio.sleep(delay_s)
                    body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                if not stats:
                    samples.append((time.perf_counter() - t0) * 1000)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    # The stand-in server must not be the bottleneck it is there to measure: on libuv it
    # answers a 5 ms request with far less CPU than asyncio's own loop.
    uvloop.run(main())


def _p95(values: list[float]) -> float:
    return load_test.percentile(sorted(values), 95)


def bench(requests: int, concurrency: int, delay_s: float) -> dict[str, Any]:
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    child = multiprocessing.Process(target=_serve, args=(ports, delay_s), daemon=True)
    child.start()
    try:
        port = ports.get(timeout=10)
        base = f"http://127.0.0.1:{port}"
        httpx.get(f"{base}/", timeout=5)

        def ctx(count: int) -> CheckContext:
            env = {
                "PREFLIGHT_LOAD_URL": f"{base}/",
                "PREFLIGHT_LOAD_REQUESTS": str(count),
                "PREFLIGHT_LOAD_CONCURRENCY": str(concurrency),
                "PREFLIGHT_LOAD_SECONDS": "120",
            }
            return CheckContext(env=env, allow_active=True, timeout_s=130)

        # Warm-up run, not measured: connections, both processes' code paths and caches.
        run_one(load_test.CHECK, ctx(min(requests, 1000)))
        httpx.get(f"{base}/__stats", timeout=5)
        result = run_one(load_test.CHECK, ctx(requests))
        server_ms = json.loads(httpx.get(f"{base}/__stats", timeout=5).text)
    finally:
        child.terminate()
        child.join(5)
    ev = result.evidence
    return {
        "status": result.status.value,
        "samples": ev["samples"],
        "errors": ev["errors"],
        "check_p50_ms": ev["p50_ms"],
        "check_p95_ms": ev["p95_ms"],
        "server_p50_ms": round(statistics.median(server_ms), 2),
        "server_p95_ms": round(_p95(server_ms), 2),
        "requests_per_s": ev["requests_per_s"],
        "duration_s": ev["duration_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.005, help="server answer delay (s)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(
        f"load_test live mode: {args.requests} requests, concurrency {args.concurrency}, "
        f"server delay {args.delay * 1000:g} ms, {args.rounds} rounds"
    )
    print(
        f"{'round':>5} {'status':>7} {'samples':>7} {'err':>4} {'check p50':>10} "
        f"{'check p95':>10} {'server p50':>11} {'server p95':>11} {'ratio':>6} {'req/s':>8}"
    )
    ratios = []
    rates = []
    for n in range(1, args.rounds + 1):
        r = bench(args.requests, args.concurrency, args.delay)
        ratio = r["check_p95_ms"] / r["server_p95_ms"]
        ratios.append(ratio)
        rates.append(r["requests_per_s"])
        print(
            f"{n:>5} {r['status']:>7} {r['samples']:>7} {r['errors']:>4} "
            f"{r['check_p50_ms']:>8.2f}ms {r['check_p95_ms']:>8.2f}ms "
            f"{r['server_p50_ms']:>9.2f}ms {r['server_p95_ms']:>9.2f}ms "
            f"{ratio:>6.2f} {r['requests_per_s']:>8.1f}"
        )
    median_ratio = statistics.median(ratios)
    verdict = "within" if median_ratio <= 2 else "NOT within"
    print(
        f"median p95 ratio (check / server): {median_ratio:.2f} -> {verdict} the 2x target; "
        f"median throughput {statistics.median(rates):.0f} req/s"
    )


if __name__ == "__main__":
    main()
