"""dns_records against a local DNS server (dnslib), queried through dnspython."""

from __future__ import annotations

import pytest

from checks import _dns, dns_records
from checks.base import CheckContext, Result, Status
from checks.runner import run_one


def _run(env: dict[str, str], timeout_s: float = 5.0) -> Result:
    return run_one(dns_records.CHECK, CheckContext(env=env, timeout_s=timeout_s))


def _checklist_zone(dns_server) -> None:
    dns_server.add("tpx.power100.io", "A", "203.0.113.10")
    dns_server.add("api.tpx.power100.io", "A", "203.0.113.20")
    dns_server.add("*.partner.power100.io", "CNAME", "partners.example.net")


def test_defaults_from_the_checklist_pass(dns_server) -> None:
    _checklist_zone(dns_server)
    result = _run({"PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver})
    assert result.status is Status.PASS, result.summary
    assert result.evidence["records_from"] == "the checklist (defaults)"
    targets = result.evidence["targets"]
    assert targets["A tpx.power100.io"]["answers"] == ["203.0.113.10"]
    wildcard = targets["CNAME *.partner.power100.io"]
    assert wildcard["queried"] == "preflight-check.partner.power100.io"
    assert wildcard["answers"] == ["partners.example.net"]
    # Only the local server was asked, for exactly these names.
    assert sorted(dns_server.resolver.queries) == [
        ("api.tpx.power100.io", "A"),
        ("preflight-check.partner.power100.io", "CNAME"),
        ("tpx.power100.io", "A"),
    ]


def test_expected_values_match(dns_server) -> None:
    _checklist_zone(dns_server)
    dns_server.add("api.tpx.power100.io", "A", "203.0.113.21")
    env = {
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_DNS_RECORDS": (
            "A api.tpx.power100.io=203.0.113.20;\n"
            "CNAME *.partner.power100.io=Partners.Example.NET.;"
            "A tpx.power100.io"
        ),
    }
    result = _run(env)
    assert result.status is Status.PASS, result.summary
    # Extra answers are shown, not judged.
    assert result.evidence["targets"]["A api.tpx.power100.io"]["answers"] == [
        "203.0.113.20",
        "203.0.113.21",
    ]


def test_fail_on_a_wrong_value(dns_server) -> None:
    _checklist_zone(dns_server)
    env = {
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_DNS_RECORDS": "A api.tpx.power100.io=198.51.100.7; A tpx.power100.io",
    }
    result = _run(env)
    assert result.status is Status.FAIL
    assert "resolves to 203.0.113.20, expected 198.51.100.7" in result.summary
    assert "(1 of 2 records passed)" in result.summary
    assert "198.51.100.7" in result.remediation


def test_fail_on_nxdomain_and_on_no_answer(dns_server) -> None:
    dns_server.add("tpx.power100.io", "AAAA", "2001:db8::1")  # exists, but has no A record
    result = _run({"PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver})
    assert result.status is Status.FAIL
    targets = result.evidence["targets"]
    assert targets["A tpx.power100.io"]["answer"] == _dns.Outcome.NO_ANSWER.value
    assert targets["A api.tpx.power100.io"]["answer"] == _dns.Outcome.NXDOMAIN.value
    assert "Create the A record" in result.remediation


def test_a_record_reached_through_a_cname_chain(dns_server) -> None:
    dns_server.add("tpx.power100.io", "CNAME", "lb-123.elb.example.net")
    dns_server.add("lb-123.elb.example.net", "A", "203.0.113.30")
    env = {
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_DNS_RECORDS": "A tpx.power100.io=203.0.113.30",
    }
    result = _run(env)
    assert result.status is Status.PASS
    record = result.evidence["targets"]["A tpx.power100.io"]
    assert record["canonical_name"] == "lb-123.elb.example.net"


def test_txt_and_mx_values(dns_server) -> None:
    dns_server.add("example.test", "TXT", "hello world")
    dns_server.add("example.test", "MX", "10 mail.example.test.")
    env = {
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_DNS_RECORDS": (
            "TXT example.test=hello world; MX example.test=10 Mail.Example.test"
        ),
    }
    assert _run(env).status is Status.PASS


def test_error_when_the_resolver_times_out(silent_dns) -> None:
    env = {"PREFLIGHT_DNS_NAMESERVER": silent_dns, "PREFLIGHT_DNS_RECORDS": "A tpx.power100.io"}
    result = _run(env, timeout_s=1.5)
    assert result.status is Status.ERROR
    assert "resolver timed out" in result.summary


def test_error_on_servfail(dns_server) -> None:
    dns_server.servfail = True
    result = _run({"PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver})
    assert result.status is Status.ERROR
    detail = result.evidence["targets"]["A tpx.power100.io"]["error"]
    assert "SERVFAIL" in detail


@pytest.mark.parametrize("rcode", ["REFUSED", "SERVFAIL"])
def test_a_refusing_nameserver_is_named_with_its_rcode_and_asked_once(
    dns_server, rcode: str
) -> None:
    setattr(dns_server, rcode.lower() if rcode == "SERVFAIL" else "refused", True)
    env = {
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_DNS_RECORDS": "A app.example.test",
    }
    result = _run(env)
    assert result.status is Status.ERROR
    assert (
        f"could not resolve A app.example.test: nameserver {dns_server.nameserver} answered {rcode}"
    ) in result.summary
    # Not retried: one question, one answer (no loop until the deadline).
    assert dns_server.resolver.queries == [("app.example.test", "A")]


def test_a_nameserver_with_nothing_listening_is_named(dns_server) -> None:
    from tests.support.tls_servers import free_port

    address = f"127.0.0.1:{free_port()}"  # ICMP port unreachable, not a lost packet
    env = {"PREFLIGHT_DNS_NAMESERVER": address, "PREFLIGHT_DNS_RECORDS": "A app.example.test"}
    result = _run(env)
    assert result.status is Status.ERROR
    assert f"nameserver {address} refused the connection" in result.summary
    assert "timed out" not in result.summary


def test_pass_names_the_answers_read(dns_server) -> None:
    dns_server.add("app.example.test", "A", "10.0.0.1")
    dns_server.add("api.example.test", "A", "10.0.0.2")
    env = {
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_DNS_RECORDS": "A app.example.test; A api.example.test=10.0.0.2",
    }
    result = _run(env)
    assert result.status is Status.PASS
    assert result.observations == 2
    assert "(2 answers read)" in result.summary


@pytest.mark.parametrize(
    "records",
    ["A", "A a.example b.example", "BOGUS a.example", "A a.example="],
)
def test_error_on_a_malformed_setting(records: str, dns_server) -> None:
    env = {"PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver, "PREFLIGHT_DNS_RECORDS": records}
    result = _run(env)
    assert result.status is Status.ERROR
    assert "PREFLIGHT_DNS_RECORDS" in result.summary


def test_error_on_a_malformed_nameserver() -> None:
    result = _run({"PREFLIGHT_DNS_NAMESERVER": "127.0.0.1:notaport"})
    assert result.status is Status.ERROR
    assert "invalid port" in result.summary


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A a.example", [dns_records.ExpectedRecord("A", "a.example")]),
        (
            "a A.Example.=1.2.3.4, 5.6.7.8",
            [dns_records.ExpectedRecord("A", "a.example", ("1.2.3.4", "5.6.7.8"))],
        ),
        (
            " ; CNAME *.p.example=x.example ;\n",
            [dns_records.ExpectedRecord("CNAME", "*.p.example", ("x.example",))],
        ),
    ],
)
def test_parse_records(text: str, expected: list) -> None:
    assert dns_records.parse_records(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_nameserver(value: str, expected: tuple[str, int]) -> None:
    assert _dns.parse_nameserver(value) == expected
