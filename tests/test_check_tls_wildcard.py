"""tls_wildcard against local TLS servers, and the SAN matching rules on their own."""

from __future__ import annotations

import pytest

from checks import tls_wildcard
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.tls_servers import WILDCARD_DOMAIN, free_port

SAMPLE = f"preflight-check.{WILDCARD_DOMAIN}"


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(tls_wildcard.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _env(address: str, ca_bundle: str | None, **extra: str) -> dict[str, str]:
    env = {"PREFLIGHT_WILDCARD_DOMAIN": WILDCARD_DOMAIN, "PREFLIGHT_WILDCARD_CONNECT": address}
    if ca_bundle:
        env["PREFLIGHT_CA_BUNDLE"] = ca_bundle
    return {**env, **extra}


@pytest.mark.parametrize(
    ("pattern", "name", "covered"),
    [
        ("*.a.com", "x.a.com", True),
        ("*.a.com", "a.com", False),
        ("*.a.com", "x.y.a.com", False),
        ("*.A.com", "X.a.COM", True),
        ("*.a.com.", "x.a.com", True),
        ("a.com", "A.com", True),
        ("a.com", "x.a.com", False),
        ("f*.a.com", "foo.a.com", False),  # partial-label wildcards are not honoured
        ("*x.a.com", "abx.a.com", False),
        ("x.*.a.com", "x.y.a.com", False),
        ("*.*.a.com", "x.y.a.com", False),
        ("*.com", "a.com", False),  # never directly above a single label
        ("*", "a", False),
        ("*.a.com", ".a.com", False),
        ("", "a.com", False),
    ],
)
def test_san_covers(pattern: str, name: str, covered: bool) -> None:
    assert tls_wildcard.san_covers(pattern, name) is covered


def test_pass_when_the_wildcard_covers_sample_and_apex(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["wildcard"])
    result = _run(_env(server.address, ca_bundle))
    assert result.status is Status.PASS, result.summary
    assert f"*.{WILDCARD_DOMAIN} covers {SAMPLE} and {WILDCARD_DOMAIN}" in result.summary
    assert server.server_names == [SAMPLE]  # SNI is the sample name, not the connect address
    assert result.evidence["apex_covered_by"] == "the wildcard certificate"
    assert result.evidence["sample_covered_by"] == [f"*.{WILDCARD_DOMAIN}"]


def test_pass_when_the_apex_has_its_own_certificate(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(
        tls_certs["wildcard_no_apex"], sni={WILDCARD_DOMAIN: tls_certs["apex_only"]}
    )
    result = _run(_env(server.address, ca_bundle))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["apex_covered_by"] == "its own certificate"
    assert server.server_names == [SAMPLE, WILDCARD_DOMAIN]


def test_fail_when_the_apex_is_not_covered(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["wildcard_no_apex"])
    result = _run(_env(server.address, ca_bundle))
    assert result.status is Status.FAIL
    assert f"{WILDCARD_DOMAIN} itself is not covered" in result.summary
    assert result.evidence["apex_covered_by"] == "nothing"


@pytest.mark.parametrize("cert", ["valid", "apex_only", "wrong_name"])
def test_fail_without_a_wildcard_name(tls_server, tls_certs, ca_bundle, cert) -> None:
    server = tls_server(tls_certs[cert])
    result = _run(_env(server.address, ca_bundle))
    assert result.status is Status.FAIL
    assert f"does not cover it through *.{WILDCARD_DOMAIN}" in result.summary


def test_fail_when_the_sample_is_two_labels_deep(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["wildcard"])
    deep = f"a.b.{WILDCARD_DOMAIN}"
    result = _run(_env(server.address, ca_bundle, PREFLIGHT_WILDCARD_SAMPLE=deep))
    assert result.status is Status.FAIL
    assert result.evidence["sample"] == deep
    assert server.server_names == [deep]


def test_fail_when_the_chain_does_not_verify(tls_server, tls_certs) -> None:
    server = tls_server(tls_certs["wildcard"])
    result = _run(_env(server.address, None))  # the test CA is not trusted
    assert result.status is Status.FAIL
    assert "does not verify" in result.summary
    assert result.evidence["sans"] == [f"*.{WILDCARD_DOMAIN}", WILDCARD_DOMAIN]


def test_domain_with_port_is_used_without_a_connect_override(tls_server, tls_certs) -> None:
    # Without PREFLIGHT_WILDCARD_CONNECT the sample name itself is dialled: it does not
    # resolve (.invalid never does), which is an ERROR naming the sample.
    result = _run({"PREFLIGHT_WILDCARD_DOMAIN": f"nowhere.invalid:{free_port()}"}, timeout_s=2)
    assert result.status is Status.ERROR
    assert "preflight-check.nowhere.invalid" in result.summary
    assert "could not be resolved" in result.summary


def test_error_when_refused() -> None:
    result = _run(_env(f"127.0.0.1:{free_port()}", None), timeout_s=2)
    assert result.status is Status.ERROR
    assert "connection refused" in result.summary


def test_skipped_without_a_domain() -> None:
    result = _run({"PREFLIGHT_WILDCARD_SAMPLE": "x.example.test"})
    assert result.status is Status.SKIPPED
    assert result.evidence["missing_settings"] == ["PREFLIGHT_WILDCARD_DOMAIN"]


def test_pass_names_what_was_seen(tls_server, tls_certs, ca_bundle) -> None:
    server = tls_server(tls_certs["wildcard"])
    result = _run(_env(server.address, ca_bundle))
    assert result.status is Status.PASS
    assert result.observations == 1
    assert "(EC secp256r1 256-bit, sha256, verified" in result.summary


@pytest.mark.parametrize(
    ("name", "phrase"), [("rsa1024", "RSA 1024-bit key"), ("sha1", "SHA-1 signature")]
)
def test_weak_wildcard_certificate_fails_by_its_own_rule(
    weak_ca, weak_ca_bundle, name: str, phrase: str
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.support.weak_tls import ContextTLSServer, level0_context, weak_leaf

    bits = 1024 if name == "rsa1024" else 2048
    algorithm = hashes.SHA1() if name == "sha1" else hashes.SHA256()  # noqa: S303 - weak on purpose
    pair = weak_leaf(
        weak_ca,
        rsa.generate_private_key(public_exponent=65537, key_size=bits),
        algorithm,
        names=(f"*.{WILDCARD_DOMAIN}", WILDCARD_DOMAIN),
    )
    server = ContextTLSServer(level0_context(*pair))
    try:
        result = _run(_env(server.address, weak_ca_bundle))
    finally:
        server.close()
    assert result.status is Status.FAIL
    assert f"certificate served for {SAMPLE} has a {phrase}" in result.summary
