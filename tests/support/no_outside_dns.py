"""No test asks a DNS server outside this machine: a name the tests cannot have made up locally
does not resolve, at once, the way RFC 6761 says `.invalid` never does.

Tests aim checks at names such as `preflight-target.invalid` to see how they fail. The system
resolver sent those queries to the machine's nameserver, which sometimes answered only after
its retry timeout: a check then ran out of its 3 s instead of failing on the name, and a suite
run failed now and then (`test_unknown_host`). Loopback names, IP literals and this machine's
own name resolve as before."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOCAL = {"localhost", "localhost.localdomain", socket.gethostname().lower()}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    name = name.lower().rstrip(".")
    if name in _LOCAL or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True, scope="session")
def _no_outside_dns() -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.getaddrinfo = real  # type: ignore[assignment]
