"""rate_limiting (an opt-in burst) against local apps with and without a rate limiter."""

from __future__ import annotations

import pytest

from checks import rate_limiting
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import RateLimitedApp, Reply, Request, refused_url

TOKEN = "tok-rl-8c1d2e3f4a5b6c7d"


def _run(env: dict[str, str], timeout_s: float = 5.0, active: bool = True) -> Result:
    ctx = CheckContext(env=env, timeout_s=timeout_s, allow_active=active)
    return run_one(rate_limiting.CHECK, ctx)


def test_pass_on_429_with_retry_after_and_the_burst_stops(http_app) -> None:
    limiter = RateLimitedApp(limit=5)
    app = http_app(limiter)
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url + "/api/x"})
    assert result.status is Status.PASS, result.summary
    assert "answered 429 after" in result.summary
    assert "Retry-After" in result.evidence["limit_headers"]
    # Sending stops at the first 429: at most the requests already in flight follow it.
    assert limiter.count <= 5 + rate_limiting.WORKERS
    assert result.evidence["statuses"]["200"] == 5


def test_warn_on_429_without_headers(http_app) -> None:
    app = http_app(RateLimitedApp(limit=3, with_headers=False))
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url})
    assert result.status is Status.WARN
    assert "without Retry-After" in result.summary
    assert "Retry-After" in result.remediation


def test_fail_when_every_request_succeeds(http_app) -> None:
    limiter = RateLimitedApp(limit=10_000)
    app = http_app(limiter)
    env = {"PREFLIGHT_RATE_LIMIT_URL": app.url, "PREFLIGHT_RATE_LIMIT_REQUESTS": "30"}
    result = _run(env)
    assert result.status is Status.FAIL
    assert "answered all 30 requests" in result.summary
    assert limiter.count == 30  # bounded: exactly the configured number
    assert result.evidence["statuses"] == {"200": 30}


def test_headers_advertising_a_limit_not_reached_are_unknown_not_pass(http_app) -> None:
    # The advertised limit was never reached, so nothing was seen limiting: a promise only.
    app = http_app(RateLimitedApp(limit=100, advertise=True))
    env = {"PREFLIGHT_RATE_LIMIT_URL": app.url, "PREFLIGHT_RATE_LIMIT_REQUESTS": "20"}
    result = _run(env)
    assert result.status is Status.UNKNOWN
    assert (
        "advertises a limit" in result.summary and "not a limiter seen limiting" in result.summary
    )
    assert result.evidence["limit_headers"]["RateLimit-Limit"] == "100"
    assert result.evidence["advertised_limit"] == 100
    assert "PREFLIGHT_RATE_LIMIT_REQUESTS" in result.remediation


def test_the_window_bounds_the_burst(http_app) -> None:
    limiter = RateLimitedApp(limit=10_000)
    app = http_app(limiter, delay_s=0.3)
    env = {
        "PREFLIGHT_RATE_LIMIT_URL": app.url,
        "PREFLIGHT_RATE_LIMIT_REQUESTS": "200",
        "PREFLIGHT_RATE_LIMIT_SECONDS": "1",
    }
    result = _run(env)
    assert result.status is Status.FAIL
    assert limiter.count < 200
    assert result.evidence["planned"] == "200 requests within 1 s"


def test_settings_are_capped(http_app) -> None:
    app = http_app(RateLimitedApp(limit=1))  # the second request is already limited
    env = {
        "PREFLIGHT_RATE_LIMIT_URL": app.url,
        "PREFLIGHT_RATE_LIMIT_REQUESTS": "100000",
        "PREFLIGHT_RATE_LIMIT_SECONDS": "3600",
    }
    result = _run(env, timeout_s=120)
    assert result.status is Status.PASS
    assert result.evidence["planned"] == (
        f"{rate_limiting.MAX_REQUESTS} requests within {rate_limiting.MAX_SECONDS:g} s"
    )


def test_token_goes_to_the_api_only(http_app) -> None:
    api = http_app(RateLimitedApp(limit=2))
    result = _run({"PREFLIGHT_API_URL": api.url, "PREFLIGHT_API_TOKEN": TOKEN})
    assert result.status is Status.PASS
    assert api.requests[0].path == "/api/partner-portal/leads/stats"
    assert api.requests[0].header("authorization") == f"Bearer {TOKEN}"

    other = http_app(RateLimitedApp(limit=2))
    env = {
        "PREFLIGHT_API_URL": api.url,
        "PREFLIGHT_API_TOKEN": TOKEN,
        "PREFLIGHT_RATE_LIMIT_URL": other.url + "/login",
    }
    assert _run(env).status is Status.PASS
    assert all(r.header("authorization") is None for r in other.requests)


def test_skipped_unless_active_is_allowed(http_app) -> None:
    app = http_app(RateLimitedApp(limit=2))
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url}, active=False)
    assert result.status is Status.SKIPPED
    assert "opt-in" in result.summary
    assert app.requests == []


def test_skipped_without_a_target() -> None:
    result = _run({})
    assert result.status is Status.SKIPPED
    assert result.evidence["missing_settings"] == ["PREFLIGHT_RATE_LIMIT_URL", "PREFLIGHT_API_URL"]


@pytest.mark.parametrize("name", ["PREFLIGHT_RATE_LIMIT_REQUESTS", "PREFLIGHT_RATE_LIMIT_SECONDS"])
@pytest.mark.parametrize("value", ["many", "0", "-5"])
def test_error_on_bad_numbers(name: str, value: str) -> None:
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": "http://127.0.0.1:9", name: value})
    assert result.status is Status.ERROR
    assert name in result.summary


def test_error_when_refused() -> None:
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": refused_url()}, timeout_s=2)
    assert result.status is Status.ERROR
    assert "connection refused" in result.summary


# --- no PASS without a limiter seen limiting (issue 10) ------------------------------------


def _never_limits_but_advertises(request: Request) -> Reply:
    headers = {"X-RateLimit-Limit": "100000", "X-RateLimit-Remaining": "99999"}
    return Reply(200, headers, b"{}")


def _down(request: Request) -> Reply:
    return Reply(503, {"Retry-After": "120"}, b"<html>maintenance</html>")


def test_an_advertised_limit_of_100000_that_never_limits_is_not_a_pass(http_app) -> None:
    app = http_app(_never_limits_but_advertises)
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url, "PREFLIGHT_RATE_LIMIT_REQUESTS": "30"})
    assert result.status is Status.UNKNOWN, result.summary
    assert "X-RateLimit-Limit: 100000" in result.summary
    assert "30 requests did not reach" in result.summary
    assert result.observations == 30


def test_an_advertised_limit_exceeded_without_429_is_named(http_app) -> None:
    app = http_app(lambda request: Reply(200, {"X-RateLimit-Limit": "10"}, b"{}"))
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url, "PREFLIGHT_RATE_LIMIT_REQUESTS": "30"})
    assert result.status is Status.UNKNOWN
    assert "advertises a limit of 10 yet answered 30 requests" in result.summary


def test_an_api_that_is_down_is_not_a_rate_limiter(http_app) -> None:
    app = http_app(_down)
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url, "PREFLIGHT_RATE_LIMIT_REQUESTS": "20"})
    assert result.status is Status.UNKNOWN, result.summary
    assert "answered none of 20 requests successfully (20× 503)" in result.summary
    assert "down" in result.summary
    assert result.observations == 20


def test_429_from_the_first_request_is_unknown(http_app) -> None:
    app = http_app(RateLimitedApp(limit=0))
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": app.url})
    assert result.status is Status.UNKNOWN
    assert "429 before any request succeeded" in result.summary


def test_503_after_successes_warns(http_app) -> None:
    nginx = RateLimitedApp(limit=5)

    def app(request: Request) -> Reply:
        reply = nginx(request)
        return Reply(503, {}, b"busy") if reply.status == 429 else reply

    served = http_app(app)
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": served.url, "PREFLIGHT_RATE_LIMIT_REQUESTS": "20"})
    assert result.status is Status.WARN
    assert "503 (not 429)" in result.summary and "after 5 successes" in result.summary
    assert "limit_req_status 429" in result.remediation


def test_pass_names_the_requests_it_observed(http_app) -> None:
    result = _run({"PREFLIGHT_RATE_LIMIT_URL": http_app(RateLimitedApp(limit=4)).url})
    assert result.status is Status.PASS
    assert "answered 429 after 4 successful of" in result.summary
    assert result.observations >= 5


@pytest.mark.parametrize(
    ("headers", "limit"),
    [
        ({"X-RateLimit-Limit": "100000"}, 100000),
        ({"RateLimit-Limit": "100", "RateLimit-Policy": "50;w=60"}, 50),
        ({"RateLimit": "limit=10, remaining=9, reset=60"}, 10),
        ({"Retry-After": "60"}, None),
    ],
)
def test_advertised_limit(headers: dict[str, str], limit: int | None) -> None:
    assert rate_limiting.advertised_limit(headers) == limit
