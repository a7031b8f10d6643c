"""Network helpers shared by checks: one place decides how checks trust TLS and time out."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx

from checks.base import CheckContext

USER_AGENT = "preflight-readiness-check/0.1"


def ssl_context(ctx: CheckContext) -> ssl.SSLContext:
    """Verifying context: the system store plus PREFLIGHT_CA_BUNDLE when set."""
    context = ssl.create_default_context()
    bundle = ctx.setting("PREFLIGHT_CA_BUNDLE")
    if bundle:
        context.load_verify_locations(cafile=bundle)
    return context


def http_client(ctx: CheckContext, **kwargs: Any) -> httpx.Client:
    """An httpx client that trusts what checks trust, never follows redirects silently,
    and gives up before the runner's deadline for this check."""
    kwargs.setdefault("timeout", httpx.Timeout(max(ctx.timeout_s - 0.5, 0.5)))
    kwargs.setdefault("follow_redirects", False)
    kwargs.setdefault("headers", {"User-Agent": USER_AGENT})
    return httpx.Client(verify=ssl_context(ctx), **kwargs)


def host_port(url_or_host: str, default_port: int = 443) -> tuple[str, int]:
    """`https://a.b:8443/x` -> ("a.b", 8443); `a.b:8443` -> ("a.b", 8443); `a.b` -> ("a.b", 443)."""
    text = url_or_host.strip()
    if "://" not in text:
        text = "//" + text
    parts = urlsplit(text)
    port = parts.port or (80 if parts.scheme == "http" and default_port == 443 else default_port)
    return parts.hostname or "", port
