"""Removes secrets from anything a check produces before it leaves the process.

Two layers: the values of secret-looking settings are replaced wherever they appear (so a
password echoed in a driver's error message is caught), and shapes that are secrets whatever
their source (URL credentials, DSN passwords, Slack and AWS tokens, private keys) are masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

# Setting names whose values are secrets. DSNs carry passwords and keys, so they count too.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|_KEY$|DSN|CREDENTIAL|AUTH)", re.I)
# Values this short are too likely to collide with ordinary words to be replaced blindly.
_MIN_SECRET_LEN = 4

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> keep user and host
    (re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)", re.I), r"\g<pre>" + MASK),
    # libpq key/value DSN: password=... (quoted or bare)
    (re.compile(r"(?P<pre>\bpassword\s*=\s*)('[^']*'|\"[^\"]*\"|\S+)", re.I), r"\g<pre>" + MASK),
    # Bearer / Basic authorization values
    (re.compile(r"(?P<pre>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\g<pre>" + MASK),
    # Slack tokens
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{6,}"), MASK),
    (re.compile(r"\bxapp-\d-[A-Za-z0-9-]{6,}"), MASK),
    # AWS access key ids and secret keys in assignments
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (
        re.compile(r"(?P<pre>aws_secret_access_key\s*[=:]\s*)[A-Za-z0-9/+=]{20,}", re.I),
        r"\g<pre>" + MASK,
    ),
    # PEM private keys
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MASK,
    ),
)


def is_secret_name(name: str) -> bool:
    """Whether a setting of this name holds a secret (its value must never be shown)."""
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Masks known secret values and secret-shaped strings in text and nested data."""

    def __init__(self, secrets: set[str] | None = None) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(
            {s for s in (secrets or set()) if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Redactor:
        """A redactor that knows the values of every secret-looking setting in env."""
        values = {v.strip() for k, v in env.items() if v and is_secret_name(k)}
        return cls(values)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        for pattern, repl in _PATTERNS:
            value = pattern.sub(repl, value)
        return value

    def __call__(self, value: Any) -> Any:
        """Redact strings inside dicts, lists, tuples and sets; other values as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, tuple | set | frozenset):
            return type(value)(self(v) for v in value)
        return value
