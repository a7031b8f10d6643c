"""The API answers an authenticated request with JSON that says it is up, fast, and refuses
it without a token.

A 200 is not enough: the body must show the API working.
- Always: the body is a JSON object or a non-empty array (`null`, `[]`, `{}`, a bare string
  or number, an HTML page: FAIL), and health fields, where present, do not say down. Health
  fields, at the top level, as in the IETF "Health Check Response Format for HTTP APIs"
  draft and the usual frameworks: `status`/`state`/`health` of down/fail/error/unhealthy/...
  is FAIL, warn/degraded WARN; `healthy`/`ok`/`up`/`alive`/`ready`/`success` false is FAIL;
  a non-empty top-level `error`/`errors` is FAIL.
- PREFLIGHT_API_HEALTH_EXPECT (optional) states the expected shape: comma-separated
  conditions on dotted paths into the body, `path=value` (alternatives with `|`, compared
  case-insensitively with the JSON value written as JSON: `true`, `null`, `3`) or `path`
  alone (present and not null/false/empty). Example: `status=ok|pass, db.connected=true`.
  An unmet condition is FAIL naming the path and what was there.
Evidence shows the health fields judged (cut at 40 characters) and the body's shape (type and
top-level key names), nothing else of the body.
"""

from __future__ import annotations

import json
import time

import httpx

from checks._net import Deadline, describe_error, http_client
from checks.base import Check, CheckContext, Finding, Result, Status, skipped, worst

DEFAULT_PATH = "/api/partner-portal/leads/stats"
DEFAULT_LATENCY_MS = 1000
_SHOWN_CHARS = 40

_STATUS_FIELDS = ("status", "state", "health")
_FLAG_FIELDS = ("healthy", "ok", "up", "alive", "ready", "success")
_ERROR_FIELDS = ("error", "errors")
_DOWN = frozenset(
    {
        *("down", "fail", "failed", "failing", "failure", "error", "errored", "unhealthy"),
        *("critical", "fatal", "ko", "not ok", "offline", "unavailable", "outage", "dead"),
        *("red", "stopped", "maintenance", "false"),
    }
)
_DEGRADED = frozenset({"warn", "warning", "degraded", "partial", "yellow", "partial_outage"})


class ExpectSettingError(Exception):
    """PREFLIGHT_API_HEALTH_EXPECT cannot be read."""


def parse_expect(spec: str | None) -> list[tuple[str, tuple[str, ...] | None]]:
    """PREFLIGHT_API_HEALTH_EXPECT as (dotted path, accepted values or None for "present")."""
    conditions: list[tuple[str, tuple[str, ...] | None]] = []
    for part in (p.strip() for p in (spec or "").split(",")):
        if not part:
            continue
        path, sep, values = part.partition("=")
        path = path.strip()
        if not path or any(not k for k in path.split(".")):
            raise ExpectSettingError(f"PREFLIGHT_API_HEALTH_EXPECT: {part!r} has no field path")
        accepted = tuple(v.strip().lower() for v in values.split("|")) if sep else None
        conditions.append((path, accepted))
    return conditions


def _as_text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _lookup(body: object, path: str) -> tuple[bool, object]:
    node = body
    for key in path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    return True, node


def judge_body(
    body: object, expect: list[tuple[str, tuple[str, ...] | None]]
) -> tuple[list[Finding], dict[str, str], str]:
    """(findings, health fields observed as text, a description of what the body showed)."""
    findings: list[Finding] = []
    observed: dict[str, str] = {}
    if isinstance(body, dict):
        shape = "a JSON object" + (f" with {', '.join(list(body)[:6])}" if body else "")
    elif isinstance(body, list):
        shape = f"a JSON array of {len(body)}"
    else:
        shape = f"JSON {json.dumps(body)[:_SHOWN_CHARS]}"
    if not body or not isinstance(body, dict | list):
        findings.append(
            (
                Status.FAIL,
                f"answers 200 with {shape}, which says nothing about its health",
                "The health endpoint should return a JSON object describing the service "
                '(e.g. {"status": "ok"}); set PREFLIGHT_API_HEALTH_EXPECT to its shape.',
            )
        )
        return findings, observed, shape
    if isinstance(body, dict):
        for name in _STATUS_FIELDS:
            if isinstance(body.get(name), str | bool):
                word = str(body[name]).strip().lower()
                observed[name] = _as_text(body[name])
                if word in _DOWN:
                    findings.append(
                        (
                            Status.FAIL,
                            f"answers 200 but its body says {name}={_as_text(body[name])}",
                            "The API reports itself down: see its logs and dependencies "
                            "(database, cache) before deploying.",
                        )
                    )
                elif word in _DEGRADED:
                    findings.append(
                        (
                            Status.WARN,
                            f"answers 200 but its body says {name}={_as_text(body[name])}",
                            "The API reports itself degraded: find which dependency.",
                        )
                    )
        for name in _FLAG_FIELDS:
            if name in body and isinstance(body[name], bool | None):
                observed[name] = _as_text(body[name])
                if not body[name]:
                    findings.append(
                        (
                            Status.FAIL,
                            f"answers 200 but its body says {name}={_as_text(body[name])}",
                            "The API reports itself unhealthy: see its logs.",
                        )
                    )
        for name in _ERROR_FIELDS:
            if body.get(name) not in (None, False, "", [], {}):
                observed[name] = _as_text(body[name])
                findings.append(
                    (
                        Status.FAIL,
                        f"answers 200 but its body carries {name!r}",
                        "The API answered with an error in a 200: see its logs.",
                    )
                )
    for path, accepted in expect:
        found, value = _lookup(body, path)
        shown = _as_text(value) if found else "missing"
        observed[path] = shown
        if not found:
            ok = False
        elif accepted is None:
            ok = value not in (None, False, "", [], {})
        else:
            written = value if isinstance(value, str) else json.dumps(value)
            ok = written.strip().lower() in accepted
        if not ok:
            wanted = "present" if accepted is None else "|".join(accepted)
            findings.append(
                (
                    Status.FAIL,
                    f"answers 200 but {path} is {shown} (expected {wanted})",
                    "The body does not have the shape PREFLIGHT_API_HEALTH_EXPECT states: "
                    "the API is not healthy, or the setting is out of date.",
                )
            )
    return findings, observed, shape


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
    try:
        expect = parse_expect(ctx.setting("PREFLIGHT_API_HEALTH_EXPECT"))
    except ExpectSettingError as exc:
        return Result(
            Status.ERROR,
            str(exc),
            remediation="Write it as comma-separated conditions: `status=ok|pass, "
            "db.connected=true` or a bare path (`version`) for present.",
        )
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
    shape = ""
    observed_fields: dict[str, str] = {}
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
            body = _NOT_JSON
            findings.append(
                (
                    Status.FAIL,
                    f"answers 200 but not with JSON (content-type {content_type or 'none'})",
                    "The endpoint should return its JSON payload; a HTML page usually means "
                    "the request reached the frontend or a proxy error page.",
                )
            )
        if body is not _NOT_JSON:
            body_findings, observed_fields, shape = judge_body(body, expect)
            findings.extend(body_findings)
            evidence["body"] = shape
            evidence["health_fields"] = observed_fields
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
        said = ", ".join(f"{k}={v}" for k, v in observed_fields.items()) or shape
        return Result(
            Status.PASS,
            f"API at {url} answers 200 with JSON ({said}) in {latency_ms} ms and "
            f"{anonymous.status_code} without a token",
            evidence=evidence,
            observations=2,
        )
    return Result(
        worst([s for s, _, _ in findings]),
        f"API at {url} " + " and ".join(text for _, text, _ in findings),
        evidence=evidence,
        remediation=" ".join(fix for _, _, fix in findings),
        observations=2,
    )


_NOT_JSON = object()


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
        "PREFLIGHT_API_HEALTH_EXPECT",
        "PREFLIGHT_CA_BUNDLE",
    ),
    severity="critical",
    blocking=True,
    timeout_s=10.0,
    max_age_s=900,
    description=(
        "The API answers an authenticated request with JSON that says it is up, fast, and "
        "refuses the same request without a token"
    ),
    criteria=(
        "GET `PREFLIGHT_API_URL` + `PREFLIGHT_API_HEALTH_PATH` (default "
        "`/api/partner-portal/leads/stats`) with `Authorization: Bearer PREFLIGHT_API_TOKEN`, "
        "then without it. PASS: 200 with a JSON object or non-empty array whose health fields "
        "do not say down and that meets every `PREFLIGHT_API_HEALTH_EXPECT` condition, within "
        "`PREFLIGHT_API_LATENCY_MS` (default 1000), and 401/403 without the token; the "
        "summary names the status code and what the body said (observations: 2 requests). "
        "`PREFLIGHT_API_HEALTH_EXPECT`: comma-separated `path=value|value` (dotted path, "
        "case-insensitive, JSON literals as written: `true`, `null`) or a bare `path` "
        "(present, not null/false/empty), e.g. `status=ok|pass, db.connected=true`. FAIL: "
        "another status with the token; a non-JSON (HTML) body; `null`, `[]`, `{}` or a bare "
        "scalar; `status`/`state`/`health` down/fail/error/unhealthy/…; "
        "`healthy`/`ok`/`up`/`alive`/`ready`/`success` false; a non-empty `error`/`errors`; "
        "an unmet expectation; anything but 401/403 without the token. WARN: `status` "
        "warn/degraded, or slower than the budget. ERROR: unreachable or a malformed "
        "expectation. SKIPPED without URL or token"
    ),
    anchor="IETF Health Check Response Format for HTTP APIs (draft-inadarei-api-health-check)",
)
