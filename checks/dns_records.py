"""The DNS records the launch needs resolve, to the expected values where given.

PREFLIGHT_DNS_RECORDS lists them, separated by `;` or new lines, each `TYPE NAME[=VALUE,...]`:

    A tpx.power100.io; A api.tpx.power100.io=1.2.3.4; CNAME *.partner.power100.io=p.example.net

A record without `=` only has to exist. With values, every listed value must be among the
answers (other answers are shown, not judged). A wildcard name (`*.zone`) is tested by
querying a sample label under it (`preflight-check.zone`). Without the setting, the records
the checklist names are checked.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass

import dns.rdatatype
import dns.resolver

from checks import _dns
from checks._net import Deadline, TargetReport, combine_reports, in_parallel
from checks.base import Check, CheckContext, Result, Status

SETTING = "PREFLIGHT_DNS_RECORDS"
# From the checklist's "Domain & DNS" and "Partner Subdomain Routing" items.
DEFAULT_RECORDS = "A tpx.power100.io; A api.tpx.power100.io; CNAME *.partner.power100.io"
SAMPLE_LABEL = "preflight-check"


class RecordSpecError(Exception):
    """PREFLIGHT_DNS_RECORDS has an entry that is not `TYPE NAME[=VALUE,...]`."""


@dataclass(frozen=True)
class ExpectedRecord:
    rdtype: str
    name: str
    values: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.rdtype} {self.name}"

    @property
    def query_name(self) -> str:
        """The name actually queried: a sample label stands in for a wildcard."""
        if self.name.startswith("*."):
            return f"{SAMPLE_LABEL}.{self.name[2:]}"
        return self.name


def parse_records(text: str) -> list[ExpectedRecord]:
    """Parse the PREFLIGHT_DNS_RECORDS format (see the module docstring)."""
    records: list[ExpectedRecord] = []
    for raw in text.replace("\n", ";").split(";"):
        entry = raw.strip()
        if not entry:
            continue
        spec, has_values, values_text = entry.partition("=")
        words = spec.split()
        if len(words) != 2:
            raise RecordSpecError(f"{SETTING} entry {entry!r} is not 'TYPE NAME[=VALUE,...]'")
        rdtype, name = words[0].upper(), words[1].rstrip(".").lower()
        try:
            dns.rdatatype.from_text(rdtype)
        except dns.rdatatype.UnknownRdatatype as exc:
            raise RecordSpecError(f"{SETTING} entry {entry!r}: unknown type {rdtype}") from exc
        values = tuple(v.strip() for v in values_text.split(",") if v.strip())
        if has_values and not values:
            raise RecordSpecError(f"{SETTING} entry {entry!r} has '=' but no value")
        records.append(ExpectedRecord(rdtype, name, values))
    return records


def normalize(rdtype: str, value: str) -> str:
    """A value in the form answers are compared in."""
    value = value.strip()
    if rdtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if rdtype == "TXT":
        return value.strip('"')
    return " ".join(word.rstrip(".") for word in value.lower().split())


def _check_record(
    record: ExpectedRecord, res: dns.resolver.Resolver, deadline: Deadline
) -> TargetReport:
    queried = record.query_name
    answer = _dns.lookup(res, queried, record.rdtype, deadline)
    evidence: dict[str, object] = {"queried": queried, "type": record.rdtype}
    if record.values:
        evidence["expected"] = list(record.values)
    shown = record.label if queried == record.name else f"{record.label} (as {queried})"
    if answer.broken:
        evidence["error"] = f"{answer.outcome.value}: {answer.detail}".rstrip(": ")
        return TargetReport(
            record.label,
            Status.ERROR,
            f"could not resolve {shown}: {answer.reason}",
            evidence,
            "Check that the resolver in PREFLIGHT_DNS_NAMESERVER (or the system's) answers.",
        )
    if not answer.found:
        evidence["answer"] = answer.outcome.value
        return TargetReport(
            record.label,
            Status.FAIL,
            f"{shown} does not resolve: {answer.outcome.value}",
            evidence,
            f"Create the {record.rdtype} record for {record.name} at your DNS provider.",
        )
    evidence["answers"] = list(answer.values)
    if answer.canonical_name:
        evidence["canonical_name"] = answer.canonical_name
    got = {normalize(record.rdtype, v) for v in answer.values}
    missing = [v for v in record.values if normalize(record.rdtype, v) not in got]
    answers = ", ".join(answer.values)
    if missing:
        return TargetReport(
            record.label,
            Status.FAIL,
            f"{shown} resolves to {answers}, expected {', '.join(record.values)}",
            evidence,
            f"Point the {record.rdtype} record for {record.name} at {', '.join(missing)}.",
        )
    return TargetReport(
        record.label, Status.PASS, f"{shown} resolves to {answers}", evidence, observations=1
    )


def run(ctx: CheckContext) -> Result:
    configured = ctx.setting(SETTING)
    try:
        records = parse_records(configured or DEFAULT_RECORDS)
        res = _dns.resolver(ctx)
    except (RecordSpecError, _dns.NameserverSettingError) as exc:
        return Result(
            Status.ERROR,
            f"DNS records could not be checked: {exc}",
            remediation=f"Fix {SETTING} / {_dns.NAMESERVER_SETTING}; see the check's description.",
        )
    if not records:
        return Result(
            Status.ERROR,
            f"{SETTING} lists no records",
            remediation=f"List records in {SETTING}, e.g. 'A app.example.com'.",
        )
    deadline = Deadline.for_check(ctx)
    reports = in_parallel(lambda r: _check_record(r, res, deadline), records)
    result = combine_reports(reports, "records", "answers read")
    evidence = {
        **result.evidence,
        "records_from": SETTING if configured else "the checklist (defaults)",
        "nameserver": ctx.setting(_dns.NAMESERVER_SETTING) or "system resolver",
    }
    return dataclasses.replace(result, evidence=evidence)


CHECK = Check(
    id="dns_records",
    title="DNS records resolve as expected",
    section="Production Infrastructure Readiness",
    run=run,
    settings=(SETTING, _dns.NAMESERVER_SETTING),
    severity="high",
    blocking=True,
    timeout_s=10.0,
    max_age_s=3600,
    description=("The DNS records the launch needs resolve, to the expected values where given"),
    criteria=(
        "FAIL: NXDOMAIN, no record of the type, or an expected value missing from the answers "
        "(extra answers are shown, not judged). A wildcard name is queried as "
        "`preflight-check.<zone>`. ERROR naming the nameserver and what it did: REFUSED or "
        "SERVFAIL (not retried), nothing listening (noticed at once over a connected UDP "
        "socket), or a timeout within the check's deadline. PASS names each answer read"
    ),
    anchor="the checklist's nslookup (dnspython)",
)
