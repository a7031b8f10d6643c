"""Plain HTTP is redirected permanently to HTTPS on the same host, in the first hop."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

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
from checks.base import Check, CheckContext, Result, Status, skipped

PERMANENT = (301, 308)


class PortSettingError(Exception):
    """PREFLIGHT_HTTP_PORT is not a port number."""


def http_port(ctx: CheckContext) -> int:
    text = ctx.setting("PREFLIGHT_HTTP_PORT", "80") or "80"
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise PortSettingError(f"PREFLIGHT_HTTP_PORT={text!r} is not a port number")
    return int(text)


def plain_url(url: str, port: int) -> str:
    """`https://a.b:8443/x` with port 80 -> `http://a.b/`: the root of the host over HTTP."""
    host = urlsplit(url if "://" in url else f"https://{url}").hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}/" if port == 80 else f"http://{host}:{port}/"


def _check(client: httpx.Client, target: str, port: int, deadline: Deadline) -> TargetReport:
    host = urlsplit(target).hostname or ""
    try:
        response = client.get(target, timeout=deadline.left())
    except httpx.HTTPError as exc:
        return TargetReport(
            target,
            Status.ERROR,
            f"{target} could not be reached: {describe_error(exc)}",
            {"request": target, "error": describe_error(exc)},
            f"Check that port {port} is open and served (load balancer listener, nginx).",
        )
    location = response.headers.get("location", "")
    evidence = {"request": target, "status": response.status_code, "location": location or None}
    fix = (
        f"Answer every request on {target} with a 301 (or 308) to https://{host}/ and the "
        "same path, e.g. an HTTP listener rule on the load balancer or `return 301 "
        "https://$host$request_uri;` in nginx."
    )
    if not response.is_redirect:
        return TargetReport(
            target,
            Status.FAIL,
            f"{target} answers {response.status_code} instead of redirecting to HTTPS",
            evidence,
            fix,
        )
    destination = urlsplit(str(response.url.join(location)))
    if destination.scheme != "https":
        problem = f"redirects to {location}, not to HTTPS"
    elif (destination.hostname or "").lower() != host.lower():
        problem = f"redirects to another host ({destination.hostname})"
    elif response.status_code not in PERMANENT:
        problem = f"redirects to HTTPS with a temporary {response.status_code}, not 301/308"
    else:
        return TargetReport(
            target,
            Status.PASS,
            f"{target} redirects with {response.status_code} to {location}",
            evidence,
        )
    return TargetReport(target, Status.FAIL, f"{target} {problem}", evidence, fix)


def run(ctx: CheckContext) -> Result:
    urls = web_targets(ctx)
    if not urls:
        return skipped("FRONTEND_URL", "PREFLIGHT_API_URL")
    try:
        port = http_port(ctx)
    except PortSettingError as exc:
        return Result(Status.ERROR, str(exc), remediation="Set PREFLIGHT_HTTP_PORT to a number.")
    deadline = Deadline.for_check(ctx)
    # Several configured URLs may share a host; ask each host once.
    plain = list(dict.fromkeys(plain_url(u, port) for u in urls))
    with http_client(ctx) as client:
        reports = in_parallel(lambda u: _check(client, u, port, deadline), plain)
    result = combine_reports(reports, "URLs")
    # each URL asked is one observation
    return dataclasses.replace(result, observations=max(result.observations, len(reports)))


CHECK = Check(
    id="https_redirect",
    title="HTTP redirects to HTTPS",
    section="Security Requirements",
    run=run,
    settings=("FRONTEND_URL", "PREFLIGHT_API_URL", "PREFLIGHT_HTTP_PORT"),
    severity="high",
    blocking=True,
    timeout_s=10.0,
    max_age_s=3600,
    description=("Plain HTTP is redirected permanently to HTTPS on the same host"),
    criteria=(
        "For the hosts of `FRONTEND_URL` and `PREFLIGHT_API_URL`, `GET http://host/` on "
        "`PREFLIGHT_HTTP_PORT` (default 80). PASS: 301 or 308 with a Location on `https://` "
        "and the same host, in the first hop (observations: URLs asked). FAIL: anything else "
        "(no redirect, 302/307, another host, plain HTTP), with what was seen. ERROR: "
        "unreachable"
    ),
    anchor="Mozilla HTTP Observatory (redirection test)",
)
