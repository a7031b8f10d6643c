"""TLS servers this machine's OpenSSL would rather not talk to: RSA-1024 and SHA-1 certificates
signed by the test CA, and servers that speak only TLS 1.0 or 1.1.

trustme issues only strong certificates, so the weak ones are built here with `cryptography`
and signed by an RSA test CA of their own (`weak_ca`, `weak_ca_bundle`). cryptography 50 no
longer signs certificates with SHA-1, so the SHA-1 one is assembled from parts: the
to-be-signed bytes with the sha1WithRSAEncryption identifier (same length as SHA-256's),
signed with PKCS#1 v1.5 over SHA-1. The server contexts run at OpenSSL security level 0, the
only level at which OpenSSL 3 loads such keys or speaks TLS 1.0/1.1.

Fixtures:
- `weak_certs`: PEM (cert, key) pairs by name: rsa1024, sha1, ec_p256 (a strong control).
- `weak_tls_server`: factory `weak_tls_server(name, only=None)`; only = ssl.TLSVersion to
  speak that version and nothing else (e.g. TLSv1), with the session CA's valid certificate
  (tls_servers' `ca_bundle`) when name is None.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.tls_servers import LOOPBACK, TLSServer, _Listener

_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")  # OID 1.2.840.113549.1.1.11
_SHA1_RSA = bytes.fromhex("06092a864886f70d010105")  # OID 1.2.840.113549.1.1.5


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)])
        + (n.to_bytes((n.bit_length() + 7) // 8, "big"))
    )
    return bytes([tag]) + length + body


def resign_sha1(cert: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """cert (signed by ca_key with SHA-256) signed again with SHA-1, as old CAs did."""
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_SHA256_RSA) == 1, "expected one sha256WithRSAEncryption identifier"
    tbs = tbs.replace(_SHA256_RSA, _SHA1_RSA)
    signature = ca_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - weak on purpose
    algorithm = _der(0x30, _SHA1_RSA + b"\x05\x00")
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def weak_leaf(
    ca: trustme.CA,
    key: Any,
    algorithm: hashes.HashAlgorithm,
    names: tuple[str, ...] = (LOOPBACK, "localhost"),
) -> tuple[bytes, bytes]:
    """A leaf certificate for names with key, signed by the test CA with algorithm: (cert
    PEM, key PEM)."""
    import ipaddress

    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    now = datetime.now(UTC)
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=400))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256() if isinstance(algorithm, hashes.SHA1) else algorithm)  # type: ignore[arg-type]
    )
    if isinstance(algorithm, hashes.SHA1):
        assert isinstance(ca_key, rsa.RSAPrivateKey), "SHA-1 certificates need an RSA CA"
        cert = resign_sha1(cert, ca_key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="session")
def weak_ca() -> trustme.CA:
    return trustme.CA(key_type=trustme.KeyType.RSA)


@pytest.fixture(scope="session")
def weak_ca_bundle(weak_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """PREFLIGHT_CA_BUNDLE for the weak certificates."""
    path = Path(tmp_path_factory.mktemp("weak-ca")) / "ca.pem"
    weak_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def weak_certs(weak_ca: trustme.CA) -> dict[str, tuple[bytes, bytes]]:
    def rsa_key(bits: int) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)

    return {
        "rsa1024": weak_leaf(weak_ca, rsa_key(1024), hashes.SHA256()),
        "sha1": weak_leaf(weak_ca, rsa_key(2048), hashes.SHA1()),  # noqa: S303 - weak on purpose
        "ec_p256": weak_leaf(weak_ca, ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()),
    }


def level0_context(
    cert_pem: bytes, key_pem: bytes, only: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A server context at security level 0 for this certificate; only= pins one version."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if only is not None:
        context.minimum_version = only
        context.maximum_version = only
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


class ContextTLSServer(_Listener):
    """TLSServer's behaviour (handshake, tiny HTTP answer) with a context given whole."""

    _handshake = TLSServer._handshake

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.delay_s = 0.0
        self.handshakes: list[str] = []
        super().__init__(self._handshake)


@pytest.fixture
def weak_tls_server(
    weak_certs: dict[str, tuple[bytes, bytes]], tls_certs: dict[str, trustme.LeafCert]
) -> Iterator[Callable[..., ContextTLSServer]]:
    started: list[ContextTLSServer] = []

    def start(name: str | None, only: ssl.TLSVersion | None = None) -> ContextTLSServer:
        if name is None:
            valid = tls_certs["valid"]
            pair = (
                b"".join(b.bytes() for b in valid.cert_chain_pems),
                valid.private_key_pem.bytes(),
            )
        else:
            pair = weak_certs[name]
        server = ContextTLSServer(level0_context(*pair, only=only))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
