"""email_dns against a local DNS server: SPF, DMARC and DKIM records of a sending domain."""

from __future__ import annotations

import pytest

from checks import email_dns
from checks.base import CheckContext, Result, Status
from checks.runner import run_one

DOMAIN = "mail.example.test"
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 300


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(email_dns.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _env(dns_server, selectors: str | None = "s1") -> dict[str, str]:
    env = {"PREFLIGHT_EMAIL_DOMAIN": DOMAIN, "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver}
    if selectors is not None:
        env["PREFLIGHT_DKIM_SELECTORS"] = selectors
    return env


def _good_zone(dns_server) -> None:
    dns_server.add(DOMAIN, "TXT", "google-site-verification=abc")  # unrelated TXT is ignored
    dns_server.add(DOMAIN, "TXT", "v=spf1 include:_spf.provider.test ip4:192.0.2.0/24 -all")
    dns_server.add("_spf.provider.test", "TXT", "v=spf1 include:_net1.provider.test ~all")
    dns_server.add("_net1.provider.test", "TXT", "v=spf1 ip4:198.51.100.0/24 a mx ~all")
    dns_server.add("_net1.provider.test", "A", "198.51.100.7")  # `a` and `mx` find records
    dns_server.add("_net1.provider.test", "MX", "10 mx1.provider.test.")
    dns_server.add(f"_dmarc.{DOMAIN}", "TXT", f"v=DMARC1; p=reject; rua=mailto:d@{DOMAIN}")
    # A DKIM key longer than one TXT string (255 bytes), as real 2048-bit keys are.
    dns_server.add(f"s1._domainkey.{DOMAIN}", "TXT", f"v=DKIM1; k=rsa; p={KEY}")


def _part(result: Result, name: str) -> dict:
    return result.evidence["targets"][name]


def test_pass_with_spf_dmarc_and_dkim(dns_server) -> None:
    _good_zone(dns_server)
    result = _run(_env(dns_server))
    assert result.status is Status.PASS, result.summary
    spf = _part(result, "SPF")
    assert spf["dns_lookups"] == 4  # include, include, a, mx
    assert spf["domains_followed"] == [DOMAIN, "_spf.provider.test", "_net1.provider.test"]
    assert spf["all"] == "-all"
    assert spf["void_lookups"] == []
    assert "SPF record of mail.example.test parsed (3 record(s) followed" in result.summary
    assert result.observations == 5  # 3 SPF records, DMARC, DKIM
    assert "(5 records parsed)" in result.summary
    assert _part(result, "DMARC")["policy"] == "reject"
    assert _part(result, "DKIM s1")["public_key_chars"] == len(KEY)
    assert KEY not in str(result.evidence)  # long keys are summarised, not copied


def test_dkim_key_published_through_a_cname(dns_server) -> None:
    _good_zone(dns_server)
    dns_server.add(f"ses1._domainkey.{DOMAIN}", "CNAME", "ses1.dkim.provider.test")
    dns_server.add("ses1.dkim.provider.test", "TXT", f"p={KEY}")
    result = _run(_env(dns_server, "s1, ses1"))
    assert result.status is Status.PASS, result.summary
    assert _part(result, "DKIM ses1")["canonical_name"] == "ses1.dkim.provider.test"


@pytest.mark.parametrize(
    ("spf", "phrase"),
    [
        ("v=spf1 include:_spf.provider.test +all", "'+all'"),
        ("v=spf1 ?all", "'?all'"),
        ("v=spf1 all", "'+all'"),
        ("v=spf1 redirect=_open.provider.test", "'?all'"),
        ("v=spf1 include:missing.provider.test -all", "has no SPF record"),
        ("v=spf1 include:loop.provider.test -all", "loop"),
        # Syntax errors (checkdmarc: SPFSyntaxError)
        ("v=spf1 ip4:192.0.2.300 -all", "'ip4:192.0.2.300' is not a valid ip4 address"),
        (
            "v=spf1 incldue:_spf.provider.test -all",
            "'incldue:_spf.provider.test' is not an SPF mechanism",
        ),
        ("v=spf1 ip4:192.0.2.0/33 -all", "not a valid ip4 network"),
        ("v=spf1 ip6:192.0.2.1 -all", "not a valid ip6 network"),
        ("v=spf1 ~-all", "invalid qualifier"),
        ("v=spf1 !all", "is not an SPF mechanism"),
        ("v=spf1 include: -all", "needs a domain"),
        ("v=spf1 a -all:x", "takes no argument"),
        ("v=spf1 redirect=_open.provider.test redirect=_spf.provider.test", "appears twice"),
        (
            "v=spf1 include:_bad.provider.test -all",
            "'incldue:x.test' is not an SPF mechanism (in the record of _bad.provider.test)",
        ),
    ],
)
def test_spf_failures(dns_server, spf: str, phrase: str) -> None:
    _good_zone(dns_server)
    dns_server.set(DOMAIN, "TXT", spf)
    dns_server.add("_open.provider.test", "TXT", "v=spf1 ip4:192.0.2.1 ?all")
    dns_server.add("loop.provider.test", "TXT", "v=spf1 include:loop2.provider.test -all")
    dns_server.add("loop2.provider.test", "TXT", "v=spf1 include:loop.provider.test -all")
    dns_server.add("_bad.provider.test", "TXT", "v=spf1 incldue:x.test -all")
    result = _run(_env(dns_server))
    assert result.status is Status.FAIL
    assert _part(result, "SPF")["verdict"] == "FAIL"
    assert phrase in result.summary


def test_spf_over_ten_lookups_fails(dns_server) -> None:
    _good_zone(dns_server)
    includes = " ".join(f"include:n{i}.provider.test" for i in range(6))
    dns_server.set(DOMAIN, "TXT", f"v=spf1 {includes} -all")
    for i in range(6):
        dns_server.add(f"n{i}.provider.test", "TXT", "v=spf1 a ~all")  # 2 lookups each
    result = _run(_env(dns_server))
    assert result.status is Status.FAIL
    assert "more than 10 DNS lookups" in result.summary
    assert _part(result, "SPF")["dns_lookups"] == ">10"


def test_exactly_ten_lookups_pass(dns_server) -> None:
    _good_zone(dns_server)
    includes = " ".join(f"include:n{i}.provider.test" for i in range(5))
    dns_server.set(DOMAIN, "TXT", f"v=spf1 {includes} -all")
    for i in range(5):
        dns_server.add(f"n{i}.provider.test", "TXT", "v=spf1 mx ~all")
        dns_server.add(f"n{i}.provider.test", "MX", "10 mx1.provider.test.")
    result = _run(_env(dns_server))
    assert _part(result, "SPF")["dns_lookups"] == 10
    assert result.status is Status.PASS


def test_missing_and_duplicate_spf_fail(dns_server) -> None:
    _good_zone(dns_server)
    dns_server.set(DOMAIN, "TXT", "unrelated")
    result = _run(_env(dns_server))
    assert result.status is Status.FAIL
    assert f"{DOMAIN} has no SPF record" in result.summary
    dns_server.set(DOMAIN, "TXT", "v=spf1 -all", "v=spf1 mx -all")
    result = _run(_env(dns_server))
    assert result.status is Status.FAIL
    assert "2 SPF records" in result.summary


def test_three_void_lookups_fail(dns_server) -> None:
    _good_zone(dns_server)
    dns_server.set(
        DOMAIN,
        "TXT",
        "v=spf1 a:gone1.provider.test mx:_net2.provider.test exists:gone2.provider.test -all",
    )
    dns_server.add("_net2.provider.test", "TXT", "exists, but has no MX")
    result = _run(_env(dns_server))
    assert result.status is Status.FAIL
    assert "3 void DNS lookups (more than 2)" in result.summary
    assert _part(result, "SPF")["void_lookups"] == [
        "A/AAAA gone1.provider.test",
        "MX _net2.provider.test",
        "A gone2.provider.test",
    ]


def test_two_void_lookups_pass(dns_server) -> None:
    _good_zone(dns_server)
    dns_server.set(DOMAIN, "TXT", "v=spf1 a:gone1.provider.test mx:gone2.provider.test -all")
    result = _run(_env(dns_server))
    assert result.status is Status.PASS, result.summary
    assert len(_part(result, "SPF")["void_lookups"]) == 2
    assert "2 void" in result.summary


def test_spf_without_all_warns(dns_server) -> None:
    _good_zone(dns_server)
    dns_server.set(DOMAIN, "TXT", "v=spf1 ip4:192.0.2.1")
    result = _run(_env(dns_server))
    assert result.status is Status.WARN
    assert "no 'all' mechanism" in result.summary


@pytest.mark.parametrize(
    ("dmarc", "status", "phrase"),
    [
        (None, Status.FAIL, "has no DMARC record"),
        ("v=DMARC1; p=none; rua=mailto:d@x.test", Status.WARN, "p=none only monitors"),
        ("v=DMARC1; p=quarantine", Status.WARN, "no rua="),
        ("v=DMARC1; rua=mailto:d@x.test", Status.FAIL, "no valid policy"),
        ("v=DMARC1; p=quarantine; rua=mailto:d@x.test", Status.PASS, "p=quarantine"),
    ],
)
def test_dmarc(dns_server, dmarc: str | None, status: Status, phrase: str) -> None:
    _good_zone(dns_server)
    dns_server.set(f"_dmarc.{DOMAIN}", "TXT", *([dmarc] if dmarc else []))
    result = _run(_env(dns_server))
    assert result.status is status
    assert _part(result, "DMARC")["verdict"] == status.value
    assert phrase in result.summary


@pytest.mark.parametrize(
    ("record", "phrase"),
    [(None, "has no key"), ("v=DKIM1; k=rsa; p=", "empty key")],
)
def test_dkim_missing_or_revoked_fails(dns_server, record: str | None, phrase: str) -> None:
    _good_zone(dns_server)
    dns_server.set(f"s1._domainkey.{DOMAIN}", "TXT", *([record] if record else []))
    result = _run(_env(dns_server))
    assert result.status is Status.FAIL
    assert _part(result, "DKIM s1")["verdict"] == "FAIL"
    assert phrase in result.summary


def test_no_selectors_is_a_warning_that_dkim_was_not_verified(dns_server) -> None:
    _good_zone(dns_server)
    result = _run(_env(dns_server, selectors=None))
    assert result.status is Status.WARN
    assert "DKIM of mail.example.test was not verified" in result.summary
    assert "PREFLIGHT_DKIM_SELECTORS" in result.remediation


def test_error_when_the_resolver_times_out(silent_dns) -> None:
    env = {"PREFLIGHT_EMAIL_DOMAIN": DOMAIN, "PREFLIGHT_DNS_NAMESERVER": silent_dns}
    result = _run(env, timeout_s=1.5)
    assert result.status is Status.ERROR
    assert "timed out" in result.summary


def test_skipped_without_a_domain() -> None:
    result = _run({"PREFLIGHT_DKIM_SELECTORS": "s1"})
    assert result.status is Status.SKIPPED
    assert result.evidence["missing_settings"] == ["PREFLIGHT_EMAIL_DOMAIN"]


@pytest.mark.parametrize(
    ("record", "terms"),
    [
        ("v=spf1 -all", [("-", "all", "")]),
        (
            "v=spf1 a/24 mx:m.test ip4:1.2.3.4 ~all",
            [("+", "a", ""), ("+", "mx", "m.test"), ("+", "ip4", "1.2.3.4"), ("~", "all", "")],
        ),
        ("v=spf1 redirect=_spf.x.test", [("=", "redirect", "_spf.x.test")]),
    ],
)
def test_spf_terms(record: str, terms: list) -> None:
    assert email_dns.spf_terms(record) == terms


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1 a/24 mx:m.test/24//64 ip4:1.2.3.4 ip6:2001:db8::/32 ~all",
        "v=spf1 include:_spf.google.com include:amazonses.com ?exists:%{i}.x.test -all",
        "v=spf1 redirect=_spf.x.test exp=explain.x.test custom-mod=1",
        "v=spf1 ptr:x.test -all",
    ],
)
def test_valid_spf_syntax(record: str) -> None:
    assert email_dns.spf_syntax_errors(record) == []
