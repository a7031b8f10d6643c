"""Network helpers shared by checks: one place decides how checks trust TLS and time out."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from checks.base import SEVERITY_ORDER, CheckContext, Result, Status, worst

USER_AGENT = "preflight-readiness-check/0.1"

_T = TypeVar("_T")
_R = TypeVar("_R")


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
    # A shared context: loading the system store takes ~0.1 s with the GIL held, which
    # stalls every other check running at the same time.
    kwargs.setdefault("verify", verifying_context(ctx))
    return httpx.Client(**kwargs)


def verifying_context(ctx: CheckContext, *, check_hostname: bool = True) -> ssl.SSLContext:
    """Like ssl_context(ctx), but built once and shared by every check: treat it as read-only.

    Rebuilt when PREFLIGHT_CA_BUNDLE names another file or the file changes.
    """
    bundle = ctx.setting("PREFLIGHT_CA_BUNDLE")
    stamp: tuple[int, int] | None = None
    if bundle:
        try:
            stat = os.stat(bundle)
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None  # loading it below raises the clear error
    return _shared_context(bundle, stamp, check_hostname)


@functools.lru_cache(maxsize=16)
def _shared_context(
    bundle: str | None, stamp: tuple[int, int] | None, check_hostname: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if bundle:
        context.load_verify_locations(cafile=bundle)
    context.check_hostname = check_hostname
    return context


def host_port(url_or_host: str, default_port: int = 443) -> tuple[str, int]:
    """`https://a.b:8443/x` -> ("a.b", 8443); `a.b:8443` -> ("a.b", 8443); `a.b` -> ("a.b", 443)."""
    text = url_or_host.strip()
    if "://" not in text:
        text = "//" + text
    parts = urlsplit(text)
    port = parts.port or (80 if parts.scheme == "http" and default_port == 443 else default_port)
    return parts.hostname or "", port


# --- Helpers for the network-facing checks (part 1). Signatures above are unchanged;
# http_client now shares one verifying context (see verifying_context).


class TargetError(Exception):
    """A target could not be reached or did not answer in time; the check reports ERROR."""


class Deadline:
    """A check's time budget. Every network call gets what is left of it, so a check answers
    with its own clear ERROR shortly before the runner would give up on it."""

    def __init__(self, timeout_s: float) -> None:
        # Keep a small reserve for building the result after the last network call.
        reserve = min(0.75, max(0.15, 0.2 * timeout_s))
        self.total_s = max(timeout_s - reserve, 0.1)
        self._end = time.monotonic() + self.total_s

    @classmethod
    def for_check(cls, ctx: CheckContext) -> Deadline:
        return cls(ctx.timeout_s)

    def left(self) -> float:
        """Seconds left (never zero or less: a spent budget makes calls time out at once)."""
        return max(self._end - time.monotonic(), 0.01)


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and everything it was raised from (httpx wraps httpcore wraps OSError)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_error(exc: BaseException) -> str:
    """A short, secret-free phrase saying why a network call failed ("connection refused")."""
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verification failed: {cause.verify_message}"
        if isinstance(cause, socket.gaierror):
            return "host name could not be resolved"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting (TCP connect or TLS handshake)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for the response"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without a valid HTTP response"
    for cause in chain:
        if isinstance(cause, TimeoutError | socket.timeout):
            return "timed out"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return f"{type(exc).__name__}: {exc}"


def web_targets(ctx: CheckContext) -> list[str]:
    """The web URLs the header, CORS and redirect checks look at: FRONTEND_URL, then
    PREFLIGHT_API_URL when set (duplicates dropped)."""
    urls: list[str] = []
    for name in ("FRONTEND_URL", "PREFLIGHT_API_URL"):
        value = ctx.setting(name)
        if value and value not in urls:
            urls.append(value)
    return urls


def origin_of(url: str) -> str:
    """`https://a.b:443/x?y` -> `https://a.b` (the form browsers send in `Origin`)."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "https").lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = parts.port
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def in_parallel(fn: Callable[[_T], _R], items: Sequence[_T], max_workers: int = 8) -> list[_R]:
    """fn over items concurrently, results in the order of items. fn must bound its own time
    (pass it a Deadline) and should turn expected failures into values, not exceptions."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class CertificateInfo:
    """What a person needs to know about a served certificate."""

    subject: str
    issuer: str
    sans: tuple[str, ...]  # DNS names and IP addresses, as written in the certificate
    not_before: datetime
    not_after: datetime

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days until notAfter (negative once expired)."""
        return math.floor((self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400)


def certificate_info(der: bytes) -> CertificateInfo:
    """Parse a DER certificate (as from `getpeercert(binary_form=True)`)."""
    cert = x509.load_der_x509_certificate(der)
    sans: list[str] = []
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        sans.extend(ext.get_values_for_type(x509.DNSName))
        sans.extend(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=tuple(sans),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


MIN_RSA_BITS = 2048  # testssl.sh: RSA/DSA keys below 2048 bits are a finding of high severity
MIN_EC_BITS = 256  # testssl.sh: EC keys below 256 bits likewise
WEAK_SIGNATURE_HASHES = frozenset({"md2", "md4", "md5", "sha1"})


def key_and_signature(der: bytes) -> tuple[dict[str, Any], list[str]]:
    """A certificate's key type, key size and signature hash, and what is too weak about them
    by testssl.sh's severities (RSA/DSA < 2048 bits, EC < 256 bits, MD5 or SHA-1 signature).

    Judged from the certificate itself, not from whether this machine's OpenSSL accepted it:
    another client (or another OpenSSL configuration) may accept what this one refuses.
    """
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    facts: dict[str, Any] = {}
    problems: list[str] = []
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"
        facts.update(key_type=kind, key_bits=key.key_size)
        if key.key_size < MIN_RSA_BITS:
            problems.append(f"{kind} {key.key_size}-bit key (below {MIN_RSA_BITS})")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        facts.update(key_type=f"EC {key.curve.name}", key_bits=key.curve.key_size)
        if key.curve.key_size < MIN_EC_BITS:
            problems.append(f"EC {key.curve.key_size}-bit key (below {MIN_EC_BITS})")
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        facts.update(key_type=type(key).__name__.removesuffix("PublicKey"))
    else:
        facts.update(key_type=type(key).__name__)
    try:
        algorithm = cert.signature_hash_algorithm  # None for Ed25519/Ed448
    except UnsupportedAlgorithm:
        algorithm = None
    oid = cert.signature_algorithm_oid
    facts["signature"] = algorithm.name if algorithm else getattr(oid, "_name", oid.dotted_string)
    if algorithm is not None and algorithm.name.lower() in WEAK_SIGNATURE_HASHES:
        name = "SHA-1" if algorithm.name.lower() == "sha1" else algorithm.name.upper()
        problems.append(f"{name} signature")
    return facts, problems


def describe_key(facts: dict[str, Any]) -> str:
    """`RSA 2048-bit, sha256` for a summary."""
    bits = f" {facts['key_bits']}-bit" if facts.get("key_bits") else ""
    return f"{facts.get('key_type', '?')}{bits}, {facts.get('signature', '?')}"


@dataclass(frozen=True)
class PeerCertificate:
    """The certificate a TLS server presented, and whether it verified."""

    der: bytes
    protocol: str | None  # negotiated protocol, e.g. "TLSv1.3"
    cipher: str | None
    verify_error: str | None = None  # OpenSSL's reason when verification failed

    @property
    def verified(self) -> bool:
        return self.verify_error is None

    @property
    def info(self) -> CertificateInfo:
        return certificate_info(self.der)


def _handshake(
    host: str, port: int, context: ssl.SSLContext, server_name: str | None, deadline: Deadline
) -> PeerCertificate:
    try:
        raw = socket.create_connection((host, port), timeout=deadline.left())
    except OSError as exc:
        raise TargetError(f"could not connect to {host}:{port}: {describe_error(exc)}") from exc
    with raw:
        # The socket timeout bounds the handshake too: a server that accepts the TCP
        # connection and never answers the ClientHello cannot hold the check.
        raw.settimeout(deadline.left())
        try:
            tls = context.wrap_socket(raw, server_hostname=server_name or host)
        except ssl.SSLCertVerificationError:
            raise  # not a connection problem: peer_certificate shows what was served
        except (OSError, ssl.SSLError) as exc:
            raise TargetError(
                f"TLS handshake with {host}:{port} failed: {describe_error(exc)}"
            ) from exc
        with tls:
            der = tls.getpeercert(binary_form=True)
            cipher = tls.cipher()
            if der is None:
                raise TargetError(f"{host}:{port} presented no certificate")
            return PeerCertificate(der, tls.version(), cipher[0] if cipher else None)


def peer_certificate(
    ctx: CheckContext,
    host: str,
    port: int,
    deadline: Deadline,
    *,
    server_name: str | None = None,
    check_hostname: bool = True,
) -> PeerCertificate:
    """Handshake with host:port (SNI = server_name or host) trusting what checks trust.

    A certificate that fails verification is still returned, with the reason in
    `verify_error`, so the check can show what was served. Unreachable targets, timeouts
    and handshake failures raise TargetError.
    """
    context = verifying_context(ctx, check_hostname=check_hostname)
    try:
        return _handshake(host, port, context, server_name, deadline)
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or str(exc)
    # Fetch what was served without verifying, only to describe it.
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    # Security level 0: fetch even a certificate this OpenSSL refuses (RSA-1024, SHA-1), so
    # the check judges it by its own rules (key_and_signature).
    insecure.set_ciphers("DEFAULT:@SECLEVEL=0")
    served = _handshake(host, port, insecure, server_name, deadline)
    return dataclasses.replace(served, verify_error=reason)


@dataclass(frozen=True)
class TargetReport:
    """One target's part of a check that looks at several (hosts, URLs)."""

    target: str
    status: Status
    summary: str  # a sentence naming the target
    evidence: dict[str, Any] = dataclasses.field(default_factory=dict)
    remediation: str = ""
    # What this target's verdict rests on (requests sent, headers judged, records parsed).
    # None: one observation, or none for an ERROR (nothing was seen).
    observations: int | None = None

    @property
    def observed(self) -> int:
        if self.observations is not None:
            return self.observations
        return 0 if self.status is Status.ERROR else 1


def combine_reports(
    reports: Sequence[TargetReport], noun: str = "targets", counted: str = ""
) -> Result:
    """One Result from per-target reports: the worst status wins, evidence stays per target,
    the summary names what is wrong (or every target when all pass). observations is the sum
    of the targets'; counted names them ("requests sent") in a passing summary."""
    status = worst([r.status for r in reports])
    bad = [r for r in reports if r.status is not Status.PASS]
    observations = sum(r.observed for r in reports)
    if not bad:
        summary = "; ".join(r.summary for r in reports)
        if counted:
            summary += f" ({observations} {counted})"
    else:
        order = {s: i for i, s in enumerate(SEVERITY_ORDER)}
        bad.sort(key=lambda r: order[r.status])
        summary = "; ".join(r.summary for r in bad)
        passed = len(reports) - len(bad)
        if passed:
            summary += f" ({passed} of {len(reports)} {noun} passed)"
    remediation = " ".join(dict.fromkeys(r.remediation for r in bad if r.remediation))
    evidence = {
        "targets": {r.target: {"verdict": r.status.value, **r.evidence} for r in reports},
    }
    return Result(
        status, summary, evidence=evidence, remediation=remediation, observations=observations
    )
