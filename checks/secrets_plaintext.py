"""No plaintext credential in the documents and configuration the team shares.

Scans PREFLIGHT_SCAN_PATHS (comma-separated files and directories; default: the checklist
document) line by line for:
- assignments to secret-looking names, shell/.env style: `PGPASSWORD=...`, `export
  API_TOKEN="..."`, `AWS_SECRET_ACCESS_KEY = ...` (upper-case names containing PASSWORD,
  PASSWD, PWD, SECRET, TOKEN, API_KEY, ACCESS_KEY, PRIVATE_KEY, AUTH);
- key/value fields, Markdown prose and lists, YAML and JSON: `Password: value`, `- **DB
  password**: value`, `"api_key": "value"`, `password: value`;
- URLs with credentials (`scheme://user:password@host`), `Bearer` tokens;
- shapes that are secrets wherever they are: AWS access key ids, Slack tokens and webhooks,
  GitHub/npm/SendGrid/Stripe tokens, JWTs, PEM private keys.

Not secrets (placeholders and references): `$VAR`, `${VAR}`, `"$VAR"` wholly (a `$` followed
by anything else, `$uperS3cret!2024`, is a value), `$(cmd)`, anything in
`[...]`, `<...>` or `{{...}}`, `YOUR_...`, `***`/`xxx`, the bare words password/secret/token,
code references (`process.env.X`, `os.environ[...]`, `config.get(...)`), and, in the
key/value form, a value containing spaces: that is prose ("Password: kept in the secrets
manager, read from `DB_PASSWORD`"), not a credential. A line carrying `pragma: allowlist
secret` (detect-secrets' marker) is skipped.

Each finding is {file, line, kind, fingerprint}: fingerprint = the first 16 hex digits of the
value's SHA-256, so a finding can be discussed and allowlisted (PREFLIGHT_SECRETS_ALLOWLIST,
comma-separated fingerprints) without anyone seeing the value. Bounded: binary files, files
over 5 MB and .git/node_modules/.venv (and similar) directories are skipped, and the scan stops
at the check's deadline (UNKNOWN if it found nothing by then).

Symbolic links are followed, to files and to directories: Kubernetes mounts secrets as
symlinks (`password -> ..data/password`, `..data -> ..2025_01_01_00_00_00.123`). Each real
file is scanned once (the first path that reaches it is the one reported) and each real
directory walked once, so a link loop ends. No file scanned at all is UNKNOWN, not PASS.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from checks.base import Check, CheckContext, Result, Status

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_FINDINGS_SHOWN = 50
SKIP_DIRS = frozenset(
    {
        ".git",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".hg",
        ".svn",
    }
)
# In these, an unquoted value after `password =` or `token:` is an expression, not a secret.
CODE_SUFFIXES = frozenset(
    {
        *(".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".vue", ".svelte"),
        *(".go", ".rb", ".java", ".kt", ".kts", ".scala", ".groovy", ".php", ".cs", ".rs"),
        *(".swift", ".c", ".h", ".cc", ".cpp", ".hpp", ".m", ".lua", ".pl", ".r", ".dart"),
    }
)
BUNDLED_CHECKLIST = Path(__file__).resolve().parent.parent / "bot" / "content" / "checklist.md"

_SECRET_WORD = r"(?:PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH)"  # noqa: S105
# NAME=value / export NAME="value" / NAME = value (upper-case names, as in .env and shell)
_ENV_ASSIGN = re.compile(
    r"(?<![\w.$])(?:export\s+)?(?P<name>[A-Z][A-Z0-9_]*" + _SECRET_WORD + r"[A-Z0-9_]*)"
    r"\s*(?<![=!<>])=(?!=)\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'`#;|&,)]+)"
)
# ini-style credentials files use lower case
_AWS_SECRET_INI = re.compile(
    r"^\s*aws_secret_access_key\s*=\s*(?P<value>[A-Za-z0-9/+=]{20,})\s*$", re.I
)
# a key at the start of a line (after list bullet, checkbox, bold), then ":" or "="
_KEY_WORD = (
    r"(?:password|passwd|passphrase|secret|token|api[_ -]?key|access[_ -]?key|private[_ -]?key)"
)
_LEADING_KEY = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\[[ xX]\]\s+)?(?:\*\*|__)?[\"']?"
    r"(?P<key>[A-Za-z0-9_. -]{0,30}?" + _KEY_WORD + r"[A-Za-z0-9_.-]{0,30})"
    r"[\"']?(?:\*\*|__)?\s*(?::|(?<![=!<>])=(?!=))\s*(?:\*\*|__)?(?P<value>.+?)\s*$",
    re.I,
)
# a string literal given to a secret-looking key anywhere in a line: JSON `"password": "x"`,
# JS `{ password: 'x' }`, Python `connect(password="x")`
_QUOTED_PAIR = re.compile(
    r"(?<![\w.-])[\"']?(?P<key>[\w.-]*" + _KEY_WORD + r"[\w.-]*)[\"']?"
    r"\s*(?::|(?<![=!<>])=(?!=))\s*(?P<value>\"[^\"]*\"|'[^']*')",
    re.I,
)
_URL_CREDENTIALS = re.compile(
    r"\b[a-z][a-z0-9+.-]*://(?P<user>[^\s:/@'\"]+):(?P<value>[^\s@/'\"]+)@[\w.-]+", re.I
)
_BEARER = re.compile(r"\bBearer\s+(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("aws_access_key", re.compile(r"\b(?P<value>(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b")),
    ("slack_token", re.compile(r"\b(?P<value>xox[abposre]-(?:\d+-)+[A-Za-z0-9-]+)", re.I)),
    ("slack_token", re.compile(r"\b(?P<value>xapp-\d-[A-Za-z0-9-]{10,})")),
    (
        "slack_webhook",
        re.compile(
            r"(?P<value>https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+)"
        ),
    ),
    ("github_token", re.compile(r"\b(?P<value>gh[pousr]_[A-Za-z0-9]{36,})\b")),
    ("npm_token", re.compile(r"\b(?P<value>npm_[A-Za-z0-9]{36})\b")),
    ("sendgrid_key", re.compile(r"\b(?P<value>SG\.[\w-]{16,32}\.[\w-]{16,64})")),
    ("stripe_key", re.compile(r"\b(?P<value>[rs]k_live_[0-9a-zA-Z]{20,})")),
    (
        "jwt",
        re.compile(
            r"\b(?P<value>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
        ),
    ),
)
_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")

_PLACEHOLDER = re.compile(
    r"""^(?:
        \$[A-Za-z_][A-Za-z0-9_]*            # $VAR, wholly: `$uperS3cret!2024` is a password
      | \$\{[^{}$]*\}                        # ${VAR}, ${VAR:-default}, wholly
      | \$\(.*                               # $(command): a command substitution
      | \[.* | <.* | \{\{.* | %\(.*\)s | %s   # [...], <...>, {{...}} (cut at a space too)
      | (?:your|example|sample|dummy|placeholder)[_-].*
      | \*+ | x{3,} | \.{3,} | …
      | (?:password|passwd|pass|secret|token|value|string)        # the word itself
      | (?:none|null|nil|true|false|undefined|redacted)
    )$""",
    re.I | re.X,
)
# an environment variable's name (`Bearer PREFLIGHT_API_TOKEN`, `"password": "PGPASSWORD"`)
_VARIABLE_NAME = re.compile(r"^[A-Z][A-Z0-9_]+$")
_CODE_REFERENCE = re.compile(
    r"^(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+|[A-Za-z_$][\w$.]*\s*[(\[]).*$"
)
_ALLOW_PRAGMA = re.compile(r"pragma:\s*allowlist[ -]secret", re.I)
_MIN_VALUE_LENGTH = 4


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    kind: str
    fingerprint: str

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "fingerprint": self.fingerprint,
        }


def fingerprint(value: str) -> str:
    """What identifies a secret in results and allowlists: never the value itself."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _unquote(value: str) -> tuple[str, bool]:
    value = value.strip()
    for quote in ('"', "'", "`"):
        if len(value) >= 2 and value[0] == quote and value[-1] == quote:
            return value[1:-1], True
    return value, False


def is_placeholder(value: str) -> bool:
    """A template or a reference to where the secret really lives, not a secret."""
    value = value.strip()
    return (
        len(value) < _MIN_VALUE_LENGTH
        or bool(_PLACEHOLDER.match(value))
        or bool(_VARIABLE_NAME.match(value))
    )


def _field_value(raw: str, code: bool = False) -> str | None:
    """The secret in the value part of a key/value field, or None if it is not one.
    In source code only a string literal can be a credential: the rest are expressions."""
    raw = raw.strip().rstrip(",;").strip()
    value, quoted = _unquote(raw)
    if not quoted and raw.startswith(('"', "'", "`")):
        # a quoted literal followed by more text: `"x" # comment`, `'x',`
        match = re.match(r"^([\"'`])(.*?)\1", raw)
        if match:
            value, quoted = match.group(2), True
    if not quoted:
        if code:
            return None
        value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        if re.search(r"\s", value):  # prose: "kept in the secrets manager"
            return None
        if _CODE_REFERENCE.match(value):
            return None
    if is_placeholder(value):
        return None
    return value


def is_source_code(path: Path) -> bool:
    return path.suffix.lower() in CODE_SUFFIXES


def scan_lines(lines: list[str], display: str, code: bool = False) -> Iterator[Finding]:
    """Findings in one file's lines; display is the path to report; code=True for source
    code, where only string literals count in assignments and fields."""
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        index += 1
        if _ALLOW_PRAGMA.search(line):
            continue
        if _PRIVATE_KEY_BEGIN.search(line):
            body = [line]
            while index < len(lines) and len(body) < 200:
                body.append(lines[index])
                index += 1
                if _PRIVATE_KEY_END.search(body[-1]):
                    break
            yield Finding(display, number, "private_key", fingerprint("\n".join(body)))
            continue
        seen: set[str] = set()
        for kind, value in _line_candidates(line, code):
            if value and value not in seen:
                seen.add(value)
                yield Finding(display, number, kind, fingerprint(value))


def _line_candidates(line: str, code: bool) -> Iterator[tuple[str, str]]:
    """(kind, value) for each credential-looking value in one line."""
    for kind, pattern in _SHAPES:
        for match in pattern.finditer(line):
            yield kind, match.group("value")
    for match in _URL_CREDENTIALS.finditer(line):
        if not is_placeholder(match.group("value")):
            yield "url_credentials", match.group("value")
    for match in _BEARER.finditer(line):
        if not is_placeholder(match.group("value")):
            yield "bearer_token", match.group("value")
    for match in _ENV_ASSIGN.finditer(line):
        value, quoted = _unquote(match.group("value"))
        if not quoted and (code or _CODE_REFERENCE.match(value)):
            continue
        if not is_placeholder(value):
            yield "secret_assignment", value
    ini = _AWS_SECRET_INI.match(line)
    if ini:
        yield "secret_assignment", ini.group("value")
    for match in _QUOTED_PAIR.finditer(line):
        field_value = _field_value(match.group("value"), code)
        if field_value is not None:
            yield "secret_field", field_value
    leading = _LEADING_KEY.match(line)
    if leading and not _ENV_ASSIGN.search(line):
        field_value = _field_value(leading.group("value"), code)
        if field_value is not None:
            yield "secret_field", field_value


def _is_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\0" in f.read(8192)


def _walk_order(name: str) -> tuple[bool, str]:
    # Kubernetes' `..data`/`..2025_…` directories after the names that link into them, so
    # a finding is reported at `mount/password`, the path people know.
    return (name.startswith("."), name)


def _files(root: Path, walked: set[str]) -> Iterator[Path]:
    """Files under root, following symlinks; walked holds the real directories already
    walked (shared across roots), which ends link loops and repeated mounts."""
    if not root.is_dir():
        yield root
        return
    for directory, subdirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(directory)
        if real in walked:
            subdirs[:] = []
            continue
        walked.add(real)
        subdirs[:] = sorted(
            (
                d
                for d in subdirs
                if d not in SKIP_DIRS and os.path.realpath(os.path.join(directory, d)) not in walked
            ),
            key=_walk_order,
        )
        for name in sorted(names, key=_walk_order):
            yield Path(directory) / name


def scan_paths(
    roots: list[Path], deadline: float | None = None
) -> tuple[list[Finding], dict[str, int], bool]:
    """(findings, counters, complete) for files under roots. Symlinks are followed; each
    real file is scanned once."""
    findings: list[Finding] = []
    counts = {
        "files_scanned": 0,
        "symlinks_followed": 0,
        "duplicates": 0,
        "broken_links": 0,
        "skipped_binary": 0,
        "skipped_large": 0,
        "unreadable": 0,
    }
    walked: set[str] = set()
    scanned: set[str] = set()
    for root in roots:
        for path in _files(root, walked):
            if deadline is not None and time.monotonic() > deadline:
                return findings, counts, False
            link = path.is_symlink()
            if link and not path.exists():
                counts["broken_links"] += 1
                continue
            if not path.is_file():  # sockets, fifos, devices
                continue
            real = os.path.realpath(path)
            if real in scanned:
                counts["duplicates"] += 1
                continue
            scanned.add(real)
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    counts["skipped_large"] += 1
                    continue
                if _is_binary(path):
                    counts["skipped_binary"] += 1
                    continue
                text = path.read_text("utf-8", errors="replace")
            except OSError:
                counts["unreadable"] += 1
                continue
            counts["files_scanned"] += 1
            if link or os.path.realpath(path.parent) != os.path.abspath(path.parent):
                counts["symlinks_followed"] += 1
            findings.extend(_scan_text(text, str(path), is_source_code(path)))
    return findings, counts, True


# A file's findings by its content's SHA-256 (with the path reported and whether it is code):
# every status run rescans the same files, and matching every line against every pattern
# cost half of a whole run's CPU (the bundled checklist: 30 ms of 60), while hashing what was
# read costs a fraction of a millisecond. The file is still read every time, so a changed
# file is scanned afresh; what is kept are fingerprints, never values.
_SCANNED: OrderedDict[tuple[bytes, str, bool], tuple[Finding, ...]] = OrderedDict()
_SCANNED_LOCK = threading.Lock()
_SCANNED_MAX = 4096


def _scan_text(text: str, display: str, code: bool) -> tuple[Finding, ...]:
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()
    key = (digest, display, code)
    with _SCANNED_LOCK:
        found = _SCANNED.get(key)
        if found is not None:
            _SCANNED.move_to_end(key)
            return found
    found = tuple(scan_lines(text.splitlines(), display, code))
    with _SCANNED_LOCK:
        _SCANNED[key] = found
        while len(_SCANNED) > _SCANNED_MAX:
            _SCANNED.popitem(last=False)
    return found


def _roots(ctx: CheckContext) -> list[Path]:
    configured = ctx.setting("PREFLIGHT_SCAN_PATHS")
    if configured:
        return [Path(p.strip()).expanduser() for p in configured.split(",") if p.strip()]
    return [Path(ctx.checklist_path) if ctx.checklist_path else BUNDLED_CHECKLIST]


def run(ctx: CheckContext) -> Result:
    roots = _roots(ctx)
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        return Result(
            Status.ERROR,
            f"cannot scan for plaintext secrets: {', '.join(missing)} not found",
            {"missing_paths": missing},
            "Fix PREFLIGHT_SCAN_PATHS (comma-separated files or directories).",
        )
    allowlist = {
        f.strip().lower()
        for f in (ctx.setting("PREFLIGHT_SECRETS_ALLOWLIST") or "").split(",")
        if f.strip()
    }
    deadline = time.monotonic() + max(ctx.timeout_s - 0.5, 0.5)
    found, counts, complete = scan_paths(roots, deadline)
    findings = [f for f in found if f.fingerprint not in allowlist]
    evidence = {
        "paths": [str(r) for r in roots],
        **counts,
        "complete": complete,
        "allowlisted": len(found) - len(findings),
        "findings_total": len(findings),
        "findings": [f.as_dict() for f in findings[:MAX_FINDINGS_SHOWN]],
    }
    scanned = f"{counts['files_scanned']} file{'s' if counts['files_scanned'] != 1 else ''}"
    if findings:
        first = findings[0]
        places = len({f.file for f in findings})
        return Result(
            Status.FAIL,
            f"{len(findings)} plaintext credential{'s' if len(findings) != 1 else ''} in "
            f"{places} of {scanned} scanned (first: {first.kind} at {first.file}:{first.line})",
            evidence,
            "Move each value to the secrets manager and reference it ($VAR / [SECURE_...]), then "
            "rotate it: it has been exposed. If a finding is not a secret, add its fingerprint "
            "to PREFLIGHT_SECRETS_ALLOWLIST.",
        )
    if not complete:
        return Result(
            Status.UNKNOWN,
            f"secret scan stopped at the time limit after {scanned}; none found so far",
            evidence,
            "Narrow PREFLIGHT_SCAN_PATHS to the documents and config directories that matter.",
        )
    if counts["files_scanned"] == 0:
        skipped = {k: v for k, v in counts.items() if v and k != "files_scanned"}
        why = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in skipped.items()) or "empty"
        return Result(
            Status.UNKNOWN,
            f"no file could be scanned for secrets under {', '.join(str(r) for r in roots)} "
            f"({why})",
            evidence,
            "Point PREFLIGHT_SCAN_PATHS at the documents and config files to scan (text files; "
            "symlinks are followed).",
        )
    return Result(
        Status.PASS,
        f"no plaintext credentials in {scanned} scanned under {', '.join(str(r) for r in roots)}",
        evidence,
        observations=counts["files_scanned"],
    )


CHECK = Check(
    id="secrets_plaintext",
    title="No plaintext secrets in documents and config",
    section="Environment Configuration",
    run=run,
    settings=("PREFLIGHT_SCAN_PATHS", "PREFLIGHT_SECRETS_ALLOWLIST"),
    severity="critical",
    blocking=True,
    timeout_s=30.0,
    max_age_s=3600,
    description=("No plaintext credential in the shared documents and config"),
    criteria=(
        "Scans `PREFLIGHT_SCAN_PATHS` (comma-separated files/directories; default the "
        "checklist), following symlinks (Kubernetes secret mounts; loops ended, each real "
        "file once). FAIL on any finding not allowlisted (`PREFLIGHT_SECRETS_ALLOWLIST`, "
        "comma-separated fingerprints): `*PASSWORD=`/`*TOKEN=`/`*SECRET=` assignments, "
        "`Password: value` fields (Markdown prose and lists, YAML, JSON), `user:password@` "
        "URLs, Bearer tokens, AWS keys, Slack/GitHub/npm/SendGrid/Stripe tokens, JWTs, "
        "private keys; at least every line detect-secrets' default plugins flag. Placeholders "
        "(`$VAR`, `${VAR}` and `$(cmd)` wholly, `[...]`, `<...>`, `YOUR_...`, `***`) and "
        "prose (a value with spaces) are not secrets; `$uperS3cret!2024` is. PASS names the "
        "files scanned (observations: files scanned). UNKNOWN: no file scanned (empty "
        "directory, only binaries) or the time limit hit first. Evidence: `{file, line, kind, "
        "fingerprint}` (sha256 prefix), never the value. Skips binaries, files over 5 MB, "
        "`.git`/`node_modules`/`.venv`"
    ),
    anchor="detect-secrets (default plugins, as a floor)",
)
