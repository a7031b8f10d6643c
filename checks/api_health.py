"""The API answers an authenticated request with JSON, fast, and refuses it without a token."""

from __future__ import annotations

import json
import time

import httpx

from checks._net import Deadline, describe_error, http_client
from checks.base import Check, CheckContext, Finding, Result, Status, skipped, worst

DEFAULT_PATH = "/api/partner-portal/leads/stats"
DEFAULT_LATENCY_MS = 1000


def health_url(ctx: CheckContext) -> str | None:
    """PREFLIGHT_API_URL joined with PREFLIGHT_API_HEALTH_PATH (None without an API URL)."""
    base = ctx.setting("PREFLIGHT_API_URL")
    if not base:
        return None
    path = ctx.setting("PREFLIGHT_API_HEALTH_PATH", DEFAULT_PATH) or DEFAULT_PATH
    return base.rstrip("/") + "/" + path.lstrip("/")


def _latency_budget(ctx: CheckContext) -> int:
    text = ctx.setting("PREFLIGHT_API_LATENCY_MS")
    if text is None:
        return DEFAULT_LATENCY_MS
    try:
        return max(int(float(text)), 1)
    except ValueError:
        return DEFAULT_LATENCY_MS


def run(ctx: CheckContext) -> Result:
    url = health_url(ctx)
    if url is None:
        return skipped("PREFLIGHT_API_URL")
    token = ctx.setting("PREFLIGHT_API_TOKEN")
    if token is None:
        return skipped(
            "PREFLIGHT_API_TOKEN",
            why=f"not configured: set PREFLIGHT_API_TOKEN to call {url} as a client would",
        )
    budget_ms = _latency_budget(ctx)
    deadline = Deadline.for_check(ctx)
    evidence: dict[str, object] = {"url": url, "latency_budget_ms": budget_ms}
    try:
        with http_client(ctx) as client:
            started = time.monotonic()
            response = client.get(
                url,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=deadline.left(),
            )
            latency_ms = round((time.monotonic() - started) * 1000)
            anonymous = client.get(
                url, headers={"Accept": "application/json"}, timeout=deadline.left()
            )
    except httpx.HTTPError as exc:
        return Result(
            Status.ERROR,
            f"API at {url} could not be reached: {describe_error(exc)}",
            evidence=evidence,
            remediation="Check that the API is running and reachable from here, and that "
            "PREFLIGHT_API_URL is right.",
        )

    content_type = response.headers.get("content-type", "")
    evidence.update(
        status=response.status_code,
        latency_ms=latency_ms,
        content_type=content_type,
        status_without_token=anonymous.status_code,
    )
    findings: list[Finding] = []
    if response.status_code != 200:
        location = response.headers.get("location")
        if location:
            evidence["location"] = location
        findings.append(
            (
                Status.FAIL,
                f"answers {response.status_code} with the token",
                "Check the route and the token (PREFLIGHT_API_TOKEN); it should answer 200.",
            )
        )
    else:
        try:
            body = json.loads(response.content)
            evidence["json"] = type(body).__name__
        except (ValueError, UnicodeDecodeError):
            findings.append(
                (
                    Status.FAIL,
                    f"answers 200 but not with JSON (content-type {content_type or 'none'})",
                    "The endpoint should return its JSON payload; a HTML page usually means "
                    "the request reached the frontend or a proxy error page.",
                )
            )
    if anonymous.status_code not in (401, 403):
        findings.append(
            (
                Status.FAIL,
                f"answers {anonymous.status_code} without a token (expected 401 or 403)",
                "Require authentication on this endpoint.",
            )
        )
    if latency_ms > budget_ms:
        findings.append(
            (
                Status.WARN,
                f"took {latency_ms} ms (budget {budget_ms} ms)",
                "Find out why the API is slow (database, cold start, region).",
            )
        )

    if not findings:
        return Result(
            Status.PASS,
            f"API at {url} answers 200 with JSON in {latency_ms} ms and "
            f"{anonymous.status_code} without a token",
            evidence=evidence,
        )
    return Result(
        worst([s for s, _, _ in findings]),
        f"API at {url} " + " and ".join(text for _, text, _ in findings),
        evidence=evidence,
        remediation=" ".join(fix for _, _, fix in findings),
    )


CHECK = Check(
    id="api_health",
    title="API answers authenticated requests, and only those",
    section="Phase 3 Completion Verification",
    run=run,
    settings=(
        "PREFLIGHT_API_URL",
        "PREFLIGHT_API_TOKEN",
        "PREFLIGHT_API_HEALTH_PATH",
        "PREFLIGHT_API_LATENCY_MS",
        "PREFLIGHT_CA_BUNDLE",
    ),
    severity="critical",
    blocking=True,
    timeout_s=10.0,
    max_age_s=900,
    description=(
        "GET PREFLIGHT_API_URL + PREFLIGHT_API_HEALTH_PATH (default "
        f"{DEFAULT_PATH}) with 'Authorization: Bearer PREFLIGHT_API_TOKEN': PASS on 200 with a "
        f"JSON body within PREFLIGHT_API_LATENCY_MS (default {DEFAULT_LATENCY_MS}; slower: "
        "WARN). FAIL on any other status, a non-JSON body, or when the same request without "
        "the token gets anything but 401/403."
    ),
)
