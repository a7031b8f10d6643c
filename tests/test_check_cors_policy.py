"""cors_policy against local apps: reflected origins, `*` with credentials, strict lists."""

from __future__ import annotations

import pytest

from checks import cors_policy
from checks._net import origin_of
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import cors_app, refused_url

FOREIGN = cors_policy.FOREIGN_ORIGIN


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(cors_policy.CHECK, CheckContext(env=env, timeout_s=timeout_s))


@pytest.fixture
def frontend(http_app):
    """The frontend: a static site that sends no CORS headers (it needs none)."""
    return http_app(cors_app("none"))


def test_pass_when_the_api_allows_only_the_frontend(http_app, frontend) -> None:
    api = http_app(cors_app("strict", allowed_origin=frontend.url))
    result = _run({"FRONTEND_URL": frontend.url + "/", "PREFLIGHT_API_URL": api.url + "/api"})
    assert result.status is Status.PASS, result.summary
    evidence = result.evidence["targets"][api.url + "/api"]
    assert evidence["frontend_allowed"] is True
    assert evidence["foreign"]["OPTIONS"]["allow_origin"] is None
    assert evidence["frontend"]["OPTIONS"]["allow_origin"] == frontend.url
    # A real preflight was sent, from the foreign origin and from the frontend's.
    preflights = [r for r in api.requests if r.method == "OPTIONS"]
    assert sorted(r.header("origin") for r in preflights) == sorted([FOREIGN, frontend.url])
    assert {r.header("access-control-request-method") for r in preflights} == {"POST"}
    # The frontend itself is same-origin: no CORS headers required there.
    assert "same origin" in result.evidence["targets"][frontend.url + "/"]["frontend_origin"]


@pytest.mark.parametrize(
    ("mode", "phrase"),
    [
        ("echo", "echoes a foreign Origin in Access-Control-Allow-Origin with credentials"),
        ("star_credentials", "Access-Control-Allow-Origin: * with Allow-Credentials: true"),
    ],
)
def test_fail_when_a_foreign_origin_is_allowed(http_app, frontend, mode: str, phrase: str) -> None:
    api = http_app(cors_app(mode))
    result = _run({"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url})
    assert result.status is Status.FAIL
    assert phrase in result.summary
    assert "(GET)" in result.summary and "(OPTIONS)" in result.summary
    assert "never reflect Origin" in result.remediation


def test_fail_when_the_frontend_is_not_allowed(http_app, frontend) -> None:
    api = http_app(cors_app("strict", allowed_origin="https://staging.example.test"))
    result = _run({"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url})
    assert result.status is Status.FAIL
    assert f"does not allow the frontend origin {frontend.url}" in result.summary
    assert result.evidence["targets"][api.url]["frontend_allowed"] is False


def test_warn_on_any_origin_without_credentials(http_app, frontend) -> None:
    api = http_app(cors_app("star"))
    result = _run({"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url})
    assert result.status is Status.WARN
    assert "allows any origin" in result.summary


def test_a_reflecting_frontend_fails_too(http_app) -> None:
    site = http_app(cors_app("echo"))
    result = _run({"FRONTEND_URL": site.url})
    assert result.status is Status.FAIL
    assert list(result.evidence["targets"]) == [site.url]


def test_same_origin_api_needs_no_cors(http_app) -> None:
    site = http_app(cors_app("none"))
    result = _run({"FRONTEND_URL": site.url, "PREFLIGHT_API_URL": site.url + "/api"})
    assert result.status is Status.PASS, result.summary


def test_error_when_refused(frontend) -> None:
    api = refused_url()
    result = _run({"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api}, timeout_s=2)
    assert result.status is Status.ERROR
    assert "connection refused" in result.summary
    assert result.evidence["targets"][frontend.url]["verdict"] == "PASS"


def test_skipped_without_urls() -> None:
    assert _run({}).status is Status.SKIPPED


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://App.Example.test/x?y", "https://app.example.test"),
        ("https://app.example.test:443/", "https://app.example.test"),
        ("http://app.example.test:8080", "http://app.example.test:8080"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin
