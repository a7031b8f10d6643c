"""Fan-out of the network checks: a whole run against the slowest single check.

Every local target (HTTPS app, HTTP redirector, TLS servers, DNS server) answers after
DELAY_S, standing in for a distant server. The run of all the network checks together
should take about as long as the slowest of them alone (target: at most 1.5x), far less
than running them one after another.

    .venv/bin/python -m tests.perf.bench_checks_network [--rounds N] [--delay S]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import trustme

from checks import (
    api_health,
    cors_policy,
    dns_records,
    email_dns,
    https_redirect,
    rate_limiting,
    security_headers,
    tls_certificate,
    tls_wildcard,
)
from checks.base import Check, CheckContext
from checks.runner import run_checks, run_one
from tests.support.dns_server import LocalDNS
from tests.support.http_apps import (
    GOOD_HEADERS,
    HttpApp,
    RateLimitedApp,
    Reply,
    Request,
    api_app,
    redirect_app,
)
from tests.support.tls_servers import TLSServer, issue, server_context

CHECKS: list[Check] = [
    api_health.CHECK,
    tls_certificate.CHECK,
    tls_wildcard.CHECK,
    dns_records.CHECK,
    https_redirect.CHECK,
    security_headers.CHECK,
    cors_policy.CHECK,
    rate_limiting.CHECK,
    email_dns.CHECK,
]
TOKEN = "bench-token-0123456789"
TARGET_RATIO = 1.5


class _Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=_Closable)


class Site:
    """One app playing frontend and API: headers, CORS for the frontend, auth, a limiter.

    The frontend origin contains the app's port, known only once it listens: set it then.
    """

    def __init__(self) -> None:
        self.frontend_origin = ""
        self.limiter = RateLimitedApp(limit=5)
        self.api = api_app(TOKEN)

    def __call__(self, request: Request) -> Reply:
        limiter, api, frontend_origin = self.limiter, self.api, self.frontend_origin

        if request.path.startswith("/limited"):
            reply = limiter(request)
        elif request.path.startswith("/api/"):
            reply = api(request)
        else:
            reply = Reply(200, {"Content-Type": "text/html"}, b"<html></html>")
        headers = {**GOOD_HEADERS, **reply.headers}
        if request.header("origin") == frontend_origin:
            headers["Access-Control-Allow-Origin"] = frontend_origin
            headers["Vary"] = "Origin"
        return Reply(reply.status, headers, reply.body)


@contextlib.contextmanager
def targets(delay_s: float) -> Iterator[tuple[dict[str, str], Site]]:
    """Start every target; yield the environment that points the checks at them."""
    ca = trustme.CA()
    local = issue(ca, "127.0.0.1", "localhost")
    wildcard = issue(ca, "*.example.test", "example.test")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        bundle = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))

        def started(server: T) -> T:
            stack.callback(server.close)
            return server

        tls = started(TLSServer(local, delay_s=delay_s))
        wild = started(TLSServer(wildcard, delay_s=delay_s))
        redirector = started(HttpApp(redirect_app(301, "https://{host}/"), delay_s=delay_s))
        app = Site()
        site = started(HttpApp(app, server_context(local), delay_s=delay_s))
        frontend = f"https://127.0.0.1:{site.port}"
        app.frontend_origin = frontend

        dns = started(LocalDNS())
        dns.delay_s = delay_s
        dns.add("app.example.test", "A", "203.0.113.10")
        dns.add("api.example.test", "A", "203.0.113.20")
        dns.add("*.partner.example.test", "CNAME", "partners.example.net")
        dns.add("example.test", "TXT", "v=spf1 include:_spf.provider.test -all")
        dns.add("_spf.provider.test", "TXT", "v=spf1 ip4:192.0.2.0/24 ~all")
        dns.add("_dmarc.example.test", "TXT", "v=DMARC1; p=reject; rua=mailto:d@example.test")
        dns.add("s1._domainkey.example.test", "TXT", "v=DKIM1; k=rsa; p=MIIBIjANBgkq")

        env = {
            "FRONTEND_URL": frontend,
            "PREFLIGHT_API_URL": f"https://localhost:{site.port}",
            "PREFLIGHT_API_TOKEN": TOKEN,
            "PREFLIGHT_CA_BUNDLE": str(bundle),
            "PREFLIGHT_TLS_HOSTS": tls.address,
            "PREFLIGHT_WILDCARD_DOMAIN": "example.test",
            "PREFLIGHT_WILDCARD_CONNECT": wild.address,
            "PREFLIGHT_HTTP_PORT": str(redirector.port),
            "PREFLIGHT_RATE_LIMIT_URL": f"{frontend}/limited",
            "PREFLIGHT_DNS_NAMESERVER": dns.nameserver,
            "PREFLIGHT_DNS_RECORDS": (
                "A app.example.test; A api.example.test=203.0.113.20; "
                "CNAME *.partner.example.test=partners.example.net"
            ),
            "PREFLIGHT_EMAIL_DOMAIN": "example.test",
            "PREFLIGHT_DKIM_SELECTORS": "s1",
        }
        yield env, app


def bench(rounds: int, delay_s: float) -> dict[str, float]:
    with targets(delay_s) as (env, site):
        ctx = CheckContext(env=env, timeout_s=10.0, allow_active=True)
        run_checks(CHECKS, ctx)  # warm-up: imports, the shared TLS context
        solo: dict[str, list[float]] = {c.id: [] for c in CHECKS}
        statuses: dict[str, str] = {}
        walls: list[float] = []
        in_run: dict[str, list[int]] = {c.id: [] for c in CHECKS}
        for _ in range(rounds):
            for check in CHECKS:
                site.limiter.count = 0  # every burst meets a fresh limiter
                started = time.perf_counter()
                result = run_one(check, ctx)
                solo[check.id].append(time.perf_counter() - started)
                statuses[check.id] = result.status.value
            site.limiter.count = 0
            started = time.perf_counter()
            results = run_checks(CHECKS, ctx)
            walls.append(time.perf_counter() - started)
            for result in results:
                in_run[result.check_id].append(result.duration_ms)

    print(f"\nnetwork checks against local targets answering after {delay_s * 1000:.0f} ms")
    print(f"median of {rounds} rounds\n")
    print(f"{'check':<18} {'status':<7} {'alone ms':>9} {'in run ms':>10}")
    for check in CHECKS:
        alone = statistics.median(solo[check.id]) * 1000
        together = statistics.median(in_run[check.id])
        print(f"{check.id:<18} {statuses[check.id]:<7} {alone:>9.0f} {together:>10.0f}")
    slowest = max(statistics.median(v) for v in solo.values())
    total = sum(statistics.median(v) for v in solo.values())
    wall = statistics.median(walls)
    ratio = wall / slowest
    print()
    print(f"{'whole run (wall)':<28} {wall * 1000:>7.0f} ms")
    print(f"{'slowest single check':<28} {slowest * 1000:>7.0f} ms")
    print(f"{'sequential sum':<28} {total * 1000:>7.0f} ms")
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"{'wall / slowest':<28} {ratio:>7.2f} x   (target <= {TARGET_RATIO}x: {verdict})")
    print(f"{'sequential sum / wall':<28} {total / wall:>7.2f} x")
    return {"wall": wall, "slowest": slowest, "sum": total, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.3, help="seconds each target waits")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "ssl.TLSVersion.TLSv1", DeprecationWarning)
    bench(args.rounds, args.delay)


if __name__ == "__main__":
    main()
