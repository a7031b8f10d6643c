"""TLS certificate of each public host: verifies, matches the name, is far from expiry, and
the server does not accept TLS 1.0/1.1."""

from __future__ import annotations

import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from checks._net import (
    Deadline,
    PeerCertificate,
    TargetError,
    TargetReport,
    certificate_info,
    combine_reports,
    describe_error,
    describe_key,
    host_port,
    in_parallel,
    key_and_signature,
    peer_certificate,
)
from checks.base import Check, CheckContext, Result, Status, skipped, worst

FAIL_DAYS = 30
WARN_DAYS = 60
LEGACY = (("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1))

ACCEPTED = "accepted"
REFUSED = "refused"


def targets(ctx: CheckContext) -> list[tuple[str, int]]:
    """PREFLIGHT_TLS_HOSTS (`host` or `host:port`, comma-separated), else the hosts of
    FRONTEND_URL and PREFLIGHT_API_URL on 443 (or the port of an https URL)."""
    listed = ctx.setting("PREFLIGHT_TLS_HOSTS")
    found: list[tuple[str, int]] = []
    if listed:
        found = [host_port(item) for item in listed.split(",") if item.strip()]
    else:
        for name in ("FRONTEND_URL", "PREFLIGHT_API_URL"):
            url = ctx.setting(name)
            if not url:
                continue
            parts = urlsplit(url if "://" in url else f"https://{url}")
            port = parts.port if parts.scheme == "https" and parts.port else 443
            if parts.hostname:
                found.append((parts.hostname, port))
    return list(dict.fromkeys((h.lower(), p) for h, p in found if h))


def verify_problem(reason: str) -> str:
    """OpenSSL's verification message in the words of the checklist."""
    lowered = reason.lower()
    if "expired" in lowered:
        return "expired"
    if "mismatch" in lowered:
        return "hostname mismatch"
    if "issuer" in lowered or "self-signed" in lowered or "self signed" in lowered:
        return "unknown issuer"
    if "not yet valid" in lowered:
        return "not yet valid"
    return "verification failed"


def _legacy_context(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers only `version`; raises ValueError/SSLError if this OpenSSL can't."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the protocol matters here
    context.minimum_version = version
    context.maximum_version = version
    # TLS 1.0/1.1 sign the handshake with SHA-1, which OpenSSL 3 allows only at level 0.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def client_cannot_offer(version: ssl.TLSVersion) -> str | None:
    """Why this machine cannot send a ClientHello for `version` (None when it can).

    Found without any traffic: a client handshake over memory buffers either produces its
    ClientHello (and waits for an answer) or fails at once for lack of a usable protocol.
    """
    try:
        obj = _legacy_context(version).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
        obj.do_handshake()
    except ssl.SSLWantReadError:
        return None
    except (ValueError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        return f"this machine's OpenSSL cannot offer it ({reason})"
    return None


def _legacy_probe(
    host: str, port: int, name: str, version: ssl.TLSVersion, deadline: Deadline
) -> tuple[str, bytes | None]:
    """Whether the server talks one old protocol: "accepted", "refused" or "unknown: why",
    and the certificate it served when it accepted."""
    why_not = client_cannot_offer(version)
    if why_not:
        return f"unknown: {why_not}", None
    try:
        with socket.create_connection((host, port), timeout=deadline.left()) as raw:
            raw.settimeout(deadline.left())
            with _legacy_context(version).wrap_socket(raw, server_hostname=host) as tls:
                if tls.version() != name:
                    return REFUSED, None
                return ACCEPTED, tls.getpeercert(binary_form=True)
    except ssl.SSLError:
        # An alert (protocol_version, handshake_failure) or a higher version in the
        # ServerHello: either way the server would not talk this protocol.
        return REFUSED, None
    except OSError as exc:
        return f"unknown: probe connection failed ({describe_error(exc)})", None


# OpenSSL's reasons when the two sides share no protocol version.
_PROTOCOL_REASONS = (
    "PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "WRONG_VERSION_NUMBER",
    "NO_PROTOCOLS_AVAILABLE",
    "VERSION_TOO_LOW",
)


def _check_host(ctx: CheckContext, host: str, port: int, deadline: Deadline) -> TargetReport:
    target = f"{host}:{port}"
    with ThreadPoolExecutor(max_workers=1 + len(LEGACY)) as pool:
        main = pool.submit(peer_certificate, ctx, host, port, deadline)
        probes = {
            name: pool.submit(_legacy_probe, host, port, name, version, deadline)
            for name, version in LEGACY
        }
        try:
            peer = main.result()
        except TargetError as exc:
            legacy_only = {name: future.result() for name, future in probes.items()}
            return _no_modern_tls(target, str(exc), legacy_only)
        legacy = {name: future.result()[0] for name, future in probes.items()}
    return _judge(target, peer, legacy)


def _no_modern_tls(
    target: str, error: str, legacy: dict[str, tuple[str, bytes | None]]
) -> TargetReport:
    """The modern handshake failed: a server that talks only TLS 1.0/1.1 (or answers with a
    protocol-version alert) FAILs; anything else is an ERROR (unreachable, reset...)."""
    verdicts = {name: verdict for name, (verdict, _) in legacy.items()}
    accepted = [name for name, verdict in verdicts.items() if verdict == ACCEPTED]
    evidence: dict[str, object] = {"error": error, "legacy_protocols": verdicts}
    fix = "Enable TLS 1.2 and 1.3 on the server or load balancer, and disable TLS 1.0/1.1."
    if accepted:
        der = next((d for v, d in legacy.values() if v == ACCEPTED and d), None)
        weak: list[str] = []
        if der is not None:  # judge the certificate served over the old protocol too
            facts, weak = key_and_signature(der)
            info = certificate_info(der)
            evidence.update(facts, sans=list(info.sans), not_after=info.not_after.isoformat())
        sentence = f"{target} accepts only {' and '.join(accepted)} (no TLS 1.2 or 1.3)"
        if weak:
            sentence += f"; its certificate has a {' and a '.join(weak)}"
        return TargetReport(target, Status.FAIL, sentence, evidence, fix, 1 + len(accepted))
    if any(reason in error.upper() for reason in _PROTOCOL_REASONS):
        # Nothing this machine can offer is accepted, and the server said so with a
        # protocol alert: whatever it speaks, it is not TLS 1.2+ (see the legacy verdicts).
        return TargetReport(
            target,
            Status.FAIL,
            f"{target} offers no TLS 1.2+: the handshake failed with a protocol alert ({error})",
            evidence,
            fix,
            1,
        )
    return TargetReport(
        target,
        Status.ERROR,
        f"certificate of {target} could not be fetched: {error}",
        evidence,
        f"Check that {target} is up and reachable from here.",
    )


def _judge(target: str, peer: PeerCertificate, legacy: dict[str, str]) -> TargetReport:
    info = peer.info
    days = info.days_left()
    expiry = info.not_after.date().isoformat()
    evidence = {
        "issuer": info.issuer,
        "subject": info.subject,
        "sans": list(info.sans),
        "not_after": info.not_after.isoformat(),
        "days_left": days,
        "protocol": peer.protocol,
        "cipher": peer.cipher,
        "verification": "ok" if peer.verified else f"failed: {peer.verify_error}",
        "legacy_protocols": legacy,
    }
    facts, weak = key_and_signature(peer.der)
    evidence.update(facts)
    statuses: list[Status] = []
    sentences: list[str] = []
    remediation: list[str] = []
    if weak:
        statuses.append(Status.FAIL)
        sentences.append(f"certificate for {target} has a {' and a '.join(weak)}")
        remediation.append(
            "Reissue the certificate with an RSA key of at least 2048 bits (or EC P-256+) "
            "signed with SHA-256 or better."
        )

    if not peer.verified:
        problem = verify_problem(peer.verify_error or "")
        statuses.append(Status.FAIL)
        sentences.append(
            f"certificate for {target} does not verify ({problem}: {peer.verify_error})"
        )
        remediation.append(
            {
                "expired": "Renew the certificate and install it on the server.",
                "hostname mismatch": f"Serve a certificate whose names include {target}.",
                "unknown issuer": "Serve the full chain (leaf plus intermediates) from a "
                "trusted CA; for a private CA set PREFLIGHT_CA_BUNDLE.",
            }.get(problem, "Fix the certificate chain the server presents.")
        )
    if days < FAIL_DAYS:
        statuses.append(Status.FAIL)
        if peer.verified:
            sentences.append(f"certificate for {target} expires in {days} days ({expiry})")
            remediation.append("Renew the certificate now and check that auto-renewal works.")
    elif days < WARN_DAYS:
        statuses.append(Status.WARN)
        sentences.append(f"certificate for {target} expires in {days} days ({expiry})")
        remediation.append("Renew the certificate soon and check that auto-renewal works.")

    accepted = [name for name, verdict in legacy.items() if verdict == ACCEPTED]
    unknown = [name for name, verdict in legacy.items() if verdict.startswith("unknown")]
    if accepted:
        # testssl.sh rates offering TLS 1.0/1.1 a finding on its own, whatever else is on.
        statuses.append(Status.FAIL)
        sentences.append(f"{target} accepts {' and '.join(accepted)}")
        remediation.append("Disable TLS 1.0 and 1.1 on the server or load balancer.")
    elif unknown:
        # Without a probe there is no evidence that old protocols are refused.
        statuses.append(Status.UNKNOWN)
        sentences.append(f"whether {target} accepts {' and '.join(unknown)} could not be tested")
        remediation.append(
            "Run this check where OpenSSL can still offer TLS 1.0/1.1 at security level 0 "
            "(or test by hand: `openssl s_client -tls1 -cipher DEFAULT@SECLEVEL=0`)."
        )

    status = worst(statuses)
    handshakes = 1 + sum(verdict in (ACCEPTED, REFUSED) for verdict in legacy.values())
    if status is Status.PASS:
        sentences.append(
            f"certificate for {target} verifies ({describe_key(facts)}, {peer.protocol}) and "
            f"expires in {days} days ({expiry}), TLS 1.0/1.1 refused"
        )
    elif peer.verified and days >= WARN_DAYS:
        sentences.insert(0, f"certificate for {target} is valid for {days} days ({expiry})")
    return TargetReport(
        target, status, ", ".join(sentences), evidence, " ".join(remediation), handshakes
    )


def run(ctx: CheckContext) -> Result:
    hosts = targets(ctx)
    if not hosts:
        return skipped("PREFLIGHT_TLS_HOSTS", "FRONTEND_URL", "PREFLIGHT_API_URL")
    deadline = Deadline.for_check(ctx)
    reports = in_parallel(lambda hp: _check_host(ctx, hp[0], hp[1], deadline), hosts)
    return combine_reports(reports, "hosts", "TLS handshakes")


CHECK = Check(
    id="tls_certificate",
    title="TLS certificates verify and are not about to expire",
    section="Security Requirements",
    run=run,
    settings=("PREFLIGHT_TLS_HOSTS", "FRONTEND_URL", "PREFLIGHT_API_URL", "PREFLIGHT_CA_BUNDLE"),
    severity="critical",
    blocking=True,
    timeout_s=15.0,
    max_age_s=6 * 3600,
    description=(
        "Each public host's certificate verifies, matches the name, has a strong key and "
        "signature, and is far from expiry; TLS below 1.2 is refused"
    ),
    criteria=(
        "Per host (`PREFLIGHT_TLS_HOSTS`, default the hosts of `FRONTEND_URL` and "
        "`PREFLIGHT_API_URL`), by testssl.sh's severities: FAIL when the chain or name does "
        "not verify (expired / hostname mismatch / unknown issuer), under "
        f"{FAIL_DAYS} days left, an RSA/DSA key under 2048 bits or EC under 256 bits, an MD5 "
        "or SHA-1 signature (judged from the served certificate, fetched unverified when "
        "needed, whatever this machine's OpenSSL accepts), TLS 1.0 or 1.1 accepted (even "
        'beside 1.2+), a server that speaks only TLS 1.0/1.1 ("accepts only TLS 1.0"), or a '
        "handshake refused with a protocol-version alert when this machine cannot offer the "
        f'old versions ("no TLS 1.2+"). WARN: under {WARN_DAYS} days. UNKNOWN: this '
        "machine's OpenSSL cannot offer TLS 1.0/1.1, so refusing them is unproven. ERROR: "
        "unreachable. Evidence per host: issuer, SANs, notAfter, days left, protocol, key type "
        "and size, signature hash; observations = TLS handshakes completed or refused"
    ),
    anchor="testssl.sh",
)
