"""CORS allows the production frontend and nobody else."""

from __future__ import annotations

import httpx

from checks._net import (
    Deadline,
    TargetReport,
    combine_reports,
    describe_error,
    http_client,
    in_parallel,
    origin_of,
    web_targets,
)
from checks.base import Check, CheckContext, Result, Status, skipped, worst

FOREIGN_ORIGIN = "https://preflight-foreign.invalid"
_PREFLIGHT_HEADERS = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def _cors_view(response: httpx.Response) -> dict[str, object]:
    return {
        "status": response.status_code,
        "allow_origin": response.headers.get("access-control-allow-origin"),
        "allow_credentials": response.headers.get("access-control-allow-credentials"),
    }


def foreign_problem(view: dict[str, object], origin: str) -> str | None:
    """What is wrong with an answer to a request from a foreign origin (None when fine)."""
    allow = str(view["allow_origin"] or "").strip()
    credentials = str(view["allow_credentials"] or "").strip().lower() == "true"
    if allow.lower() == origin.lower():
        return "echoes a foreign Origin in Access-Control-Allow-Origin" + (
            " with credentials" if credentials else ""
        )
    if allow == "*" and credentials:
        return "answers Access-Control-Allow-Origin: * with Allow-Credentials: true"
    return None


def _ask(
    client: httpx.Client, url: str, origin: str, method: str, deadline: Deadline
) -> dict[str, object]:
    """A simple GET or a preflight OPTIONS from origin, as a browser would send it."""
    headers = {"Origin": origin, **(_PREFLIGHT_HEADERS if method == "OPTIONS" else {})}
    return _cors_view(client.request(method, url, headers=headers, timeout=deadline.left()))


def _check(
    client: httpx.Client, url: str, frontend: str | None, deadline: Deadline
) -> TargetReport:
    # The frontend's own origin must be allowed where the frontend calls cross-origin: the API.
    must_allow = frontend if frontend and origin_of(url) != frontend else None
    asks = [(origin, method) for origin in (FOREIGN_ORIGIN, must_allow) if origin
            for method in ("GET", "OPTIONS")]  # fmt: skip
    try:
        views = in_parallel(lambda a: _ask(client, url, a[0], a[1], deadline), asks)
    except httpx.HTTPError as exc:
        return TargetReport(
            url,
            Status.ERROR,
            f"{url} could not be reached: {describe_error(exc)}",
            {"error": describe_error(exc)},
            f"Check that {url} is up and reachable from here.",
        )
    answers = dict(zip(asks, views, strict=True))
    foreign = {m: answers[(FOREIGN_ORIGIN, m)] for m in ("GET", "OPTIONS")}
    own = {m: answers[(must_allow, m)] for m in ("GET", "OPTIONS")} if must_allow else None
    evidence: dict[str, object] = {"foreign_origin": FOREIGN_ORIGIN, "foreign": foreign}
    statuses: list[Status] = []
    problems: list[str] = []
    fixes: list[str] = []
    for method, view in foreign.items():
        problem = foreign_problem(view, FOREIGN_ORIGIN)
        if problem:
            statuses.append(Status.FAIL)
            problems.append(f"{problem} ({method})")
    if not problems and any(str(v["allow_origin"] or "").strip() == "*" for v in foreign.values()):
        # Not exploitable with credentials, but not "the production domain only" either.
        statuses.append(Status.WARN)
        problems.append("allows any origin (Access-Control-Allow-Origin: *)")
    if problems:
        fixes.append(
            "Allow only the production frontend's origin (an explicit list, e.g. cors({ "
            "origin: process.env.FRONTEND_URL, credentials: true })); never reflect Origin."
        )
    if own is not None and must_allow is not None:
        evidence["frontend_origin"] = must_allow
        evidence["frontend"] = own
        allowed = any(
            str(view["allow_origin"] or "").strip().lower() in (must_allow.lower(), "*")
            for view in own.values()
        )
        evidence["frontend_allowed"] = allowed
        if not allowed:
            statuses.append(Status.FAIL)
            problems.append(f"does not allow the frontend origin {must_allow}")
            fixes.append(f"Add {must_allow} to the API's allowed CORS origins.")
    elif frontend:
        evidence["frontend_origin"] = f"{frontend} (same origin: CORS not involved)"
    status = worst(statuses)
    if status is Status.PASS:
        allowed_text = f"allows {must_allow} and " if must_allow else ""
        return TargetReport(
            url,
            Status.PASS,
            f"CORS on {url} {allowed_text}does not allow a foreign origin",
            evidence,
        )
    return TargetReport(
        url, status, f"CORS on {url} {'; '.join(problems)}", evidence, " ".join(fixes)
    )


def run(ctx: CheckContext) -> Result:
    urls = web_targets(ctx)
    if not urls:
        return skipped("FRONTEND_URL", "PREFLIGHT_API_URL")
    frontend_url = ctx.setting("FRONTEND_URL")
    frontend = origin_of(frontend_url) if frontend_url else None
    deadline = Deadline.for_check(ctx)
    with http_client(ctx) as client:
        reports = in_parallel(lambda u: _check(client, u, frontend, deadline), urls)
    return combine_reports(reports, "URLs")


CHECK = Check(
    id="cors_policy",
    title="CORS allows the production domain only",
    section="Security Requirements",
    run=run,
    settings=("FRONTEND_URL", "PREFLIGHT_API_URL", "PREFLIGHT_CA_BUNDLE"),
    severity="high",
    blocking=True,
    timeout_s=10.0,
    max_age_s=3600,
    description=(
        "Sends a GET and a preflight OPTIONS with Origin "
        f"{FOREIGN_ORIGIN} to FRONTEND_URL and PREFLIGHT_API_URL: FAIL when that origin is "
        "echoed in Access-Control-Allow-Origin, or '*' comes with Allow-Credentials: true "
        "('*' alone: WARN). "
        "On a URL of another origin than FRONTEND_URL (the API), FAIL unless the FRONTEND_URL "
        "origin is allowed."
    ),
)
