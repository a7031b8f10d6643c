"""A bounded burst against one endpoint shows a rate limiter at work (opt-in: sends traffic).

Only a limiter seen limiting is evidence: a 429 after the endpoint has answered some
requests successfully (2xx). Everything else says what was seen and why it proves nothing:
- headers that advertise a limit (`X-RateLimit-Limit: 100000`) on answers that were never
  limited are a promise, not a limiter: UNKNOWN, naming the advertised limit and the burst;
- an endpoint that never answers 2xx (down: 503 + Retry-After on every request; or every
  request refused with 429 from the first) cannot show a limiter at work: UNKNOWN;
- 503 after successes (nginx `limit_req`'s default status, or an overloaded server): WARN;
- all requests answered 2xx without a 429 or limit headers: FAIL.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from checks._net import Deadline, describe_error, http_client, origin_of
from checks.api_health import health_url
from checks.base import Check, CheckContext, Result, Status, skipped

DEFAULT_REQUESTS = 50
DEFAULT_SECONDS = 10.0
MAX_REQUESTS = 500
MAX_SECONDS = 60.0
WORKERS = 10  # enough parallelism to look like a burst, few enough to stay polite


_LIMIT_IN_FIELD = re.compile(r"(?:^|[;,\s])limit=(\d+)")  # `RateLimit: limit=100, ...`
_LEADING_NUMBER = re.compile(r"^\s*(\d+)")  # `X-RateLimit-Limit: 100`, `100;w=60`


def advertised_limit(headers: dict[str, str]) -> int | None:
    """The request limit the headers advertise (the smallest, when several), or None."""
    limits: list[int] = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("ratelimit-limit", "x-ratelimit-limit", "ratelimit-policy"):
            match = _LEADING_NUMBER.match(value)
        elif lowered == "ratelimit":
            match = _LIMIT_IN_FIELD.search(value)
        else:
            continue
        if match:
            limits.append(int(match.group(1)))
    return min(limits) if limits else None


class BurstSettingError(Exception):
    """PREFLIGHT_RATE_LIMIT_REQUESTS or _SECONDS is not a positive number."""


def limit_headers(headers: httpx.Headers) -> dict[str, str]:
    """Retry-After, RateLimit, RateLimit-* and X-RateLimit-* headers of a response."""
    found: dict[str, str] = {}
    for raw_name, raw_value in headers.raw:  # raw keeps the server's spelling of names
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        lowered = name.lower()
        if lowered in ("retry-after", "ratelimit", "ratelimit-policy") or lowered.startswith(
            ("ratelimit-", "x-ratelimit-")
        ):
            found[name] = value
    return found


def _number(ctx: CheckContext, name: str, default: float, cap: float) -> float:
    text = ctx.setting(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise BurstSettingError(f"{name}={text!r} is not a positive number")
    return min(value, cap)


class _Burst:
    """Sends up to `count` requests within `seconds`, stopping at the first 429."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str]) -> None:
        self.client = client
        self.url = url
        self.headers = headers
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.first_429: httpx.Response | None = None
        self.advertised: dict[str, str] = {}  # limit headers seen on non-429 answers
        self.error: str | None = None
        self.cut_off = 0  # requests still unanswered when the window closed

    def _take(self, count: int) -> bool:
        with self.lock:
            if self.stop.is_set() or self.sent >= count:
                return False
            self.sent += 1
            return True

    def worker(self, count: int, end: float) -> None:
        while self._take(count):
            left = end - time.monotonic()
            if left <= 0:
                self.stop.set()
                with self.lock:
                    self.sent -= 1  # taken but never sent
                return
            try:
                response = self.client.get(self.url, headers=self.headers, timeout=left)
            except httpx.TimeoutException as exc:
                self.stop.set()
                with self.lock:
                    if time.monotonic() >= end - 0.05:
                        self.cut_off += 1  # the window closed, not necessarily a fault
                    else:
                        self.error = self.error or describe_error(exc)
                return
            except httpx.HTTPError as exc:
                self.stop.set()
                with self.lock:
                    self.error = self.error or describe_error(exc)
                return
            with self.lock:
                self.statuses[response.status_code] += 1
                if response.status_code == 429:
                    self.first_429 = self.first_429 or response
                    self.stop.set()
                elif not self.advertised:
                    self.advertised = limit_headers(response.headers)

    def run(self, count: int, seconds: float) -> None:
        end = time.monotonic() + seconds
        with ThreadPoolExecutor(max_workers=min(WORKERS, count)) as pool:
            for _ in range(min(WORKERS, count)):
                pool.submit(self.worker, count, end)


def run(ctx: CheckContext) -> Result:
    url = ctx.setting("PREFLIGHT_RATE_LIMIT_URL") or health_url(ctx)
    if url is None:
        return skipped("PREFLIGHT_RATE_LIMIT_URL", "PREFLIGHT_API_URL")
    try:
        count = int(_number(ctx, "PREFLIGHT_RATE_LIMIT_REQUESTS", DEFAULT_REQUESTS, MAX_REQUESTS))
        seconds = _number(ctx, "PREFLIGHT_RATE_LIMIT_SECONDS", DEFAULT_SECONDS, MAX_SECONDS)
    except BurstSettingError as exc:
        return Result(Status.ERROR, str(exc), remediation="Set it to a positive number.")
    deadline = Deadline.for_check(ctx)
    headers: dict[str, str] = {}
    token = ctx.setting("PREFLIGHT_API_TOKEN")
    api = ctx.setting("PREFLIGHT_API_URL")
    # The token goes only to the API it belongs to, never to another configured host.
    if token and api and origin_of(url) == origin_of(api):
        headers["Authorization"] = f"Bearer {token}"

    with http_client(ctx, limits=httpx.Limits(max_connections=WORKERS)) as client:
        burst = _Burst(client, url, headers)
        # Measured from now: building the client already used part of the check's time.
        window = round(min(seconds, deadline.left()), 2)
        started = time.monotonic()
        burst.run(count, window)
        elapsed = time.monotonic() - started

    evidence: dict[str, object] = {
        "url": url,
        "planned": f"{count} requests within {window:g} s",
        "sent": burst.sent,
        "elapsed_s": round(elapsed, 2),
        "statuses": {str(k): v for k, v in sorted(burst.statuses.items())},
    }
    answered = sum(burst.statuses.values())
    ok = sum(n for code, n in burst.statuses.items() if 200 <= code < 300)
    codes = ", ".join(f"{n}× {code}" for code, n in sorted(burst.statuses.items()))
    if burst.first_429 is not None and ok:
        seen = limit_headers(burst.first_429.headers)
        evidence["limit_headers"] = seen
        if seen:
            return Result(
                Status.PASS,
                f"{url} answered 429 after {ok} successful of {answered} requests, with "
                f"{', '.join(sorted(seen))}",
                evidence=evidence,
                observations=answered,
            )
        return Result(
            Status.WARN,
            f"{url} answered 429 after {ok} successful of {answered} requests but without "
            "Retry-After or RateLimit headers",
            evidence=evidence,
            remediation="Send Retry-After (and RateLimit-* headers) with 429 so clients "
            "know when to retry (express-rate-limit: standardHeaders: true).",
            observations=answered,
        )
    if burst.first_429 is not None:
        evidence["limit_headers"] = limit_headers(burst.first_429.headers)
        return Result(
            Status.UNKNOWN,
            f"{url} answered 429 before any request succeeded ({codes}): that is an endpoint "
            "refusing everything, or a limit already used up, not a limiter seen at work",
            evidence=evidence,
            remediation="Point PREFLIGHT_RATE_LIMIT_URL at an endpoint that answers 2xx, and "
            "run the check again once its limit has reset.",
            observations=answered,
        )
    if burst.cut_off:
        evidence["unanswered_at_window_end"] = burst.cut_off
    if burst.error is None and burst.cut_off and not burst.statuses:
        burst.error = f"no answer within {window:g} s"
    if burst.error is not None:
        return Result(
            Status.ERROR,
            f"burst against {url} stopped after {burst.sent} requests: {burst.error}",
            evidence={**evidence, "error": burst.error},
            remediation="Check that the endpoint is up; a limiter that drops connections "
            "instead of answering 429 also ends up here.",
        )
    if ok == 0:
        return Result(
            Status.UNKNOWN,
            f"{url} answered none of {answered} requests successfully ({codes}): the endpoint "
            "is down or refusing, so no rate limiter could be observed",
            evidence=evidence,
            remediation="Make the endpoint answer (api_health), or point "
            "PREFLIGHT_RATE_LIMIT_URL at one that does, then run the burst again.",
            observations=answered,
        )
    unavailable = burst.statuses.get(503, 0)
    if unavailable:
        return Result(
            Status.WARN,
            f"{url} answered 503 (not 429) to {unavailable} of {answered} requests after "
            f"{ok} successes: nginx limit_req's default status, or an overloaded server",
            evidence=evidence,
            remediation="If this is the limiter, make it answer 429 (nginx: limit_req_status "
            "429); if not, find out why the endpoint fails under a small burst.",
            observations=answered,
        )
    if burst.advertised:
        evidence["limit_headers"] = burst.advertised
        limit = advertised_limit(burst.advertised)
        evidence["advertised_limit"] = limit
        if limit is not None and ok > limit:
            claim = (
                f"advertises a limit of {limit} yet answered {ok} requests in {elapsed:.1f} s "
                "without a 429 (unless its window is shorter than the burst, it does not "
                "enforce it)"
            )
        else:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(burst.advertised.items()))
            claim = (
                f"advertises a limit ({shown}) that {answered} requests did not reach: a "
                "header is a promise, not a limiter seen limiting"
            )
        return Result(
            Status.UNKNOWN,
            f"{url} {claim}",
            evidence=evidence,
            remediation="Raise PREFLIGHT_RATE_LIMIT_REQUESTS above the advertised limit (max "
            f"{MAX_REQUESTS}), or point PREFLIGHT_RATE_LIMIT_URL at a stricter endpoint "
            "(login), so a 429 can actually be seen.",
            observations=answered,
        )
    return Result(
        Status.FAIL,
        f"{url} answered all {answered} requests in {elapsed:.1f} s without a 429 or "
        "rate-limit headers",
        evidence=evidence,
        remediation="Configure rate limiting on every endpoint (e.g. express-rate-limit "
        "with standardHeaders: true, or a WAF/load balancer rule).",
        observations=answered,
    )


CHECK = Check(
    id="rate_limiting",
    title="Rate limiting answers a burst with 429",
    section="Security Requirements",
    run=run,
    settings=(
        "PREFLIGHT_RATE_LIMIT_URL",
        "PREFLIGHT_API_URL",
        "PREFLIGHT_API_HEALTH_PATH",
        "PREFLIGHT_RATE_LIMIT_REQUESTS",
        "PREFLIGHT_RATE_LIMIT_SECONDS",
        "PREFLIGHT_API_TOKEN",
    ),
    severity="high",
    blocking=True,
    active=True,
    timeout_s=MAX_SECONDS + 10,
    max_age_s=24 * 3600,
    description=("A bounded burst against one endpoint meets a rate limiter (active: opt-in)"),
    criteria=(
        "Up to `PREFLIGHT_RATE_LIMIT_REQUESTS` (default 50, max 500) GETs within "
        "`PREFLIGHT_RATE_LIMIT_SECONDS` (default 10, max 60) to `PREFLIGHT_RATE_LIMIT_URL` "
        "(default: the `api_health` URL; `PREFLIGHT_API_TOKEN` sent only to the API's own "
        "origin), stopping at the first 429. PASS: a 429 after at least one 2xx, with "
        "`Retry-After` or `RateLimit`/`RateLimit-*`/`X-RateLimit-*` headers (observations: "
        "requests answered). WARN: such a 429 without them; 503 after successes (nginx "
        "`limit_req`'s default status, or overload). UNKNOWN: limit headers advertising a "
        "limit the burst did not reach, or exceeded without a 429 (a header is a promise, not "
        "a limiter seen limiting); no 2xx at all (the endpoint is down, e.g. 503 + "
        "Retry-After on every request); 429 from the first request. FAIL: every request "
        "answered 2xx without a 429 or limit headers. ERROR: connection failures"
    ),
    anchor="RFC 6585 (429 Too Many Requests) and the IETF RateLimit header fields draft",
)
