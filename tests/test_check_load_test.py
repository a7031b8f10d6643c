"""load_test: k6/Artillery reports, and a bounded live run against a local server."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.model import Targets
from checks import load_test
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.load_http import LoadServer

FIXTURES = Path(__file__).parent / "fixtures" / "part2" / "load"


def report(name: str) -> CheckContext:
    return CheckContext(env={"PREFLIGHT_LOAD_REPORT": str(FIXTURES / name)})


def test_skipped_without_settings() -> None:
    result = run_one(load_test.CHECK, CheckContext(env={}))
    assert result.status is Status.SKIPPED
    assert "PREFLIGHT_LOAD_REPORT" in result.summary


def test_report_mode_needs_no_opt_in() -> None:
    assert load_test.CHECK.active is False
    result = run_one(load_test.CHECK, report("k6_summary_pass.json"))
    assert result.status is Status.PASS


@pytest.mark.parametrize(
    ("name", "status", "p95", "samples", "errors"),
    [
        ("k6_summary_pass.json", Status.PASS, 312.5, 6000, 0),
        ("k6_summary_slow.json", Status.FAIL, 812.25, 6000, 12),
        ("k6_handle_summary.json", Status.PASS, 190.7, 1500, 0),
        ("artillery_pass.json", Status.PASS, 247.2, 1800, 0),
        ("artillery_errors.json", Status.FAIL, 430.0, 1000, 30),
        ("artillery_v1.json", Status.FAIL, 610.4, 900, 0),
    ],
)
def test_reports(name: str, status: Status, p95: float, samples: int, errors: int) -> None:
    result = run_one(load_test.CHECK, report(name))
    assert result.status is status, result.summary
    assert result.evidence["p95_ms"] == p95
    assert result.evidence["samples"] == samples
    assert result.evidence["errors"] == errors


def test_artillery_errors_named() -> None:
    result = run_one(load_test.CHECK, report("artillery_errors.json"))
    assert "30 of 1000 requests failed (3.00%" in result.summary
    assert result.evidence["status_codes"]["502"] == 20
    assert result.evidence["transport_errors"] == 10


def test_zero_samples_is_unknown() -> None:
    assert run_one(load_test.CHECK, report("k6_no_requests.json")).status is Status.UNKNOWN


@pytest.mark.parametrize("name", ["unknown.json", "missing.json"])
def test_unreadable_report_is_error(name: str) -> None:
    result = run_one(load_test.CHECK, report(name))
    assert result.status is Status.ERROR
    assert "k6" in result.remediation


def test_targets_from_the_checklist() -> None:
    ctx = replace(
        report("k6_summary_slow.json"), targets=Targets(p95_ms=1000, error_rate_percent=1.0)
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.PASS
    assert result.evidence["target_p95_ms"] == 1000


def live(server: LoadServer, allow_active: bool = True, **env: str) -> CheckContext:
    return CheckContext(
        env={"PREFLIGHT_LOAD_URL": server.url("/api/health?token=abc"), **env},
        allow_active=allow_active,
        timeout_s=30,
    )


def test_live_needs_opt_in(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server()
    result = run_one(load_test.CHECK, live(server, allow_active=False))
    assert result.status is Status.SKIPPED
    assert "opt-in" in result.summary and "--active" in result.remediation
    assert server.requests == []


def test_live_fast_server_passes(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server()
    result = run_one(
        load_test.CHECK, live(server, PREFLIGHT_LOAD_REQUESTS="120", PREFLIGHT_LOAD_CONCURRENCY="8")
    )
    assert result.status is Status.PASS, result.summary
    assert len(server.requests) == 120
    assert result.evidence["samples"] == 120
    assert result.evidence["status_codes"] == {"200": 120}
    assert result.evidence["concurrency"] == 8
    assert result.evidence["p50_ms"] <= result.evidence["p95_ms"] <= result.evidence["max_ms"]
    # the query string (which may hold a token) is not shown
    assert result.evidence["source"] == f"http://127.0.0.1:{server.port}/api/health"


def test_live_server_closing_each_connection(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server(close_connections=True)
    result = run_one(load_test.CHECK, live(server, PREFLIGHT_LOAD_REQUESTS="100"))
    assert result.status is Status.PASS, result.evidence
    assert result.evidence["status_codes"] == {"200": 100}


def test_live_errors_fail(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server(fail_every=10)
    result = run_one(load_test.CHECK, live(server, PREFLIGHT_LOAD_REQUESTS="50"))
    assert result.status is Status.FAIL
    assert result.evidence["errors"] == 5
    assert result.evidence["error_rate_percent"] == 10.0


def test_live_slow_server_fails_p95(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server(delay_s=0.03)
    ctx = replace(
        live(server, PREFLIGHT_LOAD_REQUESTS="20", PREFLIGHT_LOAD_CONCURRENCY="4"),
        targets=Targets(p95_ms=10),
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.FAIL
    assert "p95" in result.summary and "not under 10 ms" in result.summary


def test_live_settings_are_capped(load_http_server: Callable[..., LoadServer]) -> None:
    ctx = CheckContext(
        env={
            "PREFLIGHT_LOAD_REQUESTS": "999999",
            "PREFLIGHT_LOAD_CONCURRENCY": "5000",
            "PREFLIGHT_LOAD_SECONDS": "86400",
        }
    )
    assert load_test._bounded(ctx, "PREFLIGHT_LOAD_REQUESTS") == 5000
    assert load_test._bounded(ctx, "PREFLIGHT_LOAD_CONCURRENCY") == 100
    assert load_test._bounded(ctx, "PREFLIGHT_LOAD_SECONDS") == 120
    assert load_test._bounded(CheckContext(env={}), "PREFLIGHT_LOAD_REQUESTS") == 200


def test_live_stops_at_the_time_limit(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server(delay_s=0.2)
    ctx = live(
        server,
        PREFLIGHT_LOAD_REQUESTS="5000",
        PREFLIGHT_LOAD_CONCURRENCY="2",
        PREFLIGHT_LOAD_SECONDS="1",
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.evidence["samples"] < 20  # far fewer than asked: the wall-time bound held
    assert result.evidence["seconds_limit"] == 1


def test_live_unreachable_fails_with_every_request_an_error() -> None:
    from tests.support.pg import free_port

    ctx = CheckContext(
        env={
            "PREFLIGHT_LOAD_URL": f"http://127.0.0.1:{free_port()}/",
            "PREFLIGHT_LOAD_REQUESTS": "5",
        },
        allow_active=True,
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.FAIL
    assert result.evidence["errors"] == 5
    assert result.evidence["status_codes"] == {"ConnectionRefusedError": 5}
    assert result.evidence["p95_ms"] is None
    assert "5 of 5 requests failed" in result.summary


def test_live_https_with_the_ca_bundle(
    load_https_server: Callable[..., LoadServer], load_ca_bundle: str
) -> None:
    server = load_https_server()
    ctx = CheckContext(
        env={
            "PREFLIGHT_LOAD_URL": server.url("/", scheme="https", host="localhost"),
            "PREFLIGHT_LOAD_REQUESTS": "20",
            "PREFLIGHT_LOAD_MIN_SAMPLES": "20",
            "PREFLIGHT_CA_BUNDLE": load_ca_bundle,
        },
        allow_active=True,
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.PASS, result.summary
    assert len(server.requests) == 20
    assert server.requests[0].headers["Host"] == f"localhost:{server.port}"


def test_live_https_untrusted_certificate_fails(
    load_https_server: Callable[..., LoadServer],
) -> None:
    server = load_https_server()
    ctx = CheckContext(
        env={
            "PREFLIGHT_LOAD_URL": server.url("/", scheme="https", host="localhost"),
            "PREFLIGHT_LOAD_REQUESTS": "3",
        },
        allow_active=True,
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.FAIL
    assert result.evidence["status_codes"] == {"SSLCertVerificationError": 3}


def test_bad_url_is_error() -> None:
    ctx = CheckContext(env={"PREFLIGHT_LOAD_URL": "ftp://x"}, allow_active=True)
    assert run_one(load_test.CHECK, ctx).status is Status.ERROR


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentile_is_exact(n: int) -> None:
    values = sorted(float((i * 37) % 101) for i in range(n))
    p95 = load_test.percentile(values, 95)
    if n == 1:
        assert p95 == values[0]
    else:
        assert p95 == statistics.quantiles(values, n=100, method="inclusive")[94]
        assert values[0] <= p95 <= values[-1]


# --- no PASS without evidence (issue 10) ----------------------------------------------------


def test_a_target_redirecting_every_request_to_login_fails(
    load_http_server: Callable[..., LoadServer],
) -> None:
    server = load_http_server(status=302)
    result = run_one(load_test.CHECK, live(server, PREFLIGHT_LOAD_REQUESTS="200"))
    assert result.status is Status.FAIL, result.summary
    assert result.evidence["status_codes"] == {"302": 200}
    assert "200 of 200 requests failed (100.00%" in result.summary
    assert "200 of them redirects (3xx" in result.summary
    assert result.observations == 200


def test_expected_redirects_can_be_listed(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server(status=302)
    ctx = live(server, PREFLIGHT_LOAD_REQUESTS="100", PREFLIGHT_LOAD_OK_STATUSES="301, 302")
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.PASS, result.summary
    assert result.evidence["ok_statuses"] == [301, 302]


@pytest.mark.parametrize("status", [201, 202])
def test_any_2xx_is_a_success(load_http_server: Callable[..., LoadServer], status: int) -> None:
    server = load_http_server(status=status)
    result = run_one(load_test.CHECK, live(server, PREFLIGHT_LOAD_REQUESTS="100"))
    assert result.status is Status.PASS, result.summary
    assert result.observations == 100
    assert "over 100 requests" in result.summary


def test_too_few_live_samples_is_unknown(load_http_server: Callable[..., LoadServer]) -> None:
    server = load_http_server()
    result = run_one(load_test.CHECK, live(server, PREFLIGHT_LOAD_REQUESTS="30"))
    assert result.status is Status.UNKNOWN
    assert "only 30 requests, fewer than the 100 needed" in result.summary
    assert result.evidence["min_samples"] == 100


def _k6_report(tmp_path: Path, metrics: dict[str, object]) -> CheckContext:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"metrics": metrics}))
    return CheckContext(env={"PREFLIGHT_LOAD_REPORT": str(path)})


def test_k6_summary_without_http_req_failed_and_one_request_is_unknown(tmp_path: Path) -> None:
    ctx = _k6_report(
        tmp_path,
        {
            "http_req_duration": {"avg": 20.0, "med": 20.0, "max": 20.0, "p(95)": 20.0},
            "http_reqs": {"count": 1, "rate": 1.0},
        },
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.UNKNOWN
    assert "no http_req_failed metric" in result.summary
    assert "--summary-export" in result.remediation


def test_k6_summary_without_http_req_failed_is_unknown_even_when_large(tmp_path: Path) -> None:
    ctx = _k6_report(
        tmp_path,
        {"http_req_duration": {"p(95)": 120.0}, "http_reqs": {"count": 5000, "rate": 80.0}},
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.UNKNOWN
    assert "error rate is unknown" in result.summary


def test_k6_summary_with_too_few_requests_is_unknown(tmp_path: Path) -> None:
    ctx = _k6_report(
        tmp_path,
        {
            "http_req_duration": {"p(95)": 120.0},
            "http_req_failed": {"passes": 0, "fails": 12, "value": 0},
            "http_reqs": {"count": 12, "rate": 1.0},
        },
    )
    result = run_one(load_test.CHECK, ctx)
    assert result.status is Status.UNKNOWN
    assert "only 12 requests" in result.summary
    lowered = replace(ctx, env={**ctx.env, "PREFLIGHT_LOAD_MIN_SAMPLES": "10"})
    assert run_one(load_test.CHECK, lowered).status is Status.PASS


def test_a_failing_small_run_still_fails(tmp_path: Path) -> None:
    ctx = _k6_report(
        tmp_path,
        {
            "http_req_duration": {"p(95)": 2000.0},
            "http_req_failed": {"passes": 1, "fails": 2, "value": 0.33},
            "http_reqs": {"count": 3, "rate": 1.0},
        },
    )
    assert run_one(load_test.CHECK, ctx).status is Status.FAIL


def test_report_pass_names_its_samples() -> None:
    result = run_one(load_test.CHECK, report("k6_summary_pass.json"))
    assert result.status is Status.PASS
    assert result.observations == 6000
    assert "over 6000 requests" in result.summary
