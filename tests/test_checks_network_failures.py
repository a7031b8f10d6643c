"""Unreachable targets: every network check reports its own ERROR before its deadline, and a
healthy check in the same run is not held up.

Each run points all the network checks at one kind of failure at once, as a real outage
would: connection refused, an unknown host, a server that accepts and never answers, a TLS
handshake that stalls, and a resolver that never answers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checks import (
    api_health,
    cors_policy,
    dns_records,
    email_dns,
    https_redirect,
    rate_limiting,
    security_headers,
    tls_certificate,
    tls_wildcard,
)
from checks.base import Check, CheckContext, Result, Status
from checks.runner import run_checks
from tests.support.tls_servers import free_port

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")

# Generous enough that a loaded machine does not turn a quick, explained failure into the
# runner's "did not finish" (the stalling cases wait this long by design).
TIMEOUT_S = 3.0
NETWORK_CHECKS = [
    api_health.CHECK,
    tls_certificate.CHECK,
    tls_wildcard.CHECK,
    dns_records.CHECK,
    https_redirect.CHECK,
    security_headers.CHECK,
    cors_policy.CHECK,
    rate_limiting.CHECK,
    email_dns.CHECK,
]
UNKNOWN_HOST = "preflight-target.invalid"  # .invalid never resolves (RFC 6761)


def _fast(ctx: CheckContext) -> Result:
    return Result(
        Status.PASS, "the local fast check passed", evidence={"local": True}, observations=1
    )


FAST = Check(id="fast_probe", title="fast", section="Test", run=_fast)


def _env(host: str, port: int, scheme: str, nameserver: str) -> dict[str, str]:
    address = f"{host}:{port}"
    return {
        "FRONTEND_URL": f"{scheme}://{address}",
        "PREFLIGHT_API_URL": f"{scheme}://{address}",
        "PREFLIGHT_API_TOKEN": "tok-failures-0123456789",
        "PREFLIGHT_HTTP_PORT": str(port),
        "PREFLIGHT_RATE_LIMIT_URL": f"{scheme}://{address}/api",
        "PREFLIGHT_RATE_LIMIT_REQUESTS": "20",
        "PREFLIGHT_TLS_HOSTS": address,
        "PREFLIGHT_WILDCARD_DOMAIN": "example.test",
        "PREFLIGHT_WILDCARD_CONNECT": address,
        "PREFLIGHT_DNS_NAMESERVER": nameserver,
        "PREFLIGHT_DNS_RECORDS": "A app.example.test",
        "PREFLIGHT_EMAIL_DOMAIN": "example.test",
        "PREFLIGHT_DKIM_SELECTORS": "s1",
    }


def _run_all(env: dict[str, str]) -> tuple[list[Result], list[str]]:
    order: list[str] = []
    ctx = CheckContext(env=env, timeout_s=TIMEOUT_S, allow_active=True)
    results = run_checks([*NETWORK_CHECKS, FAST], ctx, on_result=lambda r: order.append(r.check_id))
    return results, order


def _assert_contained(
    results: list[Result], order: list[str], cause: Callable[[str], bool], *, slow: bool
) -> None:
    by_id = {r.check_id: r for r in results}
    fast = by_id.pop("fast_probe")
    assert fast.status is Status.PASS
    if slow:  # every other check waits for its target: the fast one is reported first
        assert order[0] == "fast_probe"
    for check_id, result in by_id.items():
        assert result.status is Status.ERROR, (check_id, result.status, result.summary)
        # The check's own explanation, not the runner's "did not finish within".
        assert "did not finish within" not in result.summary, check_id
        assert result.duration_ms <= TIMEOUT_S * 1000, check_id
        assert result.remediation, check_id
        if check_id not in ("dns_records", "email_dns"):
            assert cause(result.summary), (check_id, result.summary)
        assert "tok-failures" not in result.summary


def test_connection_refused(silent_dns) -> None:
    results, order = _run_all(_env("127.0.0.1", free_port(), "http", silent_dns))
    _assert_contained(results, order, lambda s: "connection refused" in s, slow=False)


def test_unknown_host() -> None:
    # The resolver setting names an unknown host too: DNS checks fail to set up, as ERROR.
    results, order = _run_all(_env(UNKNOWN_HOST, 443, "https", f"{UNKNOWN_HOST}:53"))
    _assert_contained(results, order, lambda s: "could not be resolved" in s, slow=False)


def test_server_accepts_and_never_answers(stalling_server, silent_dns) -> None:
    env = _env("127.0.0.1", stalling_server.port, "http", silent_dns)
    results, order = _run_all(env)
    _assert_contained(results, order, lambda s: "timed out" in s or "no answer" in s, slow=True)


def test_tls_handshake_stalls(stalling_server, silent_dns) -> None:
    env = _env("127.0.0.1", stalling_server.port, "https", silent_dns)
    results, order = _run_all(env)
    _assert_contained(results, order, lambda s: "timed out" in s or "no answer" in s, slow=True)
