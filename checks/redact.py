"""Removes secrets from anything a check produces before it leaves the process.

Two layers, both linear in the length of the text by construction:

- Known values. The values of secret-looking settings are masked wherever they appear, in the
  shapes a server or a log is likely to echo them in: raw, whitespace-collapsed, URL-encoded,
  base64 (standard and URL-safe, padded or not, and at each of the three byte alignments so a
  secret inside a larger blob such as `Basic base64(user:password)` is caught), JSON-escaped
  (with and without `\\/`), and any 12-character run of those (a truncated secret). All forms
  go into one Aho-Corasick automaton (pyahocorasick): one pass over the text finds them all.
- Shapes that are secrets whatever their source (URL credentials, DSN passwords, Bearer/Basic
  values, Slack and AWS tokens, private keys), matched with RE2, which never backtracks.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

import ahocorasick
import re2

MASK = "[REDACTED]"

# Setting names whose values are secrets. DSNs carry passwords and keys, so they count too.
_SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "DSN", "CREDENTIAL", "AUTH")
# Values this short are too likely to collide with ordinary words to be replaced blindly.
_MIN_SECRET_LEN = 4
# From this length on, a value is also masked in its encoded shapes.
_MIN_ENCODED_LEN = 6
# A run this long of a secret (or of one of its encoded forms) is masked: a truncated secret.
RUN = 12
# Values longer than this get runs of their raw and whitespace-collapsed forms only, which keeps
# the automaton small for multi-kilobyte values such as PEM keys.
_RUNS_OF_EVERY_FORM_UP_TO = 512


def _shape(pattern: str) -> Any:
    """RE2 over bytes in Latin-1 mode: every byte is a character, so invalid UTF-8 (lone
    surrogates from surrogateescape) cannot make matching fail, and the patterns only ever
    start and end matches on ASCII bytes, which are never inside a multi-byte character."""
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    return re2.compile(pattern.encode("ascii"), options=options)


# Groups `pre` and `post`, where a pattern has them, are kept around the mask.
_SHAPES: tuple[str, ...] = (
    # scheme://user:password@host -> keep user and host
    r"(?i)(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?P<post>@)",
    # libpq key/value DSN: password=... (quoted, with backslash escapes, or bare)
    r"(?i)(?P<pre>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)",
    # Bearer / Basic authorization values
    r"(?i)(?P<pre>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}",
    # Slack tokens
    r"\bxox[abposre]-[A-Za-z0-9-]{6,}",
    r"\bxapp-\d-[A-Za-z0-9-]{6,}",
    # AWS access key ids and secret keys in assignments
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"(?i)(?P<pre>aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+=]{20,}",
    # PEM private keys; one without its END line (a cut log line) is masked to the end.
    r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
)
_SHAPE_PATTERNS = tuple(_shape(p) for p in _SHAPES)
# One pass that says whether any shape occurs at all: most strings have none.
_ANY_SHAPE = _shape(
    "|".join(
        "(?:" + p.replace("(?P<pre>", "(?:").replace("(?P<post>", "(?:") + ")" for p in _SHAPES
    )
)
_MASK_BYTES = MASK.encode()


def is_secret_name(name: str) -> bool:
    """Whether a setting of this name holds a secret (its value must never be shown)."""
    upper = name.upper()
    return upper.endswith("_KEY") or any(word in upper for word in _SECRET_WORDS)


def _url_forms(value: str) -> set[str]:
    forms = {quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")}
    # Some encoders write %2f rather than %2F.
    forms |= {_lower_hex(f) for f in forms}
    return forms


def _lower_hex(text: str) -> str:
    parts = text.split("%")
    return parts[0] + "".join("%" + p[:2].lower() + p[2:] for p in parts[1:])


def _json_forms(value: str) -> set[str]:
    forms = set()
    for ascii_only in (True, False):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}
    return forms


def _base64_forms(value: str) -> set[str]:
    raw = value.encode("utf-8", "surrogatepass")
    whole = base64.b64encode(raw).decode("ascii")
    forms = {whole, whole.rstrip("=")}
    # Inside a larger blob the secret starts at byte offset 0, 1 or 2 of a 3-byte group; keep
    # the characters that depend on the secret's bytes only.
    for align in range(3):
        encoded = base64.b64encode(b"\0" * align + raw).decode("ascii")
        first = -(-8 * align // 6)
        last = 8 * (align + len(raw)) // 6
        forms.add(encoded[first:last])
    urlsafe = {f.replace("+", "-").replace("/", "_") for f in forms}
    return {f for f in forms | urlsafe if len(f) >= _MIN_ENCODED_LEN}


def _forms(value: str) -> set[str]:
    """Every shape of one secret value that is masked whole."""
    if len(value) < _MIN_ENCODED_LEN:
        return {value}
    bases = {value, " ".join(value.split())}
    forms: set[str] = set()
    for base in bases:
        if len(base) < _MIN_ENCODED_LEN:
            continue
        forms |= {base} | _url_forms(base) | _json_forms(base) | _base64_forms(base)
    return forms


def _structured_parts(value: str) -> list[str] | None:
    """The secret parts of a value that is a URL or a libpq DSN, or None for a plain value.

    Runs of a whole DSN would mask its host name and scheme wherever they appear; the
    credentials inside it are what must not leak in part.
    """
    if "://" in value and "@" in value:
        try:
            parts = urlsplit(value)
            user, password = parts.username, parts.password
        except ValueError:
            return None
        # A key in the user position (Sentry DSN) is the secret when there is no password.
        found = [unquote(p) for p in (password or user,) if p]
        return found or None
    if value.isascii() and "password=" in value.lower():
        tail = value[value.lower().rindex("password=") + len("password=") :]
        word = tail.split()[0].strip("'\"") if tail.split() else ""
        return [word] if word else None
    return None


def _url_password(value: str) -> str | None:
    try:
        password = urlsplit(value).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _runs(text: str) -> Iterable[str]:
    return (text[i : i + RUN] for i in range(len(text) - RUN + 1))


@functools.lru_cache(maxsize=64)
def _automaton(secrets: frozenset[str]) -> Any:
    """One automaton for every masked form of these secrets; values are pattern lengths."""
    patterns: set[str] = set()
    for value in secrets:
        parts = _structured_parts(value)
        if parts is not None:
            patterns |= _forms(value)  # whole forms only
            candidates = [p for p in parts if len(p) >= _MIN_SECRET_LEN]
        else:
            candidates = [value]
        for secret in candidates:
            forms = _forms(secret)
            if len(secret) > _RUNS_OF_EVERY_FORM_UP_TO:
                run_sources = {secret, " ".join(secret.split())}
            else:
                run_sources = forms
            for form in forms | run_sources:
                if len(form) <= RUN:
                    patterns.add(form)
                if form in run_sources:
                    patterns.update(_runs(form))
                elif len(form) > RUN:
                    patterns.add(form)
    if not patterns:
        return None
    automaton = ahocorasick.Automaton()
    for pattern in patterns:
        automaton.add_word(pattern, len(pattern))
    automaton.make_automaton()
    return automaton


def _mask_known(automaton: Any, text: str) -> str:
    """Replace the union of every occurrence of every pattern with one MASK per region."""
    # Matches arrive ordered by their end; a longer one may start before the region in hand,
    # so regions merge backwards (amortised linear: each region is merged away once).
    starts: list[int] = []
    ends: list[int] = []
    for last, length in automaton.iter(text):
        first = last - length + 1
        if ends and first <= ends[-1]:
            ends[-1] = max(ends[-1], last + 1)
            if first < starts[-1]:
                starts[-1] = first
                while len(starts) > 1 and first <= ends[-2]:
                    starts.pop()
                    ends.pop()
                    starts[-1] = min(starts[-1], first)
                    ends[-1] = last + 1
        else:
            starts.append(first)
            ends.append(last + 1)
    if not starts:
        return text
    pieces = [text[: starts[0]]]
    for i, start in enumerate(starts):
        if i:
            pieces.append(text[ends[i - 1] : start])
        pieces.append(MASK)
    pieces.append(text[ends[-1] :])
    return "".join(pieces)


def _mask_shapes(text: str) -> str:
    data = text.encode("utf-8", "surrogatepass")
    if _ANY_SHAPE.search(data) is None:
        return text
    for pattern in _SHAPE_PATTERNS:
        data = _sub(pattern, data)
    return data.decode("utf-8", "surrogatepass")


def _sub(pattern: Any, data: bytes) -> bytes:
    """pattern.sub(pre + MASK + post) without a Python-level template per match."""
    groups = pattern.groupindex
    pre, post = groups.get(b"pre"), groups.get(b"post")
    pieces: list[bytes] = []
    last = 0
    for match in pattern.finditer(data):
        start, end = match.span()
        pieces.append(data[last:start])
        if pre is not None:
            pieces.append(data[start : match.end(pre)])
        pieces.append(_MASK_BYTES)
        if post is not None:
            pieces.append(data[match.start(post) : end])
        last = end
    if not pieces:
        return data
    pieces.append(data[last:])
    return b"".join(pieces)


class Redactor:
    """Masks known secret values and secret-shaped strings in text and nested data."""

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        self._secrets = frozenset(s for s in (secrets or ()) if len(s) >= _MIN_SECRET_LEN)
        self._automaton = _automaton(self._secrets)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Redactor:
        """A redactor that knows the values of every secret-looking setting in env."""
        values = {v.strip() for k, v in env.items() if v and is_secret_name(k)}
        # Any URL setting (DATABASE_URL, REDIS_URL) may carry a password.
        for v in env.values():
            if v and "://" in v and "@" in v:
                password = _url_password(v.strip())
                if password:
                    values.add(password)
        return cls(values)

    def text(self, value: str) -> str:
        """value with every known secret (in any of its forms) and secret shape masked."""
        if self._automaton is not None:
            value = _mask_known(self._automaton, value)
        return _mask_shapes(value)

    def __call__(self, value: Any) -> Any:
        """Redact strings inside dicts, lists, tuples and sets, and bytes (as UTF-8);
        other values are returned as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes | bytearray):
            redacted = self.text(bytes(value).decode("utf-8", "surrogateescape"))
            return type(value)(redacted.encode("utf-8", "surrogateescape"))
        if isinstance(value, Mapping):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, tuple | set | frozenset):
            return type(value)(self(v) for v in value)
        return value
