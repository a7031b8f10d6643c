"""api_health against a local API: token auth, open endpoints, non-JSON, slow answers."""

from __future__ import annotations

import json

import pytest

from checks import api_health
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import Reply, Request, api_app, refused_url

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


# --- a 200 whose body says down is not healthy (issue 10) -----------------------------------


def _health_app(body: bytes, content_type: str = "application/json"):
    """200 with body for the token, 401 without: only the body differs between cases."""

    def app(request: Request) -> Reply:
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"Content-Type": "application/json"}, b'{"error":"unauthorized"}')
        return Reply(200, {"Content-Type": content_type}, body)

    return app


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"status":"down"}', "status=down"),
        (b'{"status":"fail","checks":{}}', "status=fail"),
        (b'{"state":"error"}', "state=error"),
        (b'{"healthy":false}', "healthy=false"),
        (b'{"ok":false,"db":"unreachable"}', "ok=false"),
        (b'{"status":"UNHEALTHY"}', "status=UNHEALTHY"),
        (b'{"error":"database unavailable"}', "carries 'error'"),
        (b"null", "JSON null"),
        (b"[]", "a JSON array of 0"),
        (b"{}", "a JSON object"),
        (b'"ok"', 'JSON "ok"'),
    ],
)
def test_a_200_body_that_says_down_or_nothing_fails(http_app, body: bytes, said: str) -> None:
    api = http_app(_health_app(body))
    result = _run(_env(api.url))
    assert result.status is Status.FAIL, result.summary
    assert said in result.summary
    assert result.evidence["status"] == 200


def test_an_html_200_fails(http_app) -> None:
    api = http_app(_health_app(b"<!doctype html><html>Login</html>", "text/html"))
    result = _run(_env(api.url))
    assert result.status is Status.FAIL
    assert "not with JSON (content-type text/html)" in result.summary


def test_a_degraded_body_warns(http_app) -> None:
    api = http_app(_health_app(b'{"status":"degraded"}'))
    result = _run(_env(api.url))
    assert result.status is Status.WARN
    assert "status=degraded" in result.summary


def test_pass_names_the_status_code_and_what_the_body_said(http_app) -> None:
    api = http_app(_health_app(b'{"status":"ok","uptime":12}'))
    result = _run(_env(api.url))
    assert result.status is Status.PASS, result.summary
    assert "answers 200 with JSON (status=ok)" in result.summary
    assert "401 without a token" in result.summary
    assert result.evidence["health_fields"] == {"status": "ok"}
    assert result.observations == 2


def test_pass_on_a_data_endpoint_names_the_body_shape(http_app) -> None:
    api = http_app(api_app(TOKEN))
    result = _run(_env(api.url))
    assert result.status is Status.PASS
    assert "(a JSON object with total, new, contacted)" in result.summary


@pytest.mark.parametrize(
    ("expect", "body", "status", "said"),
    [
        ("status=ok|pass", b'{"status":"pass"}', Status.PASS, "status=pass"),
        ("status=ok", b'{"status":"starting"}', Status.FAIL, "status is starting (expected ok)"),
        ("db.connected=true", b'{"db":{"connected":true}}', Status.PASS, "db.connected=true"),
        (
            "db.connected=true",
            b'{"db":{"connected":false}}',
            Status.FAIL,
            "db.connected is false (expected true)",
        ),
        ("version", b'{"status":"ok"}', Status.FAIL, "version is missing (expected present)"),
        ("version, status=ok", b'{"status":"ok","version":"1.4.2"}', Status.PASS, "version=1.4.2"),
        ("checks.0.status=pass", b'{"checks":[{"status":"pass"}]}', Status.PASS, "checks.0"),
    ],
)
def test_the_expected_shape_is_a_setting(
    http_app, expect: str, body: bytes, status: Status, said: str
) -> None:
    api = http_app(_health_app(body))
    result = _run(_env(api.url, PREFLIGHT_API_HEALTH_EXPECT=expect))
    assert result.status is status, result.summary
    assert said in result.summary


@pytest.mark.parametrize("expect", ["=ok", "db..x=1", " , =x"])
def test_a_bad_expect_setting_is_an_error(expect: str) -> None:
    result = _run(_env("http://127.0.0.1:9", PREFLIGHT_API_HEALTH_EXPECT=expect))
    assert result.status is Status.ERROR
    assert "PREFLIGHT_API_HEALTH_EXPECT" in result.summary
