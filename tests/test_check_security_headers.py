"""security_headers against local HTTP(S) apps with good and bad header sets."""

from __future__ import annotations

import pytest

from checks import security_headers
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.http_apps import (
    BARE_EXPRESS_HEADERS,
    GOOD_HEADERS,
    Reply,
    Request,
    headers_app,
    refused_url,
)


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(security_headers.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _verdicts(result: Result, url: str) -> dict[str, str]:
    headers = result.evidence["targets"][url]["headers"]
    return {name: seen["verdict"] for name, seen in headers.items()}


def _with(**changes: str | None) -> dict[str, str]:
    """GOOD_HEADERS with some replaced (value) or removed (None); names use _ for -."""
    headers = dict(GOOD_HEADERS)
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def test_pass_with_helmet_like_headers_over_https(http_app, ca_bundle) -> None:
    app = http_app(headers_app(GOOD_HEADERS), tls=True)
    result = _run({"FRONTEND_URL": app.url, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.PASS, result.summary
    assert set(_verdicts(result, app.url).values()) == {"PASS"}
    assert f"{app.url} (HTTP 200) sends HSTS" in result.summary
    assert "a CSP that restricts scripts" in result.summary
    assert result.observations == 6
    assert "(6 headers judged)" in result.summary


def test_bare_express_over_http_fails_on_everything(http_app) -> None:
    app = http_app(headers_app(BARE_EXPRESS_HEADERS))
    result = _run({"FRONTEND_URL": app.url})
    assert result.status is Status.FAIL
    assert set(_verdicts(result, app.url).values()) == {"FAIL"}
    assert "X-Powered-By present ('Express'" in result.summary
    assert "plain HTTP" in result.summary
    assert "app.disable('x-powered-by')" in result.remediation


@pytest.mark.parametrize(
    ("headers", "header", "status", "phrase"),
    [
        (_with(Strict_Transport_Security=None), "Strict-Transport-Security", "FAIL", "missing"),
        (_with(Strict_Transport_Security="max-age=86400; includeSubDomains"),
         "Strict-Transport-Security", "FAIL", "below 15552000"),
        (_with(Strict_Transport_Security="max-age=31536000"),
         "Strict-Transport-Security", "WARN", "no includeSubDomains"),
        (_with(X_Content_Type_Options=None), "X-Content-Type-Options", "FAIL", "missing"),
        (_with(X_Frame_Options=None), "frame protection", "PASS", "frame-ancestors"),
        (_with(X_Frame_Options="ALLOW-FROM https://x.test",
               Content_Security_Policy="default-src 'self'"),
         "frame protection", "FAIL", "no X-Frame-Options"),
        (_with(Referrer_Policy=None), "Referrer-Policy", "FAIL", "missing"),
        (_with(Referrer_Policy="no-referrer, unsafe-url"), "Referrer-Policy", "WARN", "unsafe-url"),
        (_with(Content_Security_Policy=None), "Content-Security-Policy", "FAIL", "missing"),
        (_with(Content_Security_Policy=None,
               Content_Security_Policy_Report_Only="default-src 'self'"),
         "Content-Security-Policy", "FAIL", "Report-Only"),
        # Observatory deducts 20 for 'unsafe-inline' scripts: FAIL (was WARN)
        (_with(Content_Security_Policy="default-src 'self' 'unsafe-inline'"),
         "Content-Security-Policy", "FAIL", "'unsafe-inline' scripts"),
        (_with(Content_Security_Policy="script-src 'self' 'unsafe-inline' 'nonce-abc123'"),
         "Content-Security-Policy", "PASS", "nonce"),
        (_with(X_Powered_By="Express"), "X-Powered-By", "FAIL", "present"),
        # A CSP that restricts no script is not a pass (Mozilla HTTP Observatory).
        (_with(Content_Security_Policy="frame-ancestors 'none'"),
         "Content-Security-Policy", "FAIL", "restricts no script"),
        (_with(Content_Security_Policy="default-src *"),
         "Content-Security-Policy", "FAIL", "default-src allows scripts from *"),
        (_with(Content_Security_Policy="default-src 'self'; script-src 'self' http:"),
         "Content-Security-Policy", "FAIL", "script-src allows scripts from http:"),
        (_with(Content_Security_Policy="script-src 'self' https: data:"),
         "Content-Security-Policy", "FAIL", "allows scripts from https: data:"),
        (_with(Content_Security_Policy="script-src 'self' http://cdn.example.test"),
         "Content-Security-Policy", "FAIL", "http://cdn.example.test"),
        (_with(Content_Security_Policy="script-src 'self' 'unsafe-eval'"),
         "Content-Security-Policy", "WARN", "'unsafe-eval'"),
        (_with(Content_Security_Policy="default-src 'self'; img-src 'self' http:"),
         "Content-Security-Policy", "WARN", "img-src allow plain http: sources"),
        (_with(Content_Security_Policy="script-src 'nonce-r4nd0m' 'strict-dynamic' https:"),
         "Content-Security-Policy", "PASS", "strict-dynamic"),
        (_with(X_Frame_Options="DENY", Content_Security_Policy="default-src 'self'; "
               "frame-ancestors *"),
         "frame protection", "FAIL", "lets any site frame"),
        (_with(X_Frame_Options=None, Content_Security_Policy="default-src 'self'; "
               "frame-ancestors https:"),
         "frame protection", "FAIL", "lets any site frame"),
    ],
)  # fmt: skip
def test_each_header(http_app, ca_bundle, headers, header, status, phrase) -> None:
    app = http_app(headers_app(headers), tls=True)
    result = _run({"FRONTEND_URL": app.url, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    seen = result.evidence["targets"][app.url]["headers"][header]
    assert seen["verdict"] == status
    assert phrase in seen["observed"]
    assert result.status is Status(status)
    if status != "PASS":
        assert header in result.summary


def test_frontend_and_api_are_judged_separately(http_app, ca_bundle) -> None:
    frontend = http_app(headers_app(GOOD_HEADERS), tls=True)
    api = http_app(headers_app(_with(X_Powered_By="Express")), tls=True)
    env = {"FRONTEND_URL": frontend.url, "PREFLIGHT_API_URL": api.url + "/api"}
    result = _run({**env, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.FAIL
    targets = result.evidence["targets"]
    assert targets[frontend.url]["verdict"] == "PASS"
    assert targets[api.url + "/api"]["verdict"] == "FAIL"
    assert "(1 of 2 URLs passed)" in result.summary


def test_redirects_are_followed_and_the_final_page_judged(http_app, ca_bundle) -> None:
    def app(request: Request) -> Reply:
        if request.path == "/":
            return Reply(302, {"Location": "/login"}, b"")
        return Reply(200, dict(GOOD_HEADERS))

    running = http_app(app, tls=True)
    result = _run({"FRONTEND_URL": running.url + "/", "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.PASS, result.summary
    assert result.evidence["targets"][running.url + "/"]["final_url"] == running.url + "/login"


def test_error_when_the_certificate_is_not_trusted(http_app) -> None:
    app = http_app(headers_app(GOOD_HEADERS), tls=True)
    result = _run({"FRONTEND_URL": app.url})  # no CA bundle: the test CA is unknown
    assert result.status is Status.ERROR
    assert "certificate verification failed" in result.summary


def test_error_when_refused() -> None:
    url = refused_url()
    result = _run({"FRONTEND_URL": url}, timeout_s=2)
    assert result.status is Status.ERROR
    assert f"{url} could not be fetched: connection refused" in result.summary


def test_skipped_without_urls() -> None:
    assert _run({}).status is Status.SKIPPED


class _RepeatedHeaders(dict):
    """Header pairs where a name may repeat (two CSP headers); http_apps sends items()."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self._pairs = pairs

    def items(self):  # type: ignore[override]
        return list(self._pairs)


def test_two_policies_are_as_strict_as_the_stricter(http_app, ca_bundle) -> None:
    """Browsers enforce every CSP header: a frame-ancestors-only policy beside a script
    policy does not weaken it, and a lax one beside it does not strengthen it."""

    def app(request: Request) -> Reply:
        headers = [(k, v) for k, v in GOOD_HEADERS.items() if k != "Content-Security-Policy"]
        headers += [
            ("Content-Security-Policy", "frame-ancestors 'none'"),
            ("Content-Security-Policy", "script-src 'self'"),
        ]
        return Reply(200, _RepeatedHeaders(headers))

    running = http_app(app, tls=True)
    result = _run({"FRONTEND_URL": running.url, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.PASS, result.summary


def test_lax_policies_alone_fail(http_app, ca_bundle) -> None:
    def app(request: Request) -> Reply:
        headers = [(k, v) for k, v in GOOD_HEADERS.items() if k != "Content-Security-Policy"]
        headers += [
            ("Content-Security-Policy", "frame-ancestors 'none'"),
            ("Content-Security-Policy", "script-src * 'unsafe-inline'"),
        ]
        return Reply(200, _RepeatedHeaders(headers))

    running = http_app(app, tls=True)
    result = _run({"FRONTEND_URL": running.url, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.FAIL
    assert "Content-Security-Policy" in result.summary
    assert (
        result.evidence["targets"][running.url]["headers"]["Content-Security-Policy"]["verdict"]
        == "FAIL"
    )
