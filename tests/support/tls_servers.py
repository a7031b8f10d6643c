"""Local TLS servers on 127.0.0.1 with certificates from a test CA (trustme).

Fixtures:
- `tls_ca`: the test CA; `ca_bundle`: its PEM in a file, for PREFLIGHT_CA_BUNDLE.
- `tls_certs`: leaf certificates by name: valid, expiring_10d, expiring_45d, expired,
  wrong_name, wildcard (`*.example.test` + `example.test`), wildcard_no_apex.
- `tls_server`: a factory starting a TLS server for a certificate (optionally accepting
  TLS 1.0/1.1, optionally slow); servers stop at the end of the test.
- `stalling_server`: accepts TCP connections and never sends a byte (no TLS handshake, no
  HTTP answer).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

LOOPBACK = "127.0.0.1"
WILDCARD_DOMAIN = "example.test"


def issue(
    ca: trustme.CA, *names: str, valid_days: float = 825, expired: bool = False
) -> trustme.LeafCert:
    """A leaf certificate for names, valid from yesterday for valid_days (or already expired)."""
    now = datetime.now(UTC)
    if expired:
        return ca.issue_cert(
            *names, not_before=now - timedelta(days=90), not_after=now - timedelta(days=1)
        )
    # Half a day of slack keeps "expires in 10 days" at 10 whatever the time of day.
    return ca.issue_cert(
        *names,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=valid_days, hours=12),
    )


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a PEM file holding the test CA, to pass as PREFLIGHT_CA_BUNDLE."""
    path = Path(tmp_path_factory.mktemp("ca")) / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tls_certs(tls_ca: trustme.CA) -> dict[str, trustme.LeafCert]:
    local = (LOOPBACK, "localhost")
    return {
        "valid": issue(tls_ca, *local),
        "expiring_10d": issue(tls_ca, *local, valid_days=10),
        "expiring_45d": issue(tls_ca, *local, valid_days=45),
        "expired": issue(tls_ca, *local, expired=True),
        "wrong_name": issue(tls_ca, "wrong.example.test"),
        "wildcard": issue(tls_ca, f"*.{WILDCARD_DOMAIN}", WILDCARD_DOMAIN),
        "wildcard_no_apex": issue(tls_ca, f"*.{WILDCARD_DOMAIN}"),
        "apex_only": issue(tls_ca, WILDCARD_DOMAIN),
    }


def server_context(cert: trustme.LeafCert, *, legacy: bool = False) -> ssl.SSLContext:
    """A server context for cert; legacy=True also accepts TLS 1.0 and 1.1."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    if legacy:
        # TLS 1.0/1.1 need SHA-1 in the handshake, which OpenSSL 3 allows only at level 0.
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


class _Listener:
    """A listening socket on a free loopback port whose connections are handled in threads."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self._handle = handle
        self._sock = socket.create_server((LOOPBACK, 0))
        self.port: int = self._sock.getsockname()[1]
        self._closed = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name=f"listener-{self.port}")
        self._thread.daemon = True
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        except OSError:
            pass  # clients hang up mid-handshake on purpose (probes, timeouts)
        finally:
            if not self._closed.is_set():
                with contextlib.suppress(OSError):
                    conn.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()


class TLSServer(_Listener):
    """Completes the TLS handshake with its certificate, answers one tiny HTTP response, closes.

    delay_s waits before the handshake, standing in for a distant or slow server.
    """

    def __init__(
        self,
        cert: trustme.LeafCert,
        *,
        legacy: bool = False,
        delay_s: float = 0.0,
        sni: dict[str, trustme.LeafCert] | None = None,
    ) -> None:
        self.context = server_context(cert, legacy=legacy)
        self.delay_s = delay_s
        self.handshakes: list[str] = []  # negotiated protocol of each completed handshake
        self.server_names: list[str | None] = []  # SNI of each ClientHello
        by_name = {name: server_context(c, legacy=legacy) for name, c in (sni or {}).items()}

        def choose(tls: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
            # Like a load balancer with several certificates: pick by SNI, else the default.
            self.server_names.append(name)
            if name in by_name:
                tls.context = by_name[name]

        self.context.sni_callback = choose
        super().__init__(self._handshake)

    def _handshake(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        if self.delay_s:
            time.sleep(self.delay_s)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except ssl.SSLError:
            return  # a refused legacy probe or a client that rejected our certificate
        self.handshakes.append(tls.version() or "")
        with contextlib.suppress(OSError):
            tls.recv(1024)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        with contextlib.suppress(OSError):
            tls.close()


class StallingServer(_Listener):
    """Accepts TCP connections and never sends anything: a stalled TLS handshake or an HTTP
    server that never answers, depending on what the client expects."""

    def __init__(self) -> None:
        self._release = threading.Event()
        super().__init__(self._hold)

    def _hold(self, conn: socket.socket) -> None:
        self._release.wait(30)

    def close(self) -> None:
        self._release.set()
        super().close()


@dataclass
class _Servers:
    started: list[_Listener]

    def stop(self) -> None:
        for server in self.started:
            server.close()


@pytest.fixture
def tls_server() -> Iterator[Callable[..., TLSServer]]:
    """Factory: `tls_server(cert, legacy=False, delay_s=0.0, sni=None)` -> a running TLSServer.

    sni maps server names to other certificates, served when the client asks for that name."""
    servers = _Servers([])

    def start(
        cert: trustme.LeafCert,
        *,
        legacy: bool = False,
        delay_s: float = 0.0,
        sni: dict[str, trustme.LeafCert] | None = None,
    ) -> TLSServer:
        server = TLSServer(cert, legacy=legacy, delay_s=delay_s, sni=sni)
        servers.started.append(server)
        return server

    yield start
    servers.stop()


@pytest.fixture
def stalling_server() -> Iterator[StallingServer]:
    server = StallingServer()
    yield server
    server.close()


def client_can_offer_tls10() -> bool:
    """Whether this machine's OpenSSL can offer TLS 1.0 at all (security level 0)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        obj = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
        obj.do_handshake()
    except ssl.SSLWantReadError:
        return True
    except (ValueError, ssl.SSLError):
        return False
    return True


def free_port() -> int:
    """A loopback TCP port nobody listens on (for "connection refused")."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
