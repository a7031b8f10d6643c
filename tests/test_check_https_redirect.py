"""https_redirect against local HTTP apps that redirect (or not) in various ways."""

from __future__ import annotations

import pytest

from checks import https_redirect
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import headers_app, redirect_app
from tests.support.tls_servers import free_port


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(https_redirect.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _env(port: int, **extra: str) -> dict[str, str]:
    # The HTTPS side is not contacted: only the first hop on plain HTTP is judged.
    return {"FRONTEND_URL": "https://127.0.0.1:8443/app", "PREFLIGHT_HTTP_PORT": str(port), **extra}


@pytest.mark.parametrize("status", [301, 308])
def test_pass_on_a_permanent_redirect_to_https_on_the_same_host(http_app, status: int) -> None:
    app = http_app(redirect_app(status, "https://{host}/"))
    result = _run(_env(app.port))
    assert result.status is Status.PASS, result.summary
    target = f"http://127.0.0.1:{app.port}/"
    assert result.summary == f"{target} redirects with {status} to https://127.0.0.1/"
    assert result.evidence["targets"][target]["status"] == status
    assert [r.path for r in app.requests] == ["/"]  # one request: the first hop only
    assert result.observations == 1


def test_both_hosts_are_checked(http_app) -> None:
    app = http_app(redirect_app(301, "https://{host}/"))
    result = _run(_env(app.port, PREFLIGHT_API_URL="https://localhost:9443"))
    assert result.status is Status.PASS, result.summary
    assert set(result.evidence["targets"]) == {
        f"http://127.0.0.1:{app.port}/",
        f"http://localhost:{app.port}/",
    }


@pytest.mark.parametrize(
    ("app", "phrase"),
    [
        (redirect_app(302, "https://{host}/"), "temporary 302"),
        (redirect_app(307, "https://{host}/"), "temporary 307"),
        (headers_app({}), "answers 200 instead of redirecting"),
        (redirect_app(301, "https://www.example.test/"), "another host (www.example.test)"),
        (redirect_app(301, "http://{host}/login"), "not to HTTPS"),
        (redirect_app(301, "/login"), "not to HTTPS"),
    ],
)
def test_fail_with_what_was_seen(http_app, app, phrase: str) -> None:
    running = http_app(app)
    result = _run(_env(running.port))
    assert result.status is Status.FAIL
    assert phrase in result.summary
    assert "301" in result.remediation


def test_one_bad_host_fails_the_check(http_app) -> None:
    app = http_app(redirect_app(301, "https://127.0.0.1/"))  # right for one host only
    result = _run(_env(app.port, PREFLIGHT_API_URL="https://localhost:9443"))
    assert result.status is Status.FAIL
    assert "(1 of 2 URLs passed)" in result.summary


def test_error_when_nothing_listens_on_the_http_port() -> None:
    result = _run(_env(free_port()), timeout_s=2)
    assert result.status is Status.ERROR
    assert "connection refused" in result.summary


def test_error_on_a_bad_port_setting() -> None:
    result = _run({"FRONTEND_URL": "https://app.example.test", "PREFLIGHT_HTTP_PORT": "eighty"})
    assert result.status is Status.ERROR
    assert "PREFLIGHT_HTTP_PORT" in result.summary


def test_skipped_without_urls() -> None:
    result = _run({"PREFLIGHT_HTTP_PORT": "8080"})
    assert result.status is Status.SKIPPED
    assert result.evidence["missing_settings"] == ["FRONTEND_URL", "PREFLIGHT_API_URL"]


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("https://app.example.test:8443/x?y", 80, "http://app.example.test/"),
        ("https://app.example.test", 8080, "http://app.example.test:8080/"),
        ("app.example.test", 80, "http://app.example.test/"),
    ],
)
def test_plain_url(url: str, port: int, expected: str) -> None:
    assert https_redirect.plain_url(url, port) == expected
