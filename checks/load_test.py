"""The application meets the checklist's load targets: 95th percentile response time under
500 ms and 0% errors.

Two ways to get the figures:
- a report the team's load tool wrote, PREFLIGHT_LOAD_REPORT: k6 (`--summary-export`, or the
  JSON of `handleSummary`: metrics.http_req_duration p(95), metrics.http_req_failed) or
  Artillery (`--output` JSON: aggregate.summaries["http.response_time"].p95 and counters;
  the older aggregate.latency form too). Reading a file sends no traffic, so it needs no
  opt-in.
- a small live test against PREFLIGHT_LOAD_URL, the team's own configured host: GET requests
  over keep-alive connections, bounded by PREFLIGHT_LOAD_REQUESTS (200, at most 5000),
  PREFLIGHT_LOAD_CONCURRENCY (10, at most 100) and PREFLIGHT_LOAD_SECONDS (30, at most 120, and
  within the check's deadline). Redirects are not followed. A success needs a 2xx answer
  (or a status listed in PREFLIGHT_LOAD_OK_STATUSES, for a URL that is meant to redirect):
  a 3xx, 4xx, 5xx or a failed request is an error, so a target that answers every request
  with a 302 to its login page fails instead of passing with "0% errors". One asyncio event
  loop drives the connections through h11 (the HTTP/1.1 engine inside httpx): httpx's own
  per-request work is several times larger, and a load generator's client-side time ends up
  in the latencies it reports (tests/perf/bench_load_test.py measures this).

CHECK.active is False on purpose: the runner skips an active check entirely without --active,
which would also skip the report mode. The live mode's opt-in is enforced here instead: it
runs only with ctx.allow_active, and answers SKIPPED naming the opt-in otherwise.

Percentiles are exact over the recorded latencies (statistics.quantiles, inclusive method:
linear interpolation between closest ranks, as k6 does).

Evidence before a PASS: at least PREFLIGHT_LOAD_MIN_SAMPLES requests (default 100; a p95 of
a handful of requests says little) and an error count (a k6 summary without its
http_req_failed metric has none). Short of either, a run that met the targets is UNKNOWN; a
run that missed them is still a FAIL.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11

from checks import _net
from checks.base import Check, CheckContext, Result, Status, skipped

DEFAULT_P95_MS = 500.0
DEFAULT_ERROR_RATE_PERCENT = 0.0
DEFAULT_MIN_SAMPLES = 100
LIMITS = {  # setting: (default, cap)
    "PREFLIGHT_LOAD_MIN_SAMPLES": (DEFAULT_MIN_SAMPLES, 1_000_000),
    "PREFLIGHT_LOAD_REQUESTS": (200, 5000),
    "PREFLIGHT_LOAD_CONCURRENCY": (10, 100),
    "PREFLIGHT_LOAD_SECONDS": (30, 120),
}
_REQUEST_TIMEOUT_S = 10.0


class LoadReportError(Exception):
    """The load report cannot be read as k6 or Artillery output."""


@dataclass
class LoadStats:
    """What a load run measured (live or from a report)."""

    source: str
    samples: int
    errors: int
    p95_ms: float | None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    requests_per_s: float | None = None
    duration_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    errors_measured: bool = True  # False: the report has no error metric (k6 http_req_failed)

    @property
    def error_rate_percent(self) -> float:
        return 100.0 * self.errors / self.samples if self.samples else 0.0


def percentile(sorted_ms: list[float], p: int) -> float:
    """The p-th percentile (1..99) of sorted values, linear interpolation between ranks."""
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    return statistics.quantiles(sorted_ms, n=100, method="inclusive")[p - 1]


# --- reports -------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def is_success(code: str, also_ok: frozenset[int] = frozenset()) -> bool:
    """A 2xx status code (or one listed in also_ok); redirects, client and server errors and
    transport failures ("Timeout", "ConnectionRefusedError") are not."""
    return code.isdigit() and (200 <= int(code) < 300 or int(code) in also_ok)


def _k6(doc: dict[str, Any], source: str) -> LoadStats:
    metrics = doc["metrics"]

    def values(name: str) -> dict[str, Any]:
        metric = metrics.get(name) or {}
        # handleSummary JSON nests under "values"; --summary-export does not
        return dict(metric.get("values", metric))

    duration = values("http_req_duration")
    errors_measured = "http_req_failed" in metrics
    failed = values("http_req_failed")
    reqs = values("http_reqs")
    # Rate metrics: "passes" counts true values (here: failed requests), "fails" false ones.
    passes, fails = _num(failed.get("passes")), _num(failed.get("fails"))
    count = _num(reqs.get("count"))
    if count is None and passes is not None and fails is not None:
        count = passes + fails
    samples = int(count or 0)
    if passes is not None:
        errors = int(passes)
    else:
        rate = _num(failed.get("rate", failed.get("value"))) or 0.0
        errors = math.ceil(rate * samples)
    return LoadStats(
        source=source,
        samples=samples,
        errors=errors,
        p95_ms=_num(duration.get("p(95)")),
        p50_ms=_num(duration.get("med", duration.get("p(50)"))),
        p99_ms=_num(duration.get("p(99)")),
        max_ms=_num(duration.get("max")),
        requests_per_s=_num(reqs.get("rate")),
        extra={"tool": "k6"},
        errors_measured=errors_measured,
    )


def _artillery(doc: dict[str, Any], source: str) -> LoadStats:
    aggregate = doc["aggregate"]
    counters = aggregate.get("counters") or {}
    summaries = aggregate.get("summaries") or {}
    if "http.response_time" in summaries or "http.requests" in counters:
        times = summaries.get("http.response_time") or {}
        codes = {
            k.removeprefix("http.codes."): int(v)
            for k, v in counters.items()
            if k.startswith("http.codes.")
        }
        transport = sum(int(v) for k, v in counters.items() if k.startswith("errors."))
        bad = sum(v for code, v in codes.items() if not is_success(code))
        samples = int(counters.get("http.requests") or (sum(codes.values()) + transport))
        rates = aggregate.get("rates") or {}
        return LoadStats(
            source=source,
            samples=samples,
            errors=bad + transport,
            p95_ms=_num(times.get("p95")),
            p50_ms=_num(times.get("p50", times.get("median"))),
            p99_ms=_num(times.get("p99")),
            max_ms=_num(times.get("max")),
            requests_per_s=_num(rates.get("http.request_rate")),
            extra={"tool": "artillery", "status_codes": codes, "transport_errors": transport},
        )
    # Artillery 1.x: aggregate.latency, codes, errors
    latency = aggregate.get("latency") or {}
    codes = {str(k): int(v) for k, v in (aggregate.get("codes") or {}).items()}
    transport = sum(int(v) for v in (aggregate.get("errors") or {}).values())
    bad = sum(v for code, v in codes.items() if not is_success(code))
    samples = int(aggregate.get("requestsCompleted") or sum(codes.values())) + transport
    return LoadStats(
        source=source,
        samples=samples,
        errors=bad + transport,
        p95_ms=_num(latency.get("p95")),
        p50_ms=_num(latency.get("median")),
        p99_ms=_num(latency.get("p99")),
        max_ms=_num(latency.get("max")),
        requests_per_s=_num((aggregate.get("rps") or {}).get("mean")),
        extra={"tool": "artillery", "status_codes": codes, "transport_errors": transport},
    )


def read_report(path: Path) -> LoadStats:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise LoadReportError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise LoadReportError(f"{path} is not JSON") from None
    if not isinstance(doc, dict):
        raise LoadReportError(f"{path} is not a k6 or Artillery report")
    try:
        if isinstance(doc.get("metrics"), dict):
            return _k6(doc, str(path))
        if isinstance(doc.get("aggregate"), dict):
            return _artillery(doc, str(path))
    except (TypeError, ValueError, AttributeError) as exc:
        raise LoadReportError(f"{path}: unexpected report shape ({exc})") from None
    raise LoadReportError(
        f"{path} is neither a k6 summary (metrics) nor an Artillery report (aggregate)"
    )


# --- live ----------------------------------------------------------------------------------


def _bounded(ctx: CheckContext, name: str) -> int:
    default, cap = LIMITS[name]
    value = ctx.setting(name)
    try:
        number = int(value) if value is not None else default
    except ValueError:
        number = default
    return max(1, min(number, cap))


_END_OF_MESSAGE = h11.EndOfMessage()  # immutable: one for every request


class _Connection:
    """One keep-alive HTTP/1.1 connection, spoken through h11 (httpx's own HTTP/1.1 engine)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.reusable = True

    @classmethod
    async def open(cls, target: _Target) -> _Connection:
        reader, writer = await asyncio.open_connection(
            target.host,
            target.port,
            ssl=target.ssl,
            server_hostname=target.host if target.ssl else None,
        )
        return cls(reader, writer)

    async def get(self, target: _Target) -> int:
        """Send one GET and read the whole answer; the status code."""
        send = self.protocol.send
        self.writer.write(send(target.request))
        self.writer.write(send(_END_OF_MESSAGE))
        await self.writer.drain()
        status = 0
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                self.protocol.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                # PAUSED cannot happen after a complete request; never spin on it
                raise ConnectionResetError("connection closed before the answer ended")
        if self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE:
            self.protocol.start_next_cycle()
        else:  # the server closes after this answer
            self.reusable = False
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    ssl: ssl.SSLContext | None
    request: h11.Request  # built (and validated) once: events are immutable


def _target(ctx: CheckContext, url: str) -> _Target:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    default_port = port == (443 if secure else 80)
    host_header = host if default_port else f"{host}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(
        host=host,
        port=port,
        ssl=_net.ssl_context(ctx) if secure else None,
        request=h11.Request(
            method="GET",
            target=path,
            headers=[("Host", host_header), ("User-Agent", _net.USER_AGENT), ("Accept", "*/*")],
        ),
    )


async def _load(
    target: _Target, requests: int, concurrency: int, seconds: float
) -> tuple[list[float], Counter[str], float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + seconds
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    tickets = iter(range(requests))

    async def worker() -> None:
        conn: _Connection | None = None
        try:
            while next(tickets, None) is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(min(_REQUEST_TIMEOUT_S, remaining)):
                        if conn is None:
                            conn = await _Connection.open(target)
                        # like k6's http_req_duration: connection set-up is not counted
                        t0 = time.perf_counter()
                        status = await conn.get(target)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    outcomes[str(status)] += 1
                    if not conn.reusable:
                        conn.close()
                        conn = None
                except (OSError, TimeoutError, h11.ProtocolError, ssl.SSLError) as exc:
                    outcomes[
                        "Timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                    ] += 1
                    if conn is not None:
                        conn.close()
                        conn = None
        finally:
            if conn is not None:
                conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, outcomes, loop.time() - started


def ok_statuses(ctx: CheckContext) -> frozenset[int]:
    """PREFLIGHT_LOAD_OK_STATUSES: non-2xx status codes the URL is expected to answer."""
    text = ctx.setting("PREFLIGHT_LOAD_OK_STATUSES") or ""
    return frozenset(int(p) for p in (q.strip() for q in text.split(",")) if p.isdigit())


def run_load(
    ctx: CheckContext, url: str, requests: int, concurrency: int, seconds: float
) -> LoadStats:
    """GET url `requests` times over `concurrency` keep-alive connections, stopping at
    `seconds`. One event loop drives every connection: a Python load generator spends its
    time on the client side, and threads fighting for the GIL would add that time to the
    latencies it measures (see tests/perf/bench_load_test.py)."""
    latencies, outcomes, duration = asyncio.run(
        _load(_target(ctx, url), requests, concurrency, seconds)
    )
    samples = sum(outcomes.values())
    also_ok = ok_statuses(ctx)
    errors = sum(n for s, n in outcomes.items() if not is_success(s, also_ok))
    ordered = sorted(latencies)
    return LoadStats(
        source=url,
        samples=samples,
        errors=errors,
        p95_ms=round(percentile(ordered, 95), 2) if ordered else None,
        p50_ms=round(percentile(ordered, 50), 2) if ordered else None,
        p99_ms=round(percentile(ordered, 99), 2) if ordered else None,
        max_ms=round(ordered[-1], 2) if ordered else None,
        requests_per_s=round(samples / duration, 1) if duration > 0 else None,
        duration_s=round(duration, 2),
        extra={
            "tool": "preflight",
            "status_codes": dict(outcomes),
            "concurrency": concurrency,
            "requests_planned": requests,
            "seconds_limit": seconds,
            "ok_statuses": sorted(also_ok),
        },
    )


# --- verdict -------------------------------------------------------------------------------


def _targets(ctx: CheckContext) -> tuple[float, float]:
    targets = ctx.targets
    p95 = getattr(targets, "p95_ms", None) if targets is not None else None
    errors = getattr(targets, "error_rate_percent", None) if targets is not None else None
    return (
        float(p95) if p95 is not None else DEFAULT_P95_MS,
        float(errors) if errors is not None else DEFAULT_ERROR_RATE_PERCENT,
    )


def verdict(stats: LoadStats, ctx: CheckContext) -> Result:
    p95_target, error_target = _targets(ctx)
    evidence = {
        "source": stats.source,
        "samples": stats.samples,
        "errors": stats.errors,
        "error_rate_percent": round(stats.error_rate_percent, 3),
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "max_ms": stats.max_ms,
        "requests_per_s": stats.requests_per_s,
        "duration_s": stats.duration_s,
        "target_p95_ms": p95_target,
        "target_error_rate_percent": error_target,
        **stats.extra,
    }
    if stats.samples == 0:
        return Result(
            Status.UNKNOWN,
            f"the load run of {stats.source} has no request samples",
            evidence,
            "Run the load test again (it must send requests), and check its target URL.",
        )
    problems = []
    if stats.p95_ms is not None and stats.p95_ms >= p95_target:
        problems.append(f"p95 {stats.p95_ms:g} ms is not under {p95_target:g} ms")
    if stats.error_rate_percent > error_target:
        problems.append(
            f"{stats.errors} of {stats.samples} requests failed "
            f"({stats.error_rate_percent:.2f}%, target {error_target:g}%)" + _redirect_note(stats)
        )
    name = stats.source
    if problems:
        return Result(
            Status.FAIL,
            f"load test of {name}: " + "; ".join(problems),
            evidence,
            "Find the slow or failing endpoints (APM, slow-query log, db_query_plans), fix "
            "them, and re-run the load test before deploying. A redirect to a login page "
            "means the URL needs a public (health) endpoint or a token.",
            observations=stats.samples,
        )
    if stats.p95_ms is None:
        return Result(
            Status.UNKNOWN,
            f"the load run of {stats.source} reports no response times",
            evidence,
            "Use a report with http_req_duration (k6) or http.response_time (Artillery).",
            observations=stats.samples,
        )
    if not stats.errors_measured:
        return Result(
            Status.UNKNOWN,
            f"the load run of {name} has no http_req_failed metric: its error rate is unknown "
            f"(p95 {stats.p95_ms:g} ms over {stats.samples} requests)",
            evidence,
            "Export the full k6 summary (`k6 run --summary-export=summary.json`, or "
            "handleSummary with data.metrics), which includes http_req_failed.",
            observations=stats.samples,
        )
    min_samples = _bounded(ctx, "PREFLIGHT_LOAD_MIN_SAMPLES")
    evidence["min_samples"] = min_samples
    if stats.samples < min_samples:
        return Result(
            Status.UNKNOWN,
            f"load test of {name}: only {stats.samples} requests, fewer than the "
            f"{min_samples} needed to judge p95 and the error rate",
            evidence,
            f"Run at least {min_samples} requests (PREFLIGHT_LOAD_REQUESTS, or a longer k6/"
            "Artillery run); PREFLIGHT_LOAD_MIN_SAMPLES sets the minimum.",
            observations=stats.samples,
        )
    return Result(
        Status.PASS,
        f"load test of {name}: p95 {stats.p95_ms:g} ms under {p95_target:g} ms and "
        f"{stats.error_rate_percent:g}% errors over {stats.samples} requests",
        evidence,
        observations=stats.samples,
    )


def _redirect_note(stats: LoadStats) -> str:
    codes = stats.extra.get("status_codes") or {}
    redirects = sum(n for code, n in codes.items() if str(code).startswith("3"))
    if not redirects:
        return ""
    return (
        f", {redirects} of them redirects (3xx: not a success unless "
        "PREFLIGHT_LOAD_OK_STATUSES lists them)"
    )


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def _display_url(url: str) -> str:
    """scheme://host:port/path: no credentials, no query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"


def run(ctx: CheckContext) -> Result:
    url = ctx.setting("PREFLIGHT_LOAD_URL")
    report = ctx.setting("PREFLIGHT_LOAD_REPORT")
    if url and ctx.allow_active:
        if not _is_http_url(url):
            return Result(
                Status.ERROR,
                "PREFLIGHT_LOAD_URL is not an http(s) URL",
                remediation="Set PREFLIGHT_LOAD_URL to the URL to load, e.g. "
                "https://tpx.power100.io/api/health.",
            )
        seconds = min(float(_bounded(ctx, "PREFLIGHT_LOAD_SECONDS")), max(ctx.timeout_s - 3, 1))
        stats = run_load(
            ctx,
            url,
            _bounded(ctx, "PREFLIGHT_LOAD_REQUESTS"),
            _bounded(ctx, "PREFLIGHT_LOAD_CONCURRENCY"),
            seconds,
        )
        stats.source = _display_url(url)
        return verdict(stats, ctx)
    if report:
        try:
            stats = read_report(Path(report).expanduser())
        except LoadReportError as exc:
            return Result(
                Status.ERROR,
                f"cannot use the load test report: {exc}",
                {"report": report},
                "Point PREFLIGHT_LOAD_REPORT at `k6 run --summary-export=summary.json` output or "
                "`artillery run --output report.json` output.",
            )
        return verdict(stats, ctx)
    if url:
        return Result(
            Status.SKIPPED,
            f"live load test of {_display_url(url)} is opt-in: it sends traffic",
            {"active": True, "url": _display_url(url)},
            "Run it explicitly with --active (CLI) or `check load_test active` (Slack), or set "
            "PREFLIGHT_LOAD_REPORT to a k6/Artillery report.",
        )
    return skipped("PREFLIGHT_LOAD_REPORT", "PREFLIGHT_LOAD_URL")


CHECK = Check(
    id="load_test",
    title="Load test: p95 under 500 ms, 0% errors",
    section="Performance Requirements",
    run=run,
    settings=(
        "PREFLIGHT_LOAD_REPORT",
        "PREFLIGHT_LOAD_URL",
        "PREFLIGHT_LOAD_REQUESTS",
        "PREFLIGHT_LOAD_CONCURRENCY",
        "PREFLIGHT_LOAD_SECONDS",
        "PREFLIGHT_LOAD_MIN_SAMPLES",
        "PREFLIGHT_LOAD_OK_STATUSES",
    ),
    severity="high",
    blocking=True,
    active=False,  # the live mode's opt-in is enforced in run(); see the module docstring
    timeout_s=130.0,
    max_age_s=24 * 3600,
    description=("The checklist's load targets: p95 under 500 ms and 0% errors"),
    criteria=(
        "From `PREFLIGHT_LOAD_REPORT` (k6 `--summary-export`/`handleSummary` JSON or "
        "Artillery `--output` JSON; no opt-in) or a live run against `PREFLIGHT_LOAD_URL` "
        "(opt-in with `--active`, else SKIPPED): `PREFLIGHT_LOAD_REQUESTS` (default 200, max "
        "5000), `PREFLIGHT_LOAD_CONCURRENCY` (default 10, max 100), `PREFLIGHT_LOAD_SECONDS` "
        "(default 30, max 120). A success needs a 2xx (or a status in "
        "`PREFLIGHT_LOAD_OK_STATUSES`, for a URL meant to redirect): 3xx, 4xx, 5xx and failed "
        "requests are errors. FAIL: p95 at or above the target or an error rate above it "
        "(targets from the checklist: `Targets.p95_ms`, `error_rate_percent`), naming "
        "redirects. PASS: targets met over at least `PREFLIGHT_LOAD_MIN_SAMPLES` requests "
        "(default 100) with an error count (observations: samples). UNKNOWN: no samples, no "
        "response times, a k6 summary without `http_req_failed`, or fewer samples than the "
        "minimum. ERROR: unreadable report"
    ),
    anchor="k6 thresholds (http_req_duration p(95), http_req_failed)",
)
