"""cors_policy against local apps: reflected origins, `*` with credentials, strict lists."""

from __future__ import annotations

import pytest

from checks import cors_policy
from checks._net import origin_of
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import Reply, Request, cors_app, refused_url

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
    hostile = cors_policy.hostile_origins(frontend.url)
    assert len(hostile) >= 5 and FOREIGN in hostile and "null" in hostile
    # A real preflight was sent from every hostile origin and from the frontend's.
    preflights = [r for r in api.requests if r.method == "OPTIONS"]
    assert sorted(r.header("origin") for r in preflights) == sorted([*hostile, frontend.url])
    gets = [r for r in api.requests if r.method == "GET"]
    assert len(gets) == len(preflights)
    assert result.observations == len(api.requests) + 2 * len(hostile)  # and the frontend's
    assert f"refuses {len(hostile)} hostile origins" in result.summary
    assert f"({result.observations} requests sent)" in result.summary
    assert {r.header("access-control-request-method") for r in preflights} == {"POST"}
    # The frontend itself is same-origin: no CORS headers required there.
    assert "same origin" in result.evidence["targets"][frontend.url + "/"]["frontend_origin"]


@pytest.mark.parametrize(
    ("mode", "phrase"),
    [
        ("echo", f"reflects the hostile origin {FOREIGN} with credentials"),
        ("star_credentials", "Access-Control-Allow-Origin: * with Allow-Credentials: true"),
    ],
)
def test_fail_when_a_foreign_origin_is_allowed(http_app, frontend, mode: str, phrase: str) -> None:
    api = http_app(cors_app(mode))
    result = _run({"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url})
    assert result.status is Status.FAIL
    assert phrase in result.summary
    assert "(GET, OPTIONS)" in result.summary
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


def _matching_app(matches):
    """An API that reflects (with credentials) the origins `matches(origin)` accepts: the
    classic broken allow-list checks."""

    def app(request: Request) -> Reply:
        origin = request.header("origin")
        if origin and matches(origin):
            return Reply(
                200,
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Allow-Methods": "GET,POST",
                },
            )
        return Reply(200, {})

    return app


@pytest.mark.parametrize(
    ("name", "matches", "reflected"),
    [
        ("null", lambda o: o == "null", "null"),
        ("contains localhost", lambda o: "localhost" in o, "http://localhost"),
        ("suffix", lambda o: o.endswith(".invalid") and o != FOREIGN,
         "https://{host}.preflight-foreign.invalid"),
        ("prefix", lambda o: o.endswith("{host}") and o != "http://{host}",
         "https://preflight-evil{host}"),
    ],
)  # fmt: skip
def test_fail_on_each_broken_allow_list(http_app, frontend, name, matches, reflected) -> None:
    host = frontend.url.split("://", 1)[1]
    api = http_app(_matching_app(lambda o: matches(o.replace(host, "{host}"))))
    result = _run({"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url})
    assert result.status is Status.FAIL, (name, result.summary)
    origin = reflected.replace("{host}", host)
    assert f"reflects the hostile origin {origin} with credentials (GET, OPTIONS)" in (
        result.summary
    )
    views = result.evidence["targets"][api.url]["hostile_origins"][origin]
    assert views["OPTIONS"]["allow_origin"] == origin


def test_fail_on_an_http_downgrade_of_an_https_frontend(http_app, ca_bundle) -> None:
    frontend = http_app(cors_app("none"), tls=True)
    api = http_app(_matching_app(lambda o: o.startswith("http://")))
    env = {"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url}
    result = _run({**env, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.FAIL
    downgrade = "http://" + frontend.url.split("://", 1)[1]
    assert f"reflects the hostile origin {downgrade} with credentials" in result.summary
    assert "reflects the hostile origin http://localhost" in result.summary
