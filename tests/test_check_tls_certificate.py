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
    assert host["key_type"] == "EC secp256r1" and host["key_bits"] == 256
    assert host["signature"] == "sha256"
    assert "(EC secp256r1 256-bit, sha256, TLSv1." in result.summary
    assert result.observations == 3 and "(3 TLS handshakes)" in result.summary


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


def test_legacy_protocols_accepted_beside_modern_ones_fail(
    tls_server, tls_certs, ca_bundle
) -> None:
    # testssl.sh: offering TLS 1.0/1.1 is a finding on its own (this was a WARN).
    server = tls_server(tls_certs["valid"], legacy=True)
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    legacy = _host(result)["legacy_protocols"]
    if client_can_offer_tls10():
        assert result.status is Status.FAIL
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


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("rsa1024", "has a RSA 1024-bit key (below 2048)"), ("sha1", "has a SHA-1 signature")],
)
def test_weak_key_or_signature_fails_by_its_own_rule(
    weak_tls_server, weak_ca_bundle, name: str, phrase: str
) -> None:
    # This machine's OpenSSL refuses these at its default security level; the verdict must
    # name the check's own rule (testssl.sh), judged from the served certificate.
    server = weak_tls_server(name)
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": weak_ca_bundle})
    assert result.status is Status.FAIL
    assert f"certificate for {server.address} {phrase}" in result.summary
    host = _host(result)
    assert host["key_type"] == "RSA"
    assert host["signature"] == ("sha1" if name == "sha1" else "sha256")
    assert "Reissue the certificate" in result.remediation


def test_strong_rebuilt_certificate_passes(weak_tls_server, weak_ca_bundle) -> None:
    """The control for the two above: the same support code with a P-256 key and SHA-256."""
    server = weak_tls_server("ec_p256")
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": weak_ca_bundle})
    assert result.status is Status.PASS, result.summary


@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1, "TLSv1"), (ssl.TLSVersion.TLSv1_1, "TLSv1.1")],
)
def test_a_server_speaking_only_an_old_tls_fails(weak_tls_server, ca_bundle, version, name) -> None:
    server = weak_tls_server(None, only=version)
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.FAIL, result.summary
    assert "could not be fetched" not in result.summary
    if client_can_offer_tls10():
        assert f"{server.address} accepts only {name} (no TLS 1.2 or 1.3)" in result.summary
        assert _host(result)["legacy_protocols"][name] == "accepted"
        assert _host(result)["key_type"] == "EC secp256r1"
    else:  # the machine cannot offer it: the protocol alert is the evidence
        assert "offers no TLS 1.2+" in result.summary


def test_old_tls_only_without_a_legacy_capable_client_fails_on_the_alert(
    weak_tls_server, ca_bundle, monkeypatch
) -> None:
    monkeypatch.setattr(
        tls_certificate,
        "client_cannot_offer",
        lambda version: "this machine's OpenSSL cannot offer it (NO_PROTOCOLS_AVAILABLE)",
    )
    server = weak_tls_server(None, only=ssl.TLSVersion.TLSv1)
    result = _run({"PREFLIGHT_TLS_HOSTS": server.address, "PREFLIGHT_CA_BUNDLE": ca_bundle})
    assert result.status is Status.FAIL
    assert f"{server.address} offers no TLS 1.2+" in result.summary
    assert "protocol alert" in result.summary


def test_key_and_signature_rules() -> None:
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from checks._net import key_and_signature
    from tests.support.weak_tls import weak_leaf

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    for curve, hash_alg, expected in [
        (ec.SECP256R1(), hashes.SHA256(), []),
        (ec.SECP384R1(), hashes.SHA384(), []),
        (ec.SECP224R1(), hashes.SHA256(), ["EC 224-bit key (below 256)"]),
        (ec.SECP256R1(), hashes.SHA1(), ["SHA-1 signature"]),  # noqa: S303 - weak on purpose
    ]:
        try:
            pem, _ = weak_leaf(ca, ec.generate_private_key(curve), hash_alg)
        except Exception as exc:  # pragma: no cover - a cryptography build without the curve
            pytest.fail(f"could not build a {curve.name} certificate: {exc}")
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
        facts, problems = key_and_signature(der)
        assert problems == expected, (curve.name, hash_alg.name)
        assert facts["key_bits"] == curve.key_size
