"""api_health against a local API: token auth, open endpoints, non-JSON, slow answers."""

from __future__ import annotations

import json

import pytest

from checks import api_health
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import api_app, refused_url

TOKEN = "tok-3f9a1c7e5b2d4a6f8e0c"
PATH = "/api/partner-portal/leads/stats"


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(api_health.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _env(url: str, **extra: str) -> dict[str, str]:
    return {"PREFLIGHT_API_URL": url, "PREFLIGHT_API_TOKEN": TOKEN, **extra}


def test_pass_on_json_with_token_and_401_without(http_app) -> None:
    api = http_app(api_app(TOKEN))
    result = _run(_env(api.url))
    assert result.status is Status.PASS, result.summary
    assert api.url in result.summary and "200" in result.summary
    assert result.evidence["status"] == 200
    assert result.evidence["status_without_token"] == 401
    assert result.evidence["json"] == "dict"
    # The default health path from the checklist is the one called, with and without token.
    assert [r.path for r in api.requests] == [PATH, PATH]
    assert api.requests[0].header("authorization") == f"Bearer {TOKEN}"
    assert api.requests[1].header("authorization") is None


def test_pass_over_https_trusting_the_ca_bundle(http_app, ca_bundle) -> None:
    api = http_app(api_app(TOKEN, "forbidden_json"), tls=True)
    result = _run(_env(api.url, PREFLIGHT_CA_BUNDLE=ca_bundle))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["status_without_token"] == 403


def test_custom_path_is_used(http_app) -> None:
    api = http_app(api_app(TOKEN))
    result = _run(_env(api.url + "/", PREFLIGHT_API_HEALTH_PATH="healthz"))
    assert result.status is Status.PASS
    assert api.requests[0].path == "/healthz"


def test_fail_when_the_endpoint_answers_without_a_token(http_app) -> None:
    api = http_app(api_app(TOKEN, "open"))
    result = _run(_env(api.url))
    assert result.status is Status.FAIL
    assert "without a token" in result.summary
    assert "authentication" in result.remediation


def test_fail_on_a_non_json_body(http_app) -> None:
    api = http_app(api_app(TOKEN, "non_json"))
    result = _run(_env(api.url))
    assert result.status is Status.FAIL
    assert "not with JSON" in result.summary
    assert result.evidence["content_type"] == "text/html"


def test_fail_on_a_server_error(http_app) -> None:
    api = http_app(api_app(TOKEN, "error"))
    result = _run(_env(api.url))
    assert result.status is Status.FAIL
    assert "answers 500 with the token" in result.summary


def test_fail_with_a_wrong_token(http_app) -> None:
    api = http_app(api_app("the-real-token-value"))
    result = _run(_env(api.url))
    assert result.status is Status.FAIL
    assert "answers 401 with the token" in result.summary


def test_warn_when_slower_than_the_latency_budget(http_app) -> None:
    api = http_app(api_app(TOKEN), delay_s=0.2)
    result = _run(_env(api.url, PREFLIGHT_API_LATENCY_MS="50"))
    assert result.status is Status.WARN
    assert "budget 50 ms" in result.summary
    assert result.evidence["latency_ms"] >= 200


def test_error_when_nothing_listens() -> None:
    result = _run(_env(refused_url()), timeout_s=2)
    assert result.status is Status.ERROR
    assert "connection refused" in result.summary


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "PREFLIGHT_API_URL"),
        ({"PREFLIGHT_API_URL": "http://127.0.0.1:9"}, "PREFLIGHT_API_TOKEN"),
        ({"PREFLIGHT_API_URL": "  ", "PREFLIGHT_API_TOKEN": TOKEN}, "PREFLIGHT_API_URL"),
    ],
)
def test_skipped_without_url_or_token(env: dict[str, str], missing: str) -> None:
    result = _run(env)
    assert result.status is Status.SKIPPED
    assert result.evidence["missing_settings"] == [missing]


@pytest.mark.parametrize("mode", ["auth", "open", "non_json", "error"])
def test_the_token_never_appears_in_the_result(http_app, mode: str) -> None:
    api = http_app(api_app(TOKEN, mode))
    result = _run(_env(api.url))
    assert TOKEN not in json.dumps(result.to_dict())
