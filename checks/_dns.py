"""DNS helpers shared by dns_records and email_dns: one resolver setup, one way to read answers.

PREFLIGHT_DNS_NAMESERVER (`host` or `host:port`, `[v6]:port`) points every lookup at one
resolver; without it the system's resolver configuration is used.
"""

from __future__ import annotations

import copy
import socket
from dataclasses import dataclass, field
from enum import StrEnum

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from checks._net import Deadline
from checks.base import CheckContext

NAMESERVER_SETTING = "PREFLIGHT_DNS_NAMESERVER"


class NameserverSettingError(Exception):
    """PREFLIGHT_DNS_NAMESERVER is not a usable `host[:port]`."""


class Outcome(StrEnum):
    FOUND = "found"
    NXDOMAIN = "no such name (NXDOMAIN)"
    NO_ANSWER = "no record of that type"
    TIMEOUT = "resolver timed out"
    FAILED = "resolver failed"  # SERVFAIL, REFUSED, unreachable resolver


@dataclass(frozen=True)
class Lookup:
    """One query's answer, or why there is none."""

    name: str
    rdtype: str
    outcome: Outcome
    values: tuple[str, ...] = ()
    canonical_name: str | None = None  # set when a CNAME chain led somewhere else
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.outcome is Outcome.FOUND

    @property
    def broken(self) -> bool:
        """The lookup itself failed (the check reports ERROR, not FAIL)."""
        return self.outcome in (Outcome.TIMEOUT, Outcome.FAILED)


def parse_nameserver(value: str) -> tuple[str, int]:
    """`1.2.3.4` -> (1.2.3.4, 53); `1.2.3.4:5353`; `[::1]:5353`; a host name is resolved."""
    text = value.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], value)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, value)
    else:
        host = text
    if not host:
        raise NameserverSettingError(f"{NAMESERVER_SETTING}={value!r} has no host")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        # dnspython wants addresses; a resolver given by name is looked up once here.
        try:
            host = str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
        except OSError as exc:
            raise NameserverSettingError(
                f"{NAMESERVER_SETTING} host {host!r} could not be resolved"
            ) from exc
    return host, port


def _port(text: str, value: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise NameserverSettingError(f"{NAMESERVER_SETTING}={value!r} has an invalid port")
    return int(text)


def resolver(ctx: CheckContext) -> dns.resolver.Resolver:
    """A resolver using PREFLIGHT_DNS_NAMESERVER when set, else the system configuration."""
    setting = ctx.setting(NAMESERVER_SETTING)
    if setting is None:
        res = dns.resolver.Resolver(configure=True)
    else:
        host, port = parse_nameserver(setting)
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [host]
        res.port = port
    res.cache = None  # a readiness check wants what DNS says now
    return res


def lookup(res: dns.resolver.Resolver, name: str, rdtype: str, deadline: Deadline) -> Lookup:
    """Query name/rdtype within what is left of the deadline; never raises for DNS outcomes."""
    # dnspython sleeps a growing backoff between rounds before it notices the lifetime is
    # spent: two attempts per lookup (one retry for a lost UDP packet) keep that sleep to
    # 0.1 + 0.2 s, which the lifetime leaves room for.
    left = max(deadline.left() - 0.3, 0.05)
    res = copy.copy(res)  # the resolver is shared by parallel lookups: don't mutate it
    res.timeout = left / 2
    try:
        answer = res.resolve(name, rdtype, lifetime=left, search=False, raise_on_no_answer=True)
    except dns.resolver.NXDOMAIN:
        return Lookup(name, rdtype, Outcome.NXDOMAIN)
    except dns.resolver.NoAnswer:
        return Lookup(name, rdtype, Outcome.NO_ANSWER)
    except dns.exception.Timeout:
        return Lookup(name, rdtype, Outcome.TIMEOUT, detail=f"no answer within {left:.1f} s")
    except dns.resolver.NoNameservers as exc:
        return Lookup(name, rdtype, Outcome.FAILED, detail=_no_nameservers_detail(exc))
    except dns.exception.DNSException as exc:
        return Lookup(name, rdtype, Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}")
    values = tuple(rdata_text(rdata) for rdata in answer)
    canonical = answer.canonical_name.to_text(omit_final_dot=True)
    requested = dns.name.from_text(name).to_text(omit_final_dot=True)
    return Lookup(
        name,
        rdtype,
        Outcome.FOUND,
        values=values,
        canonical_name=canonical if canonical.lower() != requested.lower() else None,
    )


def _no_nameservers_detail(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    answers = sorted({str(e[3]) if len(e) > 3 else "" for e in errors} - {""})
    return "resolver answered " + ", ".join(answers) if answers else "no resolver answered"


def rdata_text(rdata: object) -> str:
    """An answer's value as people write it: TXT strings joined, names without the final dot."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    target = getattr(rdata, "target", None)
    if target is not None and getattr(rdata, "rdtype", None) == dns.rdatatype.CNAME:
        return str(target.to_text(omit_final_dot=True))
    text = str(rdata.to_text()) if hasattr(rdata, "to_text") else str(rdata)
    return text.rstrip(".")
