"""The sending domain's email authentication records: SPF, DMARC and DKIM."""

from __future__ import annotations

import ipaddress

import dns.resolver

from checks import _dns
from checks._net import Deadline, TargetReport, combine_reports, in_parallel
from checks.base import Check, CheckContext, Result, Status, skipped

MAX_SPF_LOOKUPS = 10  # RFC 7208 section 4.6.4
MAX_VOID_LOOKUPS = 2  # RFC 7208 section 4.6.4; checkdmarc fails a record above it
_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
# Deep include chains are either loops or far past the lookup limit.
_MAX_SPF_DEPTH = 10


def spf_records(values: tuple[str, ...]) -> list[str]:
    """The TXT strings that are SPF records (`v=spf1` followed by a space or nothing)."""
    return [v for v in values if v.lower() == "v=spf1" or v.lower().startswith("v=spf1 ")]


def spf_terms(record: str) -> list[tuple[str, str, str]]:
    """(qualifier, name, value) for each term after `v=spf1`; modifiers get qualifier "="."""
    terms: list[tuple[str, str, str]] = []
    for token in record.split()[1:]:
        if "=" in token and ":" not in token.split("=", 1)[0]:
            name, _, value = token.partition("=")
            terms.append(("=", name.lower(), value))
            continue
        qualifier = token[0] if token[0] in "+-~?" else "+"
        body = token[1:] if token[0] in "+-~?" else token
        name, _, value = body.partition(":")
        name = name.split("/", 1)[0]  # a/24, mx/24
        terms.append((qualifier, name.lower(), value))
    return terms


def _cidr_ok(text: str, limit: int) -> bool:
    return text.isdigit() and int(text) <= limit and (text == "0" or not text.startswith("0"))


def _domain_spec_ok(value: str) -> bool:
    """A domain (or a macro-expanded one): at least two labels, no empty label, no spaces."""
    if "%" in value:
        return bool(value.strip())
    labels = value.rstrip(".").split(".")
    return len(labels) >= 2 and all(0 < len(label) <= 63 for label in labels)


def spf_syntax_errors(record: str) -> list[str]:
    """Terms of an SPF record that RFC 7208 (and checkdmarc's grammar) reject: unknown
    mechanisms (`incldue:`), bad qualifiers, invalid ip4/ip6 addresses and prefix lengths,
    a mechanism missing its required domain, a duplicate redirect/exp."""
    errors: list[str] = []
    modifiers: list[str] = []
    for token in record.split()[1:]:
        head = token.split(":", 1)[0].split("/", 1)[0]
        if "=" in head:  # a modifier: name=value
            name, _, value = token.partition("=")
            if (
                not name
                or not name[0].isalpha()
                or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
            ):
                errors.append(f"'{token}' is not a valid modifier")
            elif name.lower() in ("redirect", "exp"):
                if name.lower() in modifiers:
                    errors.append(f"'{name}=' appears twice")
                modifiers.append(name.lower())
                if not _domain_spec_ok(value):
                    errors.append(f"'{token}' needs a domain")
            continue
        body = token[1:] if token[:1] in "+-~?" else token
        if body[:1] in "+-~?" or not body:
            errors.append(f"'{token}' has an invalid qualifier")
            continue
        name, sep, value = body.partition(":")
        name, _, cidr = name.partition("/")
        name = name.lower()
        if name not in _MECHANISMS:
            errors.append(f"'{token}' is not an SPF mechanism")
        elif name in ("ip4", "ip6"):
            address, _, prefix = value.partition("/")
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                errors.append(f"'{token}' is not a valid {name} address")
                continue
            if parsed.version != int(name[-1]) or (
                prefix and not _cidr_ok(prefix, 32 if name == "ip4" else 128)
            ):
                errors.append(f"'{token}' is not a valid {name} network")
        elif name == "all":
            if sep or cidr:
                errors.append(f"'{token}' takes no argument")
        elif name in ("include", "exists") and not _domain_spec_ok(value):
            errors.append(f"'{token}' needs a domain")
        elif sep and not _domain_spec_ok(value.split("/", 1)[0]):
            errors.append(f"'{token}' has an invalid domain")
        elif cidr and not all(
            _cidr_ok(c, limit) for c, limit in zip(cidr.split("//"), (32, 128), strict=False)
        ):
            errors.append(f"'{token}' has an invalid prefix length")
    return errors


class _SpfWalk:
    """Follows include: and redirect= through DNS, counting the lookups SPF would spend."""

    def __init__(self, res: dns.resolver.Resolver, deadline: Deadline) -> None:
        self.res = res
        self.deadline = deadline
        self.lookups = 0
        self.void_lookups: list[str] = []  # queries that found nothing (NXDOMAIN, no answer)
        self.visited: list[str] = []
        self.problems: list[str] = []  # make the record invalid: FAIL
        self.broken: str | None = None  # a lookup failed: ERROR
        self._fetched: dict[str, str | None] = {}

    def fetch(self, domain: str) -> str | None:
        """The one SPF record of a referenced domain (None, with the problem noted, if not)."""
        if domain not in self._fetched:
            self._fetched[domain] = self._fetch(domain)
        return self._fetched[domain]

    def _fetch(self, domain: str) -> str | None:
        answer = _dns.lookup(self.res, domain, "TXT", self.deadline)
        if answer.broken:
            self.broken = f"TXT {domain}: {answer.reason}"
            return None
        if not answer.found:
            self.void_lookups.append(f"TXT {domain}")
        found = spf_records(answer.values) if answer.found else []
        if len(found) != 1:
            what = "no SPF record" if not found else f"{len(found)} SPF records"
            self.problems.append(f"{domain} (referenced by the SPF record) has {what}")
            return None
        return found[0]

    def resolves(self, rdtypes: tuple[str, ...], name: str) -> None:
        """Query a/mx/exists targets as a receiver would, to count void lookups."""
        for rdtype in rdtypes:
            answer = _dns.lookup(self.res, name, rdtype, self.deadline)
            if answer.broken:
                self.broken = f"{rdtype} {name}: {answer.reason}"
                return
            if answer.found or answer.outcome is _dns.Outcome.NXDOMAIN:
                break
        if not answer.found:
            self.void_lookups.append(f"{'/'.join(rdtypes)} {name}")

    def walk(self, domain: str, record: str, depth: int = 0) -> None:
        self.visited.append(domain)
        terms = spf_terms(record)
        has_all = any(name == "all" for _, name, _ in terms)
        errors = spf_syntax_errors(record)
        if errors:
            where = "" if depth == 0 else f" (in the record of {domain})"
            self.problems.extend(f"{e}{where}" for e in errors)
        for qualifier, name, value in terms:
            if self.broken or self.lookups > MAX_SPF_LOOKUPS:
                return
            counts = name in _LOOKUP_MECHANISMS or (name == "redirect" and qualifier == "=")
            if not counts:
                continue
            self.lookups += 1
            if name in ("a", "mx", "exists") and "%" not in value:
                target = (value.split("/", 1)[0] or domain).rstrip(".").lower()
                if name == "exists" or _domain_spec_ok(target):
                    self.resolves({"a": ("A", "AAAA"), "mx": ("MX",)}.get(name, ("A",)), target)
                continue
            follow = name == "include" or (name == "redirect" and not has_all)
            if not follow or not value:
                continue
            if "%" in value:
                self.visited.append(f"{value} (macro, not expanded)")
                continue
            target = value.rstrip(".").lower()
            if target in self.visited or depth >= _MAX_SPF_DEPTH:
                self.problems.append(f"SPF include loop through {target}")
                return
            included = self.fetch(target)
            if included is not None:
                self.walk(target, included, depth + 1)


def effective_all(record: str, walk: _SpfWalk) -> str | None:
    """The qualifier of the `all` that ends evaluation, following redirect= if there is none."""
    terms = spf_terms(record)
    for qualifier, name, _ in terms:
        if name == "all":
            return qualifier
    redirect = next((v for q, n, v in terms if q == "=" and n == "redirect"), None)
    if redirect and "%" not in redirect and not walk.broken:
        target = walk.fetch(redirect.rstrip(".").lower())
        if target is not None:
            return next((q for q, n, _ in spf_terms(target) if n == "all"), None)
    return None


def check_spf(domain: str, res: dns.resolver.Resolver, deadline: Deadline) -> TargetReport:
    label = "SPF"
    answer = _dns.lookup(res, domain, "TXT", deadline)
    if answer.broken:
        return TargetReport(
            label,
            Status.ERROR,
            f"could not read the SPF record of {domain}: {answer.reason}",
            {"error": answer.detail or answer.outcome.value},
            "Check that the DNS resolver answers.",
        )
    records = spf_records(answer.values) if answer.found else []
    evidence: dict[str, object] = {"records": records}
    if not records:
        return TargetReport(
            label,
            Status.FAIL,
            f"{domain} has no SPF record",
            evidence,
            f"Publish one TXT record at {domain} starting with 'v=spf1' that lists your "
            "email provider (e.g. 'v=spf1 include:amazonses.com -all').",
        )
    if len(records) > 1:
        return TargetReport(
            label,
            Status.FAIL,
            f"{domain} has {len(records)} SPF records (receivers treat that as an error)",
            evidence,
            "Merge the SPF records into one TXT record.",
        )
    walk = _SpfWalk(res, deadline)
    walk.walk(domain, records[0])
    final_all = effective_all(records[0], walk)
    evidence.update(
        dns_lookups=walk.lookups if walk.lookups <= MAX_SPF_LOOKUPS else f">{MAX_SPF_LOOKUPS}",
        void_lookups=walk.void_lookups,
        domains_followed=walk.visited,
        all=f"{final_all}all" if final_all else "none",
    )
    if walk.broken:
        evidence["error"] = walk.broken
        return TargetReport(
            label,
            Status.ERROR,
            f"could not follow the SPF record of {domain}: {walk.broken}",
            evidence,
            "Check that the DNS resolver answers.",
        )
    fails: list[str] = list(walk.problems)
    if walk.lookups > MAX_SPF_LOOKUPS:
        fails.append(f"needs more than {MAX_SPF_LOOKUPS} DNS lookups")
    if len(walk.void_lookups) > MAX_VOID_LOOKUPS:
        fails.append(
            f"{len(walk.void_lookups)} void DNS lookups (more than {MAX_VOID_LOOKUPS}): "
            + ", ".join(walk.void_lookups)
        )
    if final_all in ("+", "?"):
        fails.append(f"ends in '{final_all}all', which lets anyone send as {domain}")
    if fails:
        return TargetReport(
            label,
            Status.FAIL,
            f"SPF record of {domain} is not safe: {'; '.join(fails)}",
            evidence,
            "Fix the record's syntax, flatten or trim includes to at most 10 lookups, remove "
            "mechanisms that point at names without records, and end the record with '-all' "
            "or '~all'.",
        )
    if final_all is None:
        return TargetReport(
            label,
            Status.WARN,
            f"SPF record of {domain} has no 'all' mechanism (unlisted senders are neutral)",
            evidence,
            "End the SPF record with '-all' or '~all'.",
        )
    return TargetReport(
        label,
        Status.PASS,
        f"SPF record of {domain} parsed ({len(walk.visited)} record(s) followed, "
        f"{walk.lookups} DNS lookups, {len(walk.void_lookups)} void) and ends in "
        f"'{final_all}all'",
        evidence,
        observations=len(walk.visited),
    )


def tags(record: str) -> dict[str, str]:
    """`v=DMARC1; p=reject; rua=mailto:x` -> {"v": "DMARC1", "p": "reject", ...}."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


def check_dmarc(domain: str, res: dns.resolver.Resolver, deadline: Deadline) -> TargetReport:
    label = "DMARC"
    name = f"_dmarc.{domain}"
    answer = _dns.lookup(res, name, "TXT", deadline)
    if answer.broken:
        return TargetReport(
            label,
            Status.ERROR,
            f"could not read the DMARC record at {name}: {answer.reason}",
            {"error": answer.detail or answer.outcome.value},
            "Check that the DNS resolver answers.",
        )
    records = [v for v in answer.values if v.lower().startswith("v=dmarc1")] if answer.found else []
    evidence: dict[str, object] = {"name": name, "records": records}
    fix = f"Publish 'v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}' at {name}."
    if not records:
        return TargetReport(label, Status.FAIL, f"{domain} has no DMARC record", evidence, fix)
    if len(records) > 1:
        return TargetReport(
            label,
            Status.FAIL,
            f"{domain} has {len(records)} DMARC records (receivers ignore them all)",
            evidence,
            "Keep exactly one DMARC record.",
        )
    record = tags(records[0])
    policy = record.get("p", "").lower()
    evidence.update(policy=policy or "missing", rua="rua" in record)
    if policy not in ("none", "quarantine", "reject"):
        return TargetReport(
            label,
            Status.FAIL,
            f"DMARC record of {domain} has no valid policy (p={policy or 'missing'})",
            evidence,
            fix,
        )
    warnings: list[str] = []
    fixes: list[str] = []
    if policy == "none":
        warnings.append("p=none only monitors")
        fixes.append("Move to p=quarantine or p=reject once the reports look clean.")
    if "rua" not in record:
        warnings.append("no rua= address receives aggregate reports")
        fixes.append(f"Add rua=mailto:dmarc@{domain} (or your DMARC service) to get reports.")
    if warnings:
        return TargetReport(
            label,
            Status.WARN,
            f"DMARC record of {domain}: {' and '.join(warnings)}",
            evidence,
            " ".join(fixes),
        )
    return TargetReport(
        label, Status.PASS, f"DMARC record of {domain} has p={policy} with reports", evidence
    )


def check_dkim(
    domain: str, selector: str, res: dns.resolver.Resolver, deadline: Deadline
) -> TargetReport:
    label = f"DKIM {selector}"
    name = f"{selector}._domainkey.{domain}"
    answer = _dns.lookup(res, name, "TXT", deadline)
    evidence: dict[str, object] = {"name": name}
    if answer.broken:
        return TargetReport(
            label,
            Status.ERROR,
            f"could not read the DKIM key at {name}: {answer.reason}",
            {**evidence, "error": answer.detail or answer.outcome.value},
            "Check that the DNS resolver answers.",
        )
    keys = [tags(v) for v in answer.values if "p" in tags(v)] if answer.found else []
    if answer.canonical_name:
        evidence["canonical_name"] = answer.canonical_name
    if not keys:
        evidence["answer"] = answer.outcome.value if not answer.found else "no p= tag"
        return TargetReport(
            label,
            Status.FAIL,
            f"DKIM selector {selector} of {domain} has no key at {name}",
            evidence,
            f"Publish the DKIM record your email provider gives you at {name}.",
        )
    key = keys[0].get("p", "").replace(" ", "")
    # The key is public, but its length says enough and keeps evidence readable.
    evidence.update(key_type=keys[0].get("k", "rsa"), public_key_chars=len(key))
    if not key:
        return TargetReport(
            label,
            Status.FAIL,
            f"DKIM selector {selector} of {domain} has an empty key (p=, revoked)",
            evidence,
            f"Publish the current DKIM public key at {name}.",
        )
    return TargetReport(
        label, Status.PASS, f"DKIM selector {selector} of {domain} publishes a key", evidence
    )


def run(ctx: CheckContext) -> Result:
    domain = ctx.setting("PREFLIGHT_EMAIL_DOMAIN")
    if not domain:
        return skipped("PREFLIGHT_EMAIL_DOMAIN")
    domain = domain.rstrip(".").lower()
    selectors_text = ctx.setting("PREFLIGHT_DKIM_SELECTORS") or ""
    selectors = [s.strip() for s in selectors_text.split(",") if s.strip()]
    try:
        res = _dns.resolver(ctx)
    except _dns.NameserverSettingError as exc:
        return Result(
            Status.ERROR,
            f"email DNS for {domain} could not be checked: {exc}",
            remediation=f"Fix {_dns.NAMESERVER_SETTING} (host or host:port).",
        )
    deadline = Deadline.for_check(ctx)

    def part(which: str) -> TargetReport:
        if which == "spf":
            return check_spf(domain, res, deadline)
        if which == "dmarc":
            return check_dmarc(domain, res, deadline)
        return check_dkim(domain, which.removeprefix("dkim:"), res, deadline)

    reports = in_parallel(part, ["spf", "dmarc", *(f"dkim:{s}" for s in selectors)])
    if not selectors:
        reports.append(
            TargetReport(
                "DKIM",
                Status.WARN,
                f"DKIM of {domain} was not verified (no selectors configured)",
                {"selectors": []},
                "Set PREFLIGHT_DKIM_SELECTORS to the selectors your email provider uses.",
            )
        )
    return combine_reports(reports, "records", "records parsed")


CHECK = Check(
    id="email_dns",
    title="SPF, DKIM and DMARC are published for the sending domain",
    section="Integration Services",
    run=run,
    settings=("PREFLIGHT_EMAIL_DOMAIN", "PREFLIGHT_DKIM_SELECTORS", _dns.NAMESERVER_SETTING),
    severity="high",
    blocking=True,
    timeout_s=10.0,
    max_age_s=6 * 3600,
    description="SPF, DMARC and DKIM are published for the sending domain",
    criteria=(
        "SPF, by checkdmarc's rules: exactly one `v=spf1` record; FAIL on a syntax error in it "
        "or any record it includes (unknown mechanism such as `incldue:`, bad qualifier, "
        "invalid `ip4:`/`ip6:` address or prefix, missing domain, duplicate `redirect=`), more "
        "than 10 DNS lookups counted through includes and redirects, more than 2 void lookups "
        "(NXDOMAIN or empty answers while resolving include/a/mx/exists/redirect; the names "
        "are listed), an include without an SPF record, a loop, or `+all`/`?all`; no `all` "
        "WARN. DMARC at `_dmarc.<domain>`: missing FAIL, `p=none` or no `rua` WARN. DKIM: each "
        "selector has a non-empty `p=` at `<selector>._domainkey.<domain>` (FAIL otherwise); "
        "no selectors configured: WARN. PASS names the records parsed; a resolver failure is "
        "ERROR"
    ),
    anchor="checkdmarc",
)
