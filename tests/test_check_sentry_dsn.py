"""sentry_dsn: DSN parsing, and the opt-in test event against a local stand-in for Sentry."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from checks import sentry_dsn
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.load_http import LoadServer
from tests.support.pg import result_text

KEY = "0123456789abcdef0123456789abcdef"  # fake public key; must never appear in a result


def test_unset_fails_as_required_by_the_checklist() -> None:
    result = run_one(sentry_dsn.CHECK, CheckContext(env={}))
    assert result.status is Status.FAIL
    assert "SENTRY_DSN is not set" in result.summary
    assert "not applicable" in result.remediation


@pytest.mark.parametrize("value", ["[TO_BE_CONFIGURED]", "<your dsn>", "YOUR_SENTRY_DSN"])
def test_placeholder_is_not_configured(value: str) -> None:
    result = run_one(sentry_dsn.CHECK, CheckContext(env={"SENTRY_DSN": value}))
    assert result.status is Status.FAIL
    assert "not configured" in result.summary


@pytest.mark.parametrize(
    ("dsn", "host", "project", "path"),
    [
        (
            f"https://{KEY}@o450000.ingest.sentry.io/5500000",
            "o450000.ingest.sentry.io",
            "5500000",
            "",
        ),
        (f"https://{KEY}@sentry.example.test/42/", "sentry.example.test", "42", ""),
        (
            f"https://{KEY}:legacysecret@sentry.example.test:9000/errors/7",
            "sentry.example.test",
            "7",
            "/errors",
        ),
        (f"http://{KEY}@127.0.0.1:9000/1", "127.0.0.1", "1", ""),
    ],
)
def test_well_formed(dsn: str, host: str, project: str, path: str) -> None:
    # Parsing only: running the check would resolve these names, and no test leaves loopback.
    parsed = sentry_dsn.parse_dsn(dsn)
    assert (parsed.host, parsed.project_id, parsed.path) == (host, project, path)
    assert KEY not in repr(parsed.describe()) and "legacysecret" not in repr(parsed.describe())


@pytest.mark.parametrize(
    ("dsn", "reason"),
    [
        (f"ftp://{KEY}@sentry.example.test/1", "scheme"),
        ("https://sentry.example.test/1", "public key"),
        (f"https://{KEY}@sentry.example.test/project", "project id"),
        (f"https://{KEY}@/1", "host"),
        (f"https://{KEY}@sentry.example.test:notaport/1", "not a URL"),
        (f"https://{KEY}@sentry.example.test/1?x=1", "query"),
    ],
)
def test_malformed(dsn: str, reason: str) -> None:
    result = run_one(sentry_dsn.CHECK, CheckContext(env={"SENTRY_DSN": dsn}))
    assert result.status is Status.FAIL
    assert reason in result.summary
    assert KEY not in result_text(result)


def event_ctx(server: LoadServer, ca_bundle: str, allow_active: bool = True) -> CheckContext:
    return CheckContext(
        env={
            "SENTRY_DSN": f"https://{KEY}@127.0.0.1:{server.port}/42",
            "PREFLIGHT_SENTRY_TEST_EVENT": "true",
            "PREFLIGHT_CA_BUNDLE": ca_bundle,
        },
        allow_active=allow_active,
    )


def test_test_event_accepted(
    load_https_server: Callable[..., LoadServer], load_ca_bundle: str
) -> None:
    server = load_https_server()
    result = run_one(sentry_dsn.CHECK, event_ctx(server, load_ca_bundle))
    assert result.status is Status.PASS, result.summary
    assert "accepted test event" in result.summary and "(HTTP 200)" in result.summary
    assert result.observations == 1
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/api/42/envelope/"
    auth = request.headers["X-Sentry-Auth"]
    assert auth.startswith("Sentry sentry_version=7") and f"sentry_key={KEY}" in auth
    header, item, payload = request.body.decode().splitlines()
    assert json.loads(item)["type"] == "event"
    event = json.loads(payload)
    assert (
        event["event_id"]
        == json.loads(header)["event_id"]
        == result.evidence["test_event"]["event_id"]
    )
    assert event["level"] == "info"
    assert KEY not in result_text(result)


def test_test_event_requested_without_active_is_unknown_and_sends_nothing(
    load_https_server: Callable[..., LoadServer], load_ca_bundle: str
) -> None:
    server = load_https_server()
    result = run_one(sentry_dsn.CHECK, event_ctx(server, load_ca_bundle, allow_active=False))
    assert result.status is Status.UNKNOWN
    assert "test event requested but not sent: run with --active" in result.summary
    assert "--active" in result.remediation
    assert server.requests == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, Status.FAIL), (403, Status.FAIL), (429, Status.WARN), (500, Status.FAIL)],
)
def test_test_event_refused(
    load_https_server: Callable[..., LoadServer],
    load_ca_bundle: str,
    status: int,
    expected: Status,
) -> None:
    server = load_https_server(status=status)
    result = run_one(sentry_dsn.CHECK, event_ctx(server, load_ca_bundle))
    assert result.status is expected
    assert result.evidence["test_event"]["http_status"] == status
    assert KEY not in result_text(result)


def test_test_event_unreachable_is_error() -> None:
    from tests.support.pg import free_port

    env = {
        "SENTRY_DSN": f"https://{KEY}@127.0.0.1:{free_port()}/42",
        "PREFLIGHT_SENTRY_TEST_EVENT": "1",
    }
    result = run_one(sentry_dsn.CHECK, CheckContext(env=env, allow_active=True, timeout_s=5))
    assert result.status is Status.ERROR
    assert KEY not in result_text(result)


# --- syntax alone is never a PASS (issue 10) -------------------------------------------------


def test_a_host_that_does_not_resolve_fails() -> None:
    env = {"SENTRY_DSN": f"https://{KEY}@o450000.ingest.sentry.invalid/5500000"}
    result = run_one(sentry_dsn.CHECK, CheckContext(env=env))
    assert result.status is Status.FAIL
    assert "o450000.ingest.sentry.invalid does not resolve" in result.summary
    assert result.evidence["resolves"] is False
    assert KEY not in result_text(result)


def test_plain_http_fails_before_anything_is_sent(
    load_http_server: Callable[..., LoadServer],
) -> None:
    server = load_http_server()
    env = {
        "SENTRY_DSN": f"http://{KEY}@127.0.0.1:{server.port}/42",
        "PREFLIGHT_SENTRY_TEST_EVENT": "true",
    }
    result = run_one(sentry_dsn.CHECK, CheckContext(env=env, allow_active=True))
    assert result.status is Status.FAIL
    assert "plain http" in result.summary
    assert server.requests == []  # the key never went out in clear text
    assert KEY not in result_text(result)


def test_without_a_test_event_a_reachable_dsn_is_unknown_naming_what_was_verified(
    load_https_server: Callable[..., LoadServer], load_ca_bundle: str
) -> None:
    server = load_https_server()
    env = {
        "SENTRY_DSN": f"https://{KEY}@127.0.0.1:{server.port}/42",
        "PREFLIGHT_CA_BUNDLE": load_ca_bundle,
    }
    result = run_one(sentry_dsn.CHECK, CheckContext(env=env))
    assert result.status is Status.UNKNOWN
    assert "well formed, https, 127.0.0.1 resolves and answers HTTPS (HTTP 200)" in (result.summary)
    assert "key and project are not verified" in result.summary
    assert "PREFLIGHT_SENTRY_TEST_EVENT=true" in result.remediation
    [probe] = server.requests
    assert probe.method == "GET" and probe.path == "/"
    assert "X-Sentry-Auth" not in probe.headers and KEY not in repr(probe)
    assert KEY not in result_text(result)


def test_without_a_test_event_an_unreachable_host_is_an_error() -> None:
    from tests.support.pg import free_port

    env = {"SENTRY_DSN": f"https://{KEY}@127.0.0.1:{free_port()}/42"}
    result = run_one(sentry_dsn.CHECK, CheckContext(env=env, timeout_s=5))
    assert result.status is Status.ERROR
    assert "does not answer" in result.summary
