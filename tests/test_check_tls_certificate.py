"""tls_certificate against local TLS servers with certificates from a test CA."""

from __future__ import annotations

import ssl

import pytest

from checks import tls_certificate
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.tls_servers import client_can_offer_tls10, free_port

# The legacy probe deliberately offers TLS 1.0/1.1, which Python flags as deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(tls_certificate.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _host(result: Result) -> dict:
    (only,) = result.evidence["targets"].values()
    return only


def test_pass_for_a_valid_long_lived_certificate(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["valid"])
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.PASS, result.summary
    assert f"certificate for {server.address} verifies" in result.summary
    host = _host(result)
    assert host["verification"] == "ok"
    assert host["days_left"] >= 800
    assert "127.0.0.1" in host["sans"]
    assert "trustme" in host["issuer"]
    assert host["protocol"] in ("TLSv1.2", "TLSv1.3")
    assert host["legacy_protocols"] == {"TLSv1": "refused", "TLSv1.1": "refused"}


@pytest.mark.parametrize(
    ("cert", "status", "days"),
    [("expiring_10d", Status.FAIL, 10), ("expiring_45d", Status.WARN, 45)],
)
def test_expiry_thresholds(tls_server, tls_certs, ca_bundle, cert, status, days) -> None:
    server = tls_server(tls_certs[cert])
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is status
    assert f"expires in {days} days" in result.summary
    assert _host(result)["days_left"] == days
    assert "Renew" in result.remediation


@pytest.mark.parametrize(
    ("cert", "bundle", "problem"),
    [
        ("expired", True, "expired"),
        ("wrong_name", True, "hostname mismatch"),
        ("valid", False, "unknown issuer"),  # the test CA is not trusted without the bundle
    ],
)
def test_verification_failures_fail_with_the_reason(
    tls_server, tls_certs, ca_bundle, cert, bundle, problem
) -> None:
    server = tls_server(tls_certs[cert])
    env = {"PREFLIGHT_TLS_HOSTS": server.address}
    if bundle:
        env["PREFLIGHT_CA_BUNDLE"] = ca_bundle
    result = _run(env)
    assert result.status is Status.FAIL
    assert f"does not verify ({problem}" in result.summary
    host = _host(result)
    # What was served is still shown, to help fix it.
    assert host["verification"].startswith("failed:")
    assert host["sans"]


def test_expired_certificate_shows_negative_days(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["expired"])
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert _host(result)["days_left"] < 0
    assert "Renew" in result.remediation


def test_legacy_protocols_accepted_warn(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["valid"], legacy=True)
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    legacy = _host(result)["legacy_protocols"]
    if client_can_offer_tls10():
        assert result.status is Status.WARN
        assert legacy["TLSv1"] == "accepted"
        assert "accepts TLSv1" in result.summary
        assert "Disable TLS 1.0" in result.remediation
    else:  # this machine cannot probe: no evidence either way
        assert result.status is Status.UNKNOWN
        assert legacy["TLSv1"].startswith("unknown")


def test_unknown_when_this_machine_cannot_offer_old_protocols(
    tls_server, tls_certs, ca_bundle, monkeypatch
) -> None:
    # Stands in for an OpenSSL built without TLS 1.0/1.1 or configured to refuse them.
    monkeypatch.setattr(
        tls_certificate,
        "client_cannot_offer",
        lambda version: "this machine's OpenSSL cannot offer it (NO_PROTOCOLS_AVAILABLE)",
    )
    server = tls_server(tls_certs["valid"], legacy=True)
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.UNKNOWN
    assert "could not be tested" in result.summary
    assert _host(result)["legacy_protocols"]["TLSv1"].startswith("unknown: this machine")
    # The certificate part was still judged and shown.
    assert _host(result)["verification"] == "ok"


def test_client_capability_probe_matches_a_real_handshake() -> None:
    can = client_can_offer_tls10()
    assert (tls_certificate.client_cannot_offer(ssl.TLSVersion.TLSv1) is None) is can


def test_several_hosts_worst_wins_and_evidence_is_per_host(
    tls_server, tls_certs, ca_bundle
) -> None:
    good = tls_server(tls_certs["valid"])
    soon = tls_server(tls_certs["expiring_10d"])
    result = _run(
        {
            "PREFLIGHT_TLS_HOSTS": f"{good.address}, {soon.address}",
            "PREFLIGHT_CA_BUNDLE": ca_bundle,
        }
    )
    assert result.status is Status.FAIL
    assert soon.address in result.summary
    assert "(1 of 2 hosts passed)" in result.summary
    verdicts = {k: v["verdict"] for k, v in result.evidence["targets"].items()}
    assert verdicts == {good.address: "PASS", soon.address: "FAIL"}


def test_default_hosts_come_from_the_urls(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["valid"])
    result = _run(
        {
            "FRONTEND_URL": f"https://{server.address}/app",
            "PREFLIGHT_API_URL": f"https://{server.address}",
            "PREFLIGHT_CA_BUNDLE": ca_bundle,
        }
    )
    assert result.status is Status.PASS
    assert list(result.evidence["targets"]) == [server.address]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PREFLIGHT_TLS_HOSTS": "a.example, b.example:8443"},
         [("a.example", 443), ("b.example", 8443)]),
        ({"FRONTEND_URL": "https://app.example", "PREFLIGHT_API_URL": "http://api.example:8080"},
         [("app.example", 443), ("api.example", 443)]),
        ({"FRONTEND_URL": "https://App.Example:8443/x"}, [("app.example", 8443)]),
    ],
)  # fmt: skip
def test_targets(env: dict[str, str], expected: list[tuple[str, int]]) -> None:
    assert tls_certificate.targets(CheckContext(env=env)) == expected


def test_skipped_without_any_host() -> None:
    result = _run({})
    assert result.status is Status.SKIPPED
    assert "PREFLIGHT_TLS_HOSTS" in result.evidence["missing_settings"]


def test_error_when_refused() -> None:
    result = _run({"PREFLIGHT_TLS_HOSTS": f"127.0.0.1:{free_port()}"}, timeout_s=2)
    assert result.status is Status.ERROR
    assert "connection refused" in result.summary


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("certificate has expired", "expired"),
        ("Hostname mismatch, certificate is not valid for 'x'.", "hostname mismatch"),
        ("unable to get local issuer certificate", "unknown issuer"),
        ("self-signed certificate in certificate chain", "unknown issuer"),
        ("certificate is not yet valid", "not yet valid"),
        ("something else", "verification failed"),
    ],
)
def test_verify_problem(reason: str, problem: str) -> None:
    assert tls_certificate.verify_problem(reason) == problem
