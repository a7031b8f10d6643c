"""A local DNS server (dnslib, UDP and TCP on one free loopback port) answering from a zone
that tests fill in; checks query it through dnspython via PREFLIGHT_DNS_NAMESERVER.

    def test_x(dns_server):
        dns_server.add("app.example.test", "A", "10.0.0.1")
        env = {"PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver, ...}

Names are answered exactly, through `*.zone` wildcards, and through CNAME chains inside the
zone. `delay_s` makes every answer wait; `servfail = True` answers SERVFAIL, `refused = True`
REFUSED (as an authoritative server asked for a zone it does not serve).
`silent_dns` is a resolver address that never answers (for timeouts).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.support.tls_servers import LOOPBACK


def _txt_chunks(value: str) -> list[bytes]:
    data = value.encode()
    return [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]


class Zone:
    """Records by (lower-cased) name: a list of (type, value)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: dict[str, list[tuple[str, str]]] = {}

    def add(self, name: str, rtype: str, value: str) -> None:
        with self._lock:
            self.records.setdefault(name.rstrip(".").lower(), []).append((rtype.upper(), value))

    def set(self, name: str, rtype: str, *values: str) -> None:
        """Replace the name's records of that type."""
        key = name.rstrip(".").lower()
        with self._lock:
            kept = [r for r in self.records.get(key, []) if r[0] != rtype.upper()]
            self.records[key] = kept + [(rtype.upper(), v) for v in values]

    def find(self, name: str) -> list[tuple[str, str]] | None:
        """The name's records, exact or through the closest wildcard; None if it doesn't exist."""
        with self._lock:
            if name in self.records:
                return list(self.records[name])
            labels = name.split(".")
            for i in range(1, len(labels)):
                wildcard = "*." + ".".join(labels[i:])
                if wildcard in self.records:
                    return list(self.records[wildcard])
        return None


def _rr(name: str, rtype: str, value: str) -> RR:
    if rtype == "TXT":
        return RR(name, QTYPE.TXT, rdata=TXT(_txt_chunks(value)), ttl=60)
    return RR.fromZone(f"{name}. 60 IN {rtype} {value}")[0]


class ZoneResolver(BaseResolver):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.delay_s = 0.0
        self.servfail = False
        self.refused = False
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname, qtype))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.servfail or self.refused:
            reply.header.rcode = RCODE.SERVFAIL if self.servfail else RCODE.REFUSED
            return reply
        name = qname
        for hop in range(8):  # CNAME chains end, loops do not
            records = self.zone.find(name)
            if records is None:
                if hop == 0:
                    reply.header.rcode = RCODE.NXDOMAIN
                break
            matching = [v for t, v in records if t == qtype]
            if matching:
                for value in matching:
                    reply.add_answer(_rr(name, qtype, value))
                break
            cname = next((v for t, v in records if t == "CNAME"), None)
            if cname is None:
                break  # the name exists without this type: NOERROR, empty answer
            reply.add_answer(_rr(name, "CNAME", cname))
            name = cname.rstrip(".").lower()
        return reply


class LocalDNS:
    """A running server: `zone`, `resolver` knobs, and the address to give checks."""

    def __init__(self) -> None:
        self.zone = Zone()
        self.resolver = ZoneResolver(self.zone)
        logger = DNSLogger(prefix=False, logf=lambda *args: None)
        self._servers: list[DNSServer] = []
        for _ in range(20):  # UDP gets a free port; TCP must get the same one
            udp = DNSServer(self.resolver, address=LOOPBACK, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self.resolver, address=LOOPBACK, port=port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            self._servers = [udp, tcp]
            break
        else:
            raise RuntimeError("no loopback port free for both UDP and TCP")
        self.host = LOOPBACK
        self.port: int = port
        for server in self._servers:
            # A short poll interval keeps shutdown (at every test's teardown) quick.
            threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()

    @property
    def nameserver(self) -> str:
        """The value for PREFLIGHT_DNS_NAMESERVER."""
        return f"{self.host}:{self.port}"

    def add(self, name: str, rtype: str, value: str) -> None:
        self.zone.add(name, rtype, value)

    def set(self, name: str, rtype: str, *values: str) -> None:
        self.zone.set(name, rtype, *values)

    @property
    def delay_s(self) -> float:
        return self.resolver.delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self.resolver.delay_s = value

    @property
    def servfail(self) -> bool:
        return self.resolver.servfail

    @servfail.setter
    def servfail(self, value: bool) -> None:
        self.resolver.servfail = value

    @property
    def refused(self) -> bool:
        return self.resolver.refused

    @refused.setter
    def refused(self, value: bool) -> None:
        self.resolver.refused = value

    def close(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()


@pytest.fixture
def dns_server() -> Iterator[LocalDNS]:
    server = LocalDNS()
    yield server
    server.close()


@pytest.fixture
def silent_dns() -> Iterator[str]:
    """A PREFLIGHT_DNS_NAMESERVER value whose UDP port takes queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    yield f"{LOOPBACK}:{sock.getsockname()[1]}"
    sock.close()
