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


def hostile_origins(site: str) -> list[str]:
    """The origins a strict policy must refuse, built around site (the frontend's origin, or
    the URL's own): a foreign site, `null` (sandboxed frames, file: pages), look-alikes that
    defeat suffix/prefix/substring matching, an http:// downgrade, and localhost."""
    scheme, _, host = site.partition("://")
    candidates = [
        FOREIGN_ORIGIN,
        "null",
        f"https://{host}.preflight-foreign.invalid",  # suffix look-alike: ends "...host"
        f"https://preflight-evil{host}",  # prefix look-alike: endsWith(host)
        "http://localhost",
        "https://localhost.preflight-foreign.invalid",  # contains "localhost"
    ]
    if scheme == "https":
        candidates.append(f"http://{host}")  # downgrade: a network attacker's origin
    return [o for o in dict.fromkeys(candidates) if o.lower() != site.lower()]


def _cors_view(response: httpx.Response) -> dict[str, object]:
    return {
        "status": response.status_code,
        "allow_origin": response.headers.get("access-control-allow-origin"),
        "allow_credentials": response.headers.get("access-control-allow-credentials"),
    }


def foreign_problem(view: dict[str, object], origin: str) -> str | None:
    """What is wrong with an answer to a request from a hostile origin (None when fine)."""
    allow = str(view["allow_origin"] or "").strip()
    credentials = str(view["allow_credentials"] or "").strip().lower() == "true"
    if allow.lower() == origin.lower():
        with_credentials = " with credentials" if credentials else ""
        return f"reflects the hostile origin {origin}{with_credentials}"
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
    hostile = hostile_origins(frontend or origin_of(url))
    asks = [(origin, method) for origin in (*hostile, must_allow) if origin
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
    seen = {o: {m: answers[(o, m)] for m in ("GET", "OPTIONS")} for o in hostile}
    own = {m: answers[(must_allow, m)] for m in ("GET", "OPTIONS")} if must_allow else None
    evidence: dict[str, object] = {
        "foreign_origin": FOREIGN_ORIGIN,
        "foreign": seen[FOREIGN_ORIGIN],
        "hostile_origins": seen,
        "requests_sent": len(asks),
    }
    statuses: list[Status] = []
    problems: list[str] = []
    fixes: list[str] = []
    for origin, by_method in seen.items():
        found = {m: foreign_problem(v, origin) for m, v in by_method.items()}
        for problem in dict.fromkeys(p for p in found.values() if p):
            methods = ", ".join(m for m, p in found.items() if p == problem)
            statuses.append(Status.FAIL)
            if f"{problem} (" not in " ".join(problems):  # `*` + credentials: say it once
                problems.append(f"{problem} ({methods})")
    views_seen = [v for by_method in seen.values() for v in by_method.values()]
    if not problems and any(str(v["allow_origin"] or "").strip() == "*" for v in views_seen):
        # Not exploitable with credentials, but not "the production domain only" either.
        statuses.append(Status.WARN)
        problems.append("allows any origin (Access-Control-Allow-Origin: *)")
    if problems:
        fixes.append(
            "Allow only the production frontend's origin (an exact match against an explicit "
            "list, e.g. cors({ origin: process.env.FRONTEND_URL, credentials: true })); never "
            "reflect Origin, never allow 'null', never match by prefix, suffix or substring."
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
            f"CORS on {url} {allowed_text}refuses {len(hostile)} hostile origins "
            f"(GET and preflight OPTIONS)",
            evidence,
            observations=len(asks),
        )
    return TargetReport(
        url, status, f"CORS on {url} {'; '.join(problems)}", evidence, " ".join(fixes), len(asks)
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
    return combine_reports(reports, "URLs", "requests sent")


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
    description="CORS allows the production frontend and no other origin",
    criteria=(
        "A GET and a preflight OPTIONS from each of at least 6 hostile origins "
        f"(`{FOREIGN_ORIGIN}`, `null`, look-alikes `https://<frontend-host>.preflight-foreign"
        ".invalid` and `https://preflight-evil<frontend-host>`, `http://localhost`, "
        "`https://localhost.preflight-foreign.invalid`, and the `http://` downgrade of an "
        "https frontend): FAIL when any is echoed in `Access-Control-Allow-Origin` (the "
        "summary names it, and says whether credentials were allowed), or `*` comes with "
        "`Access-Control-Allow-Credentials: true`; WARN on `*` alone. On a URL of another "
        "origin than `FRONTEND_URL` (the API): FAIL unless the frontend origin is allowed. "
        "PASS names the origins refused; observations = requests sent"
    ),
    anchor="Mozilla HTTP Observatory",
)
