"""The wildcard certificate: a sample subdomain is served a certificate that covers it through
`*.domain`, and the apex domain is covered too."""

from __future__ import annotations

from checks._net import (
    Deadline,
    PeerCertificate,
    TargetError,
    describe_key,
    host_port,
    key_and_signature,
    peer_certificate,
)
from checks.base import Check, CheckContext, Result, Status, skipped

SAMPLE_LABEL = "preflight-check"


def _normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


def san_covers(pattern: str, name: str) -> bool:
    """Whether a certificate name (SAN) covers a host name, by the rules browsers apply.

    `*.a.com` covers `x.a.com` but not `a.com` nor `x.y.a.com`; comparison ignores case;
    a wildcard only counts as the whole leftmost label (no `f*.a.com`), and never directly
    above a single label (`*.com`).
    """
    pattern, name = _normalize(pattern), _normalize(name)
    if not pattern or not name:
        return False
    if "*" not in pattern:
        return pattern == name
    first, _, rest = pattern.partition(".")
    if first != "*" or "*" in rest or "." not in rest:
        return False
    label, _, name_rest = name.partition(".")
    return bool(label) and name_rest == rest


def _covered_by(sans: tuple[str, ...], name: str) -> list[str]:
    return [san for san in sans if san_covers(san, name)]


def _connect_address(ctx: CheckContext, server_name: str, port: int) -> tuple[str, int]:
    connect = ctx.setting("PREFLIGHT_WILDCARD_CONNECT")
    return host_port(connect, port) if connect else (server_name, port)


def _served(
    ctx: CheckContext, server_name: str, port: int, deadline: Deadline
) -> tuple[PeerCertificate, str]:
    host, connect_port = _connect_address(ctx, server_name, port)
    # The name check is ours (san_covers), so OpenSSL checks only the chain.
    peer = peer_certificate(
        ctx, host, connect_port, deadline, server_name=server_name, check_hostname=False
    )
    return peer, f"{host}:{connect_port}"


def run(ctx: CheckContext) -> Result:
    setting = ctx.setting("PREFLIGHT_WILDCARD_DOMAIN")
    if not setting:
        return skipped("PREFLIGHT_WILDCARD_DOMAIN")
    domain, port = host_port(setting)
    domain = _normalize(domain)
    sample = _normalize(ctx.setting("PREFLIGHT_WILDCARD_SAMPLE") or f"{SAMPLE_LABEL}.{domain}")
    wildcard = f"*.{domain}"
    deadline = Deadline.for_check(ctx)
    evidence: dict[str, object] = {"domain": domain, "sample": sample, "port": port}

    try:
        peer, address = _served(ctx, sample, port, deadline)
    except TargetError as exc:
        return Result(
            Status.ERROR,
            f"could not fetch the certificate served for {sample}: {exc}",
            evidence=evidence,
            remediation=f"Check that {sample} resolves and answers on port {port}, or set "
            "PREFLIGHT_WILDCARD_CONNECT to the address that serves it.",
        )
    info = peer.info
    evidence.update(
        connected_to=address,
        sans=list(info.sans),
        issuer=info.issuer,
        not_after=info.not_after.isoformat(),
        verification="ok" if peer.verified else f"failed: {peer.verify_error}",
    )
    facts, weak = key_and_signature(peer.der)
    evidence.update(facts)
    if weak:
        # testssl.sh's severities, whatever this machine's OpenSSL accepts (as tls_certificate).
        return Result(
            Status.FAIL,
            f"certificate served for {sample} has a {' and a '.join(weak)}"
            + ("" if peer.verified else f" and does not verify ({peer.verify_error})"),
            evidence=evidence,
            remediation=f"Reissue the certificate for {wildcard} and {domain} with an RSA key of "
            "at least 2048 bits (or EC P-256+) signed with SHA-256 or better.",
            observations=1,
        )
    if not peer.verified:
        return Result(
            Status.FAIL,
            f"certificate served for {sample} does not verify ({peer.verify_error})",
            evidence=evidence,
            remediation="Install a certificate for "
            f"{wildcard} and {domain} from a trusted CA, with its full chain.",
        )

    has_wildcard = any(_normalize(san) == wildcard for san in info.sans)
    evidence["sample_covered_by"] = _covered_by(info.sans, sample)
    if not (has_wildcard and san_covers(wildcard, sample)):
        return Result(
            Status.FAIL,
            f"certificate served for {sample} does not cover it through {wildcard} "
            f"(names: {', '.join(info.sans) or 'none'})",
            evidence=evidence,
            remediation=f"Obtain a certificate with {wildcard} and {domain} and serve it for "
            "every subdomain.",
        )

    apex_by = _covered_by(info.sans, domain)
    if apex_by:
        evidence["apex_covered_by"] = "the wildcard certificate"
        return Result(
            Status.PASS,
            f"wildcard certificate for {wildcard} covers {sample} and {domain} "
            f"({describe_key(facts)}, verified, expires {info.not_after.date().isoformat()}; "
            "1 TLS handshake)",
            evidence=evidence,
            observations=1,
        )

    # The apex may legitimately have its own certificate: look at what it is served.
    try:
        apex_peer, apex_address = _served(ctx, domain, port, deadline)
    except TargetError as exc:
        evidence["apex_covered_by"] = "not in the wildcard certificate; apex unreachable"
        return Result(
            Status.ERROR,
            f"wildcard certificate for {wildcard} covers {sample} but not {domain}, and the "
            f"certificate served for {domain} could not be fetched: {exc}",
            evidence=evidence,
            remediation=f"Check that {domain} answers on port {port}.",
        )
    apex_sans = apex_peer.info.sans
    apex_facts, apex_weak = key_and_signature(apex_peer.der)
    evidence["apex_certificate"] = {
        "connected_to": apex_address,
        "sans": list(apex_sans),
        "verification": "ok" if apex_peer.verified else f"failed: {apex_peer.verify_error}",
        **apex_facts,
    }
    if apex_peer.verified and _covered_by(apex_sans, domain) and not apex_weak:
        evidence["apex_covered_by"] = "its own certificate"
        return Result(
            Status.PASS,
            f"wildcard certificate for {wildcard} ({describe_key(facts)}) covers {sample}, and "
            f"{domain} is served its own valid certificate ({describe_key(apex_facts)}; 2 TLS "
            "handshakes)",
            evidence=evidence,
            observations=2,
        )
    if apex_weak:
        evidence["apex_covered_by"] = "a weak certificate"
        return Result(
            Status.FAIL,
            f"wildcard certificate for {wildcard} covers {sample} but the certificate served "
            f"for {domain} has a {' and a '.join(apex_weak)}",
            evidence=evidence,
            remediation=f"Reissue the certificate for {domain} with an RSA key of at least 2048 "
            "bits (or EC P-256+) signed with SHA-256 or better.",
            observations=2,
        )
    evidence["apex_covered_by"] = "nothing"
    return Result(
        Status.FAIL,
        f"wildcard certificate for {wildcard} covers {sample} but {domain} itself is not "
        "covered by a valid certificate",
        evidence=evidence,
        remediation=f"Add {domain} to the wildcard certificate (most CAs issue "
        f"{wildcard} and {domain} together) or serve {domain} its own certificate.",
    )


CHECK = Check(
    id="tls_wildcard",
    title="Wildcard certificate covers the subdomains and the apex",
    section="Security Requirements",
    run=run,
    settings=(
        "PREFLIGHT_WILDCARD_DOMAIN",
        "PREFLIGHT_WILDCARD_SAMPLE",
        "PREFLIGHT_WILDCARD_CONNECT",
        "PREFLIGHT_CA_BUNDLE",
    ),
    severity="high",
    blocking=True,
    timeout_s=15.0,
    max_age_s=6 * 3600,
    description=(
        "The wildcard certificate covers subdomains through `*.domain`, and the apex is covered too"
    ),
    criteria=(
        "PASS: the certificate served for the sample (SNI = sample) verifies, has "
        "`*.<domain>` covering the sample, and the apex is in it or served its own valid "
        "certificate; the summary names the key and signature seen. FAIL otherwise, and "
        "(testssl.sh's severities, as `tls_certificate`) when a served certificate has an "
        "RSA/DSA key under 2048 bits, an EC key under 256 bits, or an MD5/SHA-1 signature, "
        "judged from the certificate whatever this machine's OpenSSL accepts. ERROR: "
        "unreachable. Wildcards match exactly one whole leftmost label, case-insensitively"
    ),
    anchor="testssl.sh",
)
