"""Error tracking is wired: SENTRY_DSN is set and well formed, and (opt-in) Sentry accepts
an event sent with it.

SENTRY_DSN is in the checklist's backend template, so unset is a FAIL (not SKIPPED): the
item it speaks for is "Sentry DSN obtained". A team that chose another error tracker marks
that item not applicable. A placeholder (`[TO_BE_CONFIGURED]`) is "not configured", also FAIL.

Well formed: `{http|https}://{public_key}[:{secret}]@{host}[:{port}]/[{path}/]{project_id}`
with a numeric project id. Evidence shows host and project id, never the key.

With PREFLIGHT_SENTRY_TEST_EVENT=true and active checks allowed, one info-level event is sent
to the DSN's envelope endpoint (`/api/{project_id}/envelope/`), authenticated with the
X-Sentry-Auth header, to the DSN's own host only.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from checks import _net
from checks.base import Check, CheckContext, Result, Status

_PLACEHOLDER = re.compile(r"^(\[.*\]|<.*>|YOUR_.*)$", re.I)
_KEY = re.compile(r"^[A-Za-z0-9]+$")
CLIENT = "preflight-readiness-check/0.1"


class DsnError(Exception):
    """SENTRY_DSN is not a valid Sentry DSN."""


@dataclass(frozen=True)
class Dsn:
    scheme: str
    public_key: str  # a credential of sorts: never put it in a result
    host: str
    port: int | None
    path: str  # prefix before the project id, "" usually
    project_id: str

    @property
    def origin(self) -> str:
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}"

    @property
    def envelope_url(self) -> str:
        return f"{self.origin}{self.path}/api/{self.project_id}/envelope/"

    def describe(self) -> dict[str, object]:
        return {
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "project_id": self.project_id,
        }


def parse_dsn(value: str) -> Dsn:
    """The parts of a Sentry DSN; DsnError naming what is wrong (never echoing the key)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise DsnError("it is not a URL") from None
    if parts.scheme not in {"http", "https"}:
        raise DsnError("the scheme must be https (or http)")
    if not parts.username:
        raise DsnError("the public key (before @) is missing")
    if not _KEY.match(parts.username):
        raise DsnError("the public key has unexpected characters")
    if not parts.hostname:
        raise DsnError("the host is missing")
    path = parts.path.rstrip("/")
    prefix, _, project = path.rpartition("/")
    if not project.isdigit():
        raise DsnError("the project id (last path segment) must be a number")
    if parts.query or parts.fragment:
        raise DsnError("a DSN has no query string or fragment")
    return Dsn(parts.scheme, parts.username, parts.hostname, port, prefix, project)


def _send_test_event(ctx: CheckContext, dsn: Dsn) -> tuple[Status, str, dict[str, object]]:
    event_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    event = {
        "event_id": event_id,
        "timestamp": now.timestamp(),
        "level": "info",
        "platform": "other",
        "logger": "preflight",
        "message": {"formatted": "Preflight readiness check: test event (safe to ignore)"},
        "tags": {"source": "preflight"},
    }
    body = "\n".join(
        [
            json.dumps({"event_id": event_id, "sent_at": now.isoformat()}),
            json.dumps({"type": "event", "content_type": "application/json"}),
            json.dumps(event),
        ]
    )
    auth = f"Sentry sentry_version=7, sentry_key={dsn.public_key}, sentry_client={CLIENT}"
    info: dict[str, object] = {
        "event_id": event_id,
        "endpoint": f"{dsn.origin}{dsn.path}/api/{dsn.project_id}/envelope/",
    }
    try:
        with _net.http_client(ctx) as client:
            response = client.post(
                dsn.envelope_url,
                content=body.encode(),
                headers={
                    "X-Sentry-Auth": auth,
                    "Content-Type": "application/x-sentry-envelope",
                },
            )
    except httpx.HTTPError as exc:
        info["error"] = type(exc).__name__
        return (
            Status.ERROR,
            f"the test event could not reach {dsn.host} ({type(exc).__name__})",
            info,
        )
    info["http_status"] = response.status_code
    if 200 <= response.status_code < 300:
        return Status.PASS, f"Sentry at {dsn.host} accepted test event {event_id}", info
    if response.status_code in {401, 403}:
        return (
            Status.FAIL,
            f"Sentry at {dsn.host} rejected the DSN's key (HTTP {response.status_code})",
            info,
        )
    if response.status_code == 429:
        return Status.WARN, f"Sentry at {dsn.host} rate-limited the test event (HTTP 429)", info
    return (
        Status.FAIL,
        f"Sentry at {dsn.host} answered HTTP {response.status_code} to the test event",
        info,
    )


def run(ctx: CheckContext) -> Result:
    raw = ctx.setting("SENTRY_DSN")
    if raw is None:
        return Result(
            Status.FAIL,
            "SENTRY_DSN is not set: errors in production would go unreported",
            {"configured": False},
            "Create the Sentry project, copy its DSN (Settings > Client Keys) into SENTRY_DSN "
            "for the backend and frontend; if the team chose another error tracker, mark the "
            "Sentry items not applicable.",
        )
    if _PLACEHOLDER.match(raw.strip("\"'")):
        return Result(
            Status.FAIL,
            "SENTRY_DSN is not configured (still a placeholder)",
            {"configured": False, "placeholder": True},
            "Replace the placeholder with the project's DSN from Sentry (Settings > Client Keys).",
        )
    try:
        dsn = parse_dsn(raw)
    except DsnError as exc:
        return Result(
            Status.FAIL,
            f"SENTRY_DSN is malformed: {exc}",
            {"configured": True, "valid": False},
            "Copy the DSN again from Sentry (Settings > Client Keys): "
            "https://<key>@<org>.ingest.sentry.io/<project id>.",
        )
    evidence: dict[str, object] = {"configured": True, "valid": True, **dsn.describe()}
    well_formed = f"SENTRY_DSN points at project {dsn.project_id} on {dsn.host}"
    if dsn.scheme != "https":
        evidence["warning"] = "plain http"
    if not ctx.flag("PREFLIGHT_SENTRY_TEST_EVENT"):
        evidence["test_event"] = "not requested"
        return Result(Status.PASS, well_formed, evidence)
    if not ctx.allow_active:
        evidence["test_event"] = "not sent: active checks not allowed"
        return Result(
            Status.PASS,
            f"{well_formed} (test event not sent: needs --active)",
            evidence,
        )
    status, summary, info = _send_test_event(ctx, dsn)
    evidence["test_event"] = info
    remediation = ""
    if status is Status.FAIL:
        remediation = (
            "Check that the DSN's key is active in Sentry (Settings > Client Keys) and that "
            "the project accepts events from this environment (allowed domains, filters)."
        )
    elif status is Status.ERROR:
        remediation = "Check that this machine can reach the DSN's host over HTTPS."
    return Result(status, summary, evidence, remediation)


CHECK = Check(
    id="sentry_dsn",
    title="Sentry DSN configured (and accepts an event)",
    section="Monitoring & Logging",
    run=run,
    settings=("SENTRY_DSN", "PREFLIGHT_SENTRY_TEST_EVENT", "PREFLIGHT_CA_BUNDLE"),
    severity="high",
    blocking=True,
    timeout_s=15.0,
    max_age_s=6 * 3600,
    description=(
        "SENTRY_DSN set (unset or placeholder: FAIL) and well formed: http(s), public key, "
        "host, numeric project id. Opt-in (PREFLIGHT_SENTRY_TEST_EVENT=true with --active): "
        "one test event to the DSN's envelope endpoint must be accepted (2xx)."
    ),
)
