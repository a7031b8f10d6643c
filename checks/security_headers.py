"""The security headers Helmet.js (or the proxy) should send on the frontend and the API."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from checks._net import (
    Deadline,
    TargetReport,
    combine_reports,
    describe_error,
    http_client,
    in_parallel,
    web_targets,
)
from checks.base import Check, CheckContext, Result, Status, skipped, worst

HSTS_MIN_AGE = 15552000  # 180 days, the floor most scanners and preload lists accept
_HASH_OR_NONCE = ("'nonce-", "'sha256-", "'sha384-", "'sha512-", "'strict-dynamic'")


@dataclass(frozen=True)
class HeaderVerdict:
    header: str  # the header (or protection) judged
    status: Status
    finding: str  # short phrase, e.g. "missing" or "max-age=31536000; includeSubDomains"
    fix: str = ""


def csp_directives(policy: str) -> dict[str, list[str]]:
    """`default-src 'self'; script-src 'self' x` -> {"default-src": ["'self'"], ...}."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), [w.lower() for w in words[1:]])
    return directives


def _hsts(headers: httpx.Headers, https: bool) -> HeaderVerdict:
    name = "Strict-Transport-Security"
    fix = f"Send '{name}: max-age=31536000; includeSubDomains' on every HTTPS response."
    if not https:
        return HeaderVerdict(name, Status.FAIL, "page served over plain HTTP", fix)
    value = headers.get(name)
    if value is None:
        return HeaderVerdict(name, Status.FAIL, "missing", fix)
    max_age: int | None = None
    subdomains = False
    for part in value.split(";"):
        key, _, arg = part.strip().partition("=")
        if key.lower() == "max-age":
            try:
                max_age = int(arg.strip().strip('"'))
            except ValueError:
                max_age = None
        elif key.lower() == "includesubdomains":
            subdomains = True
    if max_age is None or max_age < HSTS_MIN_AGE:
        return HeaderVerdict(
            name, Status.FAIL, f"max-age {max_age} below {HSTS_MIN_AGE} ({value!r})", fix
        )
    if not subdomains:
        return HeaderVerdict(name, Status.WARN, f"no includeSubDomains ({value!r})", fix)
    return HeaderVerdict(name, Status.PASS, value)


def _nosniff(headers: httpx.Headers) -> HeaderVerdict:
    name = "X-Content-Type-Options"
    value = headers.get(name)
    if value is not None and value.strip().lower() == "nosniff":
        return HeaderVerdict(name, Status.PASS, value)
    return HeaderVerdict(
        name, Status.FAIL, "missing" if value is None else repr(value), f"Send '{name}: nosniff'."
    )


_ANY_SOURCE = frozenset({"*", "http:", "https:"})  # any host (over a scheme)


def _frames(headers: httpx.Headers, policies: list[dict[str, list[str]]]) -> HeaderVerdict:
    name = "frame protection"
    xfo = headers.get("X-Frame-Options")
    ancestors = next((p["frame-ancestors"] for p in policies if "frame-ancestors" in p), None)
    if ancestors is not None:
        # Browsers obey frame-ancestors over X-Frame-Options, so a wildcard here lets any
        # site frame the page whatever X-Frame-Options says.
        broad = sorted(set(ancestors) & _ANY_SOURCE)
        if broad:
            return HeaderVerdict(
                name,
                Status.FAIL,
                f"CSP frame-ancestors {' '.join(ancestors)} lets any site frame the page",
                "Use frame-ancestors 'none' (or 'self' and the exact origins that may frame it).",
            )
        return HeaderVerdict(name, Status.PASS, f"CSP frame-ancestors {' '.join(ancestors)}")
    if xfo is not None and xfo.strip().upper() in ("DENY", "SAMEORIGIN"):
        return HeaderVerdict(name, Status.PASS, f"X-Frame-Options: {xfo.strip()}")
    return HeaderVerdict(
        name,
        Status.FAIL,
        "no X-Frame-Options DENY/SAMEORIGIN and no CSP frame-ancestors"
        + (f" (X-Frame-Options: {xfo!r})" if xfo else ""),
        "Send 'X-Frame-Options: DENY' (or SAMEORIGIN), or a CSP with frame-ancestors.",
    )


def _referrer(headers: httpx.Headers) -> HeaderVerdict:
    name = "Referrer-Policy"
    value = headers.get(name)
    if value is None or not value.strip():
        return HeaderVerdict(
            name, Status.FAIL, "missing", f"Send '{name}: strict-origin-when-cross-origin'."
        )
    # Browsers use the last policy they understand in a comma-separated list.
    effective = value.split(",")[-1].strip().lower()
    if effective == "unsafe-url":
        return HeaderVerdict(
            name,
            Status.WARN,
            "unsafe-url sends full URLs to other sites",
            f"Use '{name}: strict-origin-when-cross-origin'.",
        )
    return HeaderVerdict(name, Status.PASS, value)


_CSP_FIX = (
    "Restrict scripts: script-src (or default-src) 'self' plus nonces or hashes, with no "
    "'unsafe-inline', 'unsafe-eval', '*', or http:/https:/data: sources (Helmet's default "
    "policy is a good start)."
)


def script_problems(policy: dict[str, list[str]]) -> list[tuple[Status, str]]:
    """What lets scripts run unchecked under one policy, by Mozilla HTTP Observatory's CSP
    test: no script-src/default-src at all, 'unsafe-inline' without a nonce or hash, a
    wildcard or scheme source (*, http:, https:, data:) or an http:// host are FAIL (the
    Observatory deducts 20-25); 'unsafe-eval' and http: sources for passive content (images,
    styles) are WARN (it deducts 10)."""
    directive = "script-src" if "script-src" in policy else "default-src"
    if directive not in policy:
        return [(Status.FAIL, "restricts no script (no script-src or default-src)")]
    sources = policy[directive]
    problems: list[tuple[Status, str]] = []
    strict = any(s.startswith(_HASH_OR_NONCE) for s in sources)
    # With a nonce or hash, CSP2+ browsers ignore 'unsafe-inline'; with 'strict-dynamic'
    # (CSP3) they ignore host and scheme sources too.
    dynamic = "'strict-dynamic'" in sources and strict
    if "'unsafe-inline'" in sources and not strict:
        problems.append((Status.FAIL, f"{directive} allows 'unsafe-inline' scripts"))
    broad = [s for s in sources if s in _ANY_SOURCE or s in ("data:", "blob:", "filesystem:")]
    broad += [s for s in sources if s.startswith("http://")]
    if broad and not dynamic:
        problems.append((Status.FAIL, f"{directive} allows scripts from {' '.join(broad)}"))
    if "'unsafe-eval'" in sources:
        problems.append((Status.WARN, f"{directive} allows 'unsafe-eval'"))
    # Passive content (images, styles, media...) over plain http: Observatory deducts 10.
    plain = sorted(
        name
        for name, values in policy.items()
        if name.endswith("-src")
        and name not in ("script-src", "default-src")
        and any(v == "http:" or v.startswith("http://") for v in values)
    )
    if plain:
        problems.append((Status.WARN, f"{', '.join(plain)} allow plain http: sources"))
    return problems


def _csp(headers: httpx.Headers, policies: list[dict[str, list[str]]]) -> HeaderVerdict:
    name = "Content-Security-Policy"
    if not policies:
        report_only = headers.get("Content-Security-Policy-Report-Only")
        return HeaderVerdict(
            name,
            Status.FAIL,
            "missing"
            + (" (only a Report-Only policy, which is not enforced)" if report_only else ""),
            f"Send an enforcing {name} (Helmet's default is a good start).",
        )
    # Browsers enforce every policy sent, so scripts are as restricted as the strictest one.
    judged = [script_problems(p) for p in policies]
    problems = min(judged, key=lambda found: (len([f for f in found if f[0] is Status.FAIL]),
                                              len(found)))  # fmt: skip
    if problems:
        return HeaderVerdict(
            name,
            worst([status for status, _ in problems]),
            "; ".join(text for _, text in problems),
            _CSP_FIX,
        )
    return HeaderVerdict(name, Status.PASS, "; ".join(headers.get_list(name)))


def _powered_by(headers: httpx.Headers) -> HeaderVerdict:
    name = "X-Powered-By"
    value = headers.get(name)
    if value is None:
        return HeaderVerdict(name, Status.PASS, "absent")
    return HeaderVerdict(
        name,
        Status.FAIL,
        f"present ({value!r}), tells attackers the stack",
        "Remove X-Powered-By (Express: app.disable('x-powered-by'); Helmet does it).",
    )


def judge(headers: httpx.Headers, https: bool) -> list[HeaderVerdict]:
    """A verdict for each header the check asks for."""
    policies = [csp_directives(p) for p in headers.get_list("Content-Security-Policy")]
    return [
        _hsts(headers, https),
        _nosniff(headers),
        _frames(headers, policies),
        _referrer(headers),
        _csp(headers, policies),
        _powered_by(headers),
    ]


def _check(client: httpx.Client, url: str, deadline: Deadline) -> TargetReport:
    try:
        response = client.get(url, timeout=deadline.left())
    except httpx.HTTPError as exc:
        return TargetReport(
            url,
            Status.ERROR,
            f"{url} could not be fetched: {describe_error(exc)}",
            {"error": describe_error(exc)},
            f"Check that {url} is up and reachable from here.",
        )
    verdicts = judge(response.headers, response.url.scheme == "https")
    evidence: dict[str, object] = {
        "status": response.status_code,
        "final_url": str(response.url),
        "headers": {v.header: {"verdict": v.status.value, "observed": v.finding} for v in verdicts},
    }
    status = worst([v.status for v in verdicts])
    if status is Status.PASS:
        return TargetReport(
            url,
            Status.PASS,
            f"{url} (HTTP {response.status_code}) sends HSTS, nosniff, frame protection, "
            "Referrer-Policy and a CSP that restricts scripts, and no X-Powered-By",
            evidence,
            observations=len(verdicts),
        )
    problems = [f"{v.header} {v.finding}" for v in verdicts if v.status is not Status.PASS]
    fixes = " ".join(v.fix for v in verdicts if v.status is not Status.PASS and v.fix)
    return TargetReport(
        url, status, f"{url}: {'; '.join(problems)}", evidence, fixes, len(verdicts)
    )


def run(ctx: CheckContext) -> Result:
    urls = web_targets(ctx)
    if not urls:
        return skipped("FRONTEND_URL", "PREFLIGHT_API_URL")
    deadline = Deadline.for_check(ctx)
    with http_client(ctx, follow_redirects=True, max_redirects=5) as client:
        reports = in_parallel(lambda u: _check(client, u, deadline), urls)
    return combine_reports(reports, "URLs", "headers judged")


CHECK = Check(
    id="security_headers",
    title="Security headers are sent",
    section="Security Requirements",
    run=run,
    settings=("FRONTEND_URL", "PREFLIGHT_API_URL", "PREFLIGHT_CA_BUNDLE"),
    severity="high",
    blocking=True,
    timeout_s=10.0,
    max_age_s=3600,
    description="The security headers Helmet.js (or the proxy) should send",
    criteria=(
        "Per URL (redirects followed): HSTS `max-age` >= 15552000 over HTTPS (missing/shorter "
        "FAIL, no `includeSubDomains` WARN); `X-Content-Type-Options: nosniff`; frame "
        "protection: CSP `frame-ancestors` without `*`/`http:`/`https:` (a wildcard FAILs even "
        "with `X-Frame-Options`, which browsers then ignore), else `X-Frame-Options` "
        "DENY/SAMEORIGIN; `Referrer-Policy` (`unsafe-url` WARN); an enforcing CSP that "
        "restricts scripts (the strictest policy counts): no `script-src`/`default-src`, "
        "`'unsafe-inline'` without a nonce/hash, `*`, `http:`, `https:`, `data:` or `http://` "
        "sources in `script-src` (or `default-src`) FAIL (Observatory deducts 20-25), "
        "`'unsafe-eval'` or `http:` sources in other `*-src` directives (passive content) WARN "
        "(it deducts 10); `'strict-dynamic'` with a nonce/hash makes host "
        "and scheme sources moot; no `X-Powered-By`. Missing or wrong: FAIL. Evidence lists "
        "each header's verdict; PASS names the headers seen, observations = URLs x 6 headers"
    ),
    anchor="Mozilla HTTP Observatory",
)
