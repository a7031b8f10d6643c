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

Syntax alone is never a PASS. Only Sentry accepting that test event proves the DSN works
(key active, project accepting events). Before it:
- a plain `http://` DSN is a FAIL: Sentry's ingest is https-only, and over http the key and
  every event (stack traces, request data) would cross the network in clear text;
- a host that does not resolve is a FAIL (a typo, or a self-hosted Sentry that is gone);
- without a test event, the DSN's host is asked for `/` (no event, no key): a well-formed
  https DSN whose host resolves and answers is UNKNOWN, naming what was verified and that
  the key and project were not; unreachable is ERROR;
- a test event requested without --active is UNKNOWN ("requested but not sent"), with
  nothing sent at all.
"""

from __future__ import annotations

import json
import re
import socket
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


def resolve(host: str, port: int) -> list[str]:
    """The addresses host resolves to; OSError (socket.gaierror) when it does not."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _probe(ctx: CheckContext, dsn: Dsn) -> tuple[int | None, str | None]:
    """(HTTP status of GET origin/, None) or (None, error): is the host answering at all.
    No event and no key are sent."""
    try:
        with _net.http_client(ctx) as client:
            return client.get(dsn.origin + "/").status_code, None
    except httpx.HTTPError as exc:
        return None, _net.describe_error(exc)


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
        return (
            Status.PASS,
            f"Sentry at {dsn.host} accepted test event {event_id} "
            f"(HTTP {response.status_code}) for project {dsn.project_id}",
            info,
        )
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
    project = f"Sentry project {dsn.project_id} on {dsn.host}"
    if dsn.scheme != "https":
        return Result(
            Status.FAIL,
            f"SENTRY_DSN for {project} uses plain http: the key and every event would cross "
            "the network unencrypted",
            evidence,
            "Use the https DSN from Sentry (Settings > Client Keys); a self-hosted Sentry "
            "must be served over TLS.",
            observations=1,
        )
    port = dsn.port or 443
    try:
        addresses = resolve(dsn.host, port)
    except (OSError, UnicodeError) as exc:
        evidence["resolves"] = False
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Result(
            Status.FAIL,
            f"SENTRY_DSN host {dsn.host} does not resolve ({reason}): no event would arrive",
            evidence,
            "Copy the DSN again from Sentry (Settings > Client Keys); for a self-hosted "
            "Sentry, check its DNS record.",
            observations=1,
        )
    evidence["resolves"] = True
    evidence["addresses"] = len(addresses)
    verified = f"well formed, https, {dsn.host} resolves"
    if ctx.flag("PREFLIGHT_SENTRY_TEST_EVENT") and not ctx.allow_active:
        evidence["test_event"] = "requested but not sent: active checks not allowed"
        return Result(
            Status.UNKNOWN,
            f"SENTRY_DSN for {project}: test event requested but not sent: run with --active "
            f"(verified only: {verified})",
            evidence,
            "Run `preflight check sentry_dsn --active` (or `/preflight check sentry_dsn "
            "active`) so Sentry can accept the test event.",
            observations=1,
        )
    if not ctx.flag("PREFLIGHT_SENTRY_TEST_EVENT"):
        evidence["test_event"] = "not requested"
        status_code, error = _probe(ctx, dsn)
        if error is not None:
            evidence["probe_error"] = error
            return Result(
                Status.ERROR,
                f"SENTRY_DSN host {dsn.host} resolves but does not answer: {error}",
                evidence,
                "Check that this machine can reach the DSN's host over HTTPS.",
                observations=1,
            )
        evidence["probe_status"] = status_code
        return Result(
            Status.UNKNOWN,
            f"SENTRY_DSN for {project} is {verified} and answers HTTPS (HTTP {status_code}), "
            "but no event was sent, so the key and project are not verified",
            evidence,
            "Set PREFLIGHT_SENTRY_TEST_EVENT=true and run with --active: only an event "
            "Sentry accepts proves the DSN works.",
            observations=1,
        )
    status, summary, info = _send_test_event(ctx, dsn)
    evidence["test_event"] = info
    if status is Status.PASS:
        return Result(status, summary, evidence, observations=1)
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
    description=("Error tracking is wired: Sentry accepts an event sent with `SENTRY_DSN`"),
    criteria=(
        "FAIL: unset (required by the checklist's template; mark the Sentry items not "
        "applicable if another tracker was chosen), placeholder, malformed (scheme, public "
        "key, host, numeric project id), plain `http://` (Sentry ingests over https only; the "
        "key and events would travel in clear text), or a host that does not resolve. PASS "
        "only when Sentry accepts a test event (`PREFLIGHT_SENTRY_TEST_EVENT=true` with "
        "`--active`: one info event to `/api/<project>/envelope/` with `X-Sentry-Auth`; 2xx; "
        "observations: 1 event). Test event: 401/403 and other errors FAIL, 429 WARN, "
        "unreachable ERROR. UNKNOWN: test event requested without `--active` (nothing sent), "
        "or not requested: the summary names what was verified (well formed, https, resolves, "
        "the host answers `GET /`) and that the key and project were not. Evidence: host and "
        "project id, never the key"
    ),
    anchor="Sentry DSN and envelope endpoint (develop.sentry.dev)",
)
