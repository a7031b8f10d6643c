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


def _frames(headers: httpx.Headers, policies: list[dict[str, list[str]]]) -> HeaderVerdict:
    name = "frame protection"
    xfo = headers.get("X-Frame-Options")
    ancestors = next((p["frame-ancestors"] for p in policies if "frame-ancestors" in p), None)
    if ancestors is not None:
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
    for policy in policies:
        scripts = policy.get("script-src", policy.get("default-src", []))
        # With a nonce or hash present, CSP2+ browsers ignore 'unsafe-inline'.
        if "'unsafe-inline'" in scripts and not any(s.startswith(_HASH_OR_NONCE) for s in scripts):
            return HeaderVerdict(
                name,
                Status.WARN,
                "allows 'unsafe-inline' scripts",
                "Remove 'unsafe-inline' from script-src (use nonces or hashes).",
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
            f"{url} sends HSTS, nosniff, frame protection, Referrer-Policy and a CSP, "
            "and no X-Powered-By",
            evidence,
        )
    problems = [f"{v.header} {v.finding}" for v in verdicts if v.status is not Status.PASS]
    fixes = " ".join(v.fix for v in verdicts if v.status is not Status.PASS and v.fix)
    return TargetReport(url, status, f"{url}: {'; '.join(problems)}", evidence, fixes)


def run(ctx: CheckContext) -> Result:
    urls = web_targets(ctx)
    if not urls:
        return skipped("FRONTEND_URL", "PREFLIGHT_API_URL")
    deadline = Deadline.for_check(ctx)
    with http_client(ctx, follow_redirects=True, max_redirects=5) as client:
        reports = in_parallel(lambda u: _check(client, u, deadline), urls)
    return combine_reports(reports, "URLs")


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
    description=(
        "GET FRONTEND_URL and PREFLIGHT_API_URL (following redirects) and judge the final "
        f"response: HSTS max-age >= {HSTS_MIN_AGE} over HTTPS (missing/shorter FAIL, no "
        "includeSubDomains WARN); X-Content-Type-Options nosniff; X-Frame-Options DENY/"
        "SAMEORIGIN or CSP frame-ancestors; Referrer-Policy (unsafe-url WARN); an enforcing "
        "CSP (WARN when scripts may run 'unsafe-inline'); no X-Powered-By. Missing or wrong "
        "headers FAIL."
    ),
)
