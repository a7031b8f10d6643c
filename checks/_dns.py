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
import dns.message
import dns.name
import dns.nameserver
import dns.query
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
    def reason(self) -> str:
        """Why a broken lookup gave nothing, naming the nameserver and its rcode when known."""
        if self.outcome is Outcome.FAILED and self.detail:
            return self.detail
        return f"{self.outcome.value} ({self.detail})" if self.detail else self.outcome.value

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


class ConnectedDo53(dns.nameserver.Do53Nameserver):
    """A classic DNS nameserver queried over a *connected* UDP socket.

    dnspython sends from an unconnected socket, where the kernel never reports an ICMP "port
    unreachable": a nameserver host with nothing listening looks like a lost packet and is
    retried until the deadline (9 s for a 10 s check). A connected socket gets
    ConnectionRefusedError at once, which dnspython treats as a failed nameserver.
    """

    def query(
        self,
        request: dns.message.QueryMessage,
        timeout: float,
        source: str | None,
        source_port: int,
        max_size: bool,
        one_rr_per_rrset: bool = False,
        ignore_trailing: bool = False,
    ) -> dns.message.Message:
        if max_size:  # TCP (after a truncated answer): refusals are already immediate
            return super().query(
                request, timeout, source, source_port, max_size, one_rr_per_rrset, ignore_trailing
            )
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # as dnspython's own: it waits with its expiration
            sock.connect((self.address, self.port))
            return dns.query.udp(
                request,
                self.address,
                timeout=timeout,
                port=self.port,
                raise_on_truncation=True,
                one_rr_per_rrset=one_rr_per_rrset,
                ignore_trailing=ignore_trailing,
                ignore_errors=True,
                ignore_unexpected=True,
                sock=sock,
            )


def resolver(ctx: CheckContext) -> dns.resolver.Resolver:
    """A resolver using PREFLIGHT_DNS_NAMESERVER when set, else the system configuration.

    A nameserver that answers REFUSED or SERVFAIL is not asked again (dnspython's default,
    retry_servfail=False), and one with nothing listening is noticed at once
    (ConnectedDo53): both end the lookup with the nameserver and its answer named.
    """
    setting = ctx.setting(NAMESERVER_SETTING)
    if setting is None:
        res = dns.resolver.Resolver(configure=True)
        port = res.port
        addresses = [str(ns) for ns in res.nameservers]
    else:
        host, port = parse_nameserver(setting)
        res = dns.resolver.Resolver(configure=False)
        addresses = [host]
    res.nameservers = [ConnectedDo53(address, port) for address in addresses]
    res.retry_servfail = False
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
    """`nameserver 127.0.0.1:5353 answered REFUSED` (each nameserver and what it did)."""
    said: list[str] = []
    for error in exc.kwargs.get("errors") or []:
        if len(error) < 4:
            continue
        # str(Do53Nameserver) is "Do53:ADDRESS@PORT"
        address = str(error[0]).removeprefix("Do53:").rsplit("@", 1)[0]
        where = f"[{address}]:{error[2]}" if ":" in address else f"{address}:{error[2]}"
        what = error[3]
        if isinstance(what, ConnectionRefusedError):
            text = f"nameserver {where} refused the connection (nothing listening)"
        elif isinstance(what, BaseException):
            text = f"nameserver {where} failed: {type(what).__name__}"
        else:
            text = f"nameserver {where} answered {what}"
        if text not in said:
            said.append(text)
    return "; ".join(said) if said else "no nameserver answered"


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
