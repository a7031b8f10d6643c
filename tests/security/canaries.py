"""Canary secrets and every shape a server, a log or a driver may echo them in; and `leaks`,
which looks for any of those shapes (or for the secret decodable from visible base64) in a
piece of output. Written independently of checks.redact, so the tests do not grade the
redactor against its own idea of a secret's forms."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

RUN = 12  # a truncated secret this long is still a leak

# Obviously fake. Two spaces (the whitespace-collapse leak), '/' (JSON's \/), '+' and '='
# (URL encoding).
DB_PASSWORD = "canary-Pa55  not/real+x=1"
AWS_SECRET = "canaryAwsSecret/not+real/0123456789abcdEF"
API_TOKEN = "canary-tok-not-real-7f3a9c1e5b"
CANARY_ENV = {
    "DB_PASSWORD": DB_PASSWORD,
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "PREFLIGHT_API_TOKEN": API_TOKEN,
}


def shapes(secret: str) -> dict[str, str]:
    """name -> the secret as something might echo it (each contains the secret's information)."""
    raw = secret.encode()
    middle = len(secret) // 2 - RUN // 2
    found = {
        "raw": secret,
        "whitespace-collapsed": " ".join(secret.split()),
        "url-encoded": quote(secret, safe=""),
        "url-encoded, plus": quote_plus(secret),
        "url-encoded, lower-case hex": _lower_hex(quote(secret, safe="")),
        "base64": base64.b64encode(raw).decode(),
        "base64 url-safe, unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "Basic header": "Basic " + base64.b64encode(b"app-user:" + raw).decode(),
        "json-escaped": json.dumps(secret)[1:-1],
        "json-escaped with \\/": json.dumps(secret)[1:-1].replace("/", "\\/"),
        "12-char prefix": secret[:RUN],
        "12-char run from the middle": secret[middle : middle + RUN],
    }
    for align in (1, 2):  # inside a larger base64 blob, at each byte alignment
        blob = b"{" * align + raw + b"}"
        found[f"inside base64, offset {align}"] = base64.b64encode(blob).decode()
    return found


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _forms(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {_lower_hex(quote(secret, safe="")), _lower_hex(quote_plus(secret))}
    forms |= {json.dumps(secret)[1:-1].replace("/", "\\/")}
    collapsed = " ".join(secret.split())
    if len(collapsed) >= 6:
        forms.add(collapsed)
    for run_source in (secret, collapsed):
        forms |= {run_source[i : i + RUN] for i in range(len(run_source) - RUN + 1)}
    raw = secret.encode()
    forms |= {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {f for f in forms if f}


_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}")


def _decodable(text: str) -> list[bytes]:
    """Every byte string visible base64 in text decodes to, at each of the 4 phases."""
    decoded = []
    for match in _B64_RUN.finditer(text):
        run = match.group(0).replace("-", "+").replace("_", "/")
        for phase in range(4):
            chunk = run[phase:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            if chunk:
                decoded.append(base64.b64decode(chunk))
    return decoded


def leaks(secret: str, text: str) -> list[str]:
    """The shapes of secret found in text (empty when none is)."""
    found = sorted(f for f in _forms(secret) if f in text)
    raw = secret.encode()
    pieces = {raw[i : i + 6] for i in range(len(raw) - 5)}
    for decoded in _decodable(text):
        found += [f"base64 of {p!r}" for p in pieces if p in decoded]
    return found
