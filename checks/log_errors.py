"""The application's logs show no errors in the recent window ("Error rate normal").

Reads the tail (at most 8 MB) of each file in PREFLIGHT_LOG_FILES (comma-separated paths or
glob patterns) and counts the error lines of the last PREFLIGHT_LOG_WINDOW_MINUTES (60).

Timestamps: ISO 8601 (`2025-10-25T14:03:07.123Z`, `2025-10-25 14:03:07,123`), JSON lines
(`timestamp`/`time`/`@timestamp`/`ts`, ISO or epoch seconds/milliseconds), common/combined
log format (`[25/Oct/2025:14:03:07 +0000]`) and syslog (`Oct 25 14:03:07`). A timestamp
without a zone is local time. A line without a timestamp continues the entry above it (a
stack trace, a multi-line message) and shares its time; it counts as an error of its own only
when its entry was not already one. Lines before any timestamp, and files with no
timestamps at all, are inside the window when the file was modified within it.

Error lines: level error/fatal/critical (JSON `level`, pino/bunyan numeric levels >= 50,
`level=error`, `[error]`, an upper-case ERROR/FATAL/CRITICAL word, or the first word after
the timestamp) and HTTP 5xx responses.

HTTP responses are recognised in the access-log formats a Node backend writes:
- Apache/nginx and morgan `combined`/`common`: `"GET /x HTTP/1.1" 500 12`;
- morgan `dev` (`GET /api/leads 500 12.3 ms - 12`, colours stripped), `tiny`
  (`GET /api/leads 500 12 - 3.4 ms`) and `short` (`GET /x HTTP/1.1 500 12 - 3.4 ms`);
- pino-http/bunyan JSON (`"res":{"statusCode":500}`), a top-level `statusCode`/`status`/
  `status_code`, ECS `http.response.status_code`;
- logfmt (`status=500`, `status_code=500`, `statusCode=500`).
The 5xx rate is 5xx responses / HTTP responses in the window.

Status: no log line at all in the window UNKNOWN (is the app logging?); a 5xx rate above
PREFLIGHT_LOG_MAX_5XX_PERCENT (default 1, i.e. 99% of responses must not be server errors)
FAIL; more error lines than PREFLIGHT_LOG_MAX_ERRORS (only when that is set: the checklist
asks for a "normal" error rate, which is a judgement) FAIL; any other error line or 5xx WARN;
none PASS, naming the lines read. Up to five error lines, cut at 200 characters and
redacted, go into the evidence.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from checks.base import Check, CheckContext, Result, Status, skipped
from checks.redact import Redactor

MAX_TAIL_BYTES = 8 * 1024 * 1024
MAX_SAMPLES = 5
SAMPLE_CHARS = 200
DEFAULT_WINDOW_MINUTES = 60
DEFAULT_MAX_5XX_PERCENT = 1.0
_FUTURE_SLACK = timedelta(minutes=5)  # clocks of the writer and of this machine differ a bit

_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:[.,](?P<frac>\d{1,9}))?"
    r"\s?(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_CLF = re.compile(
    r"\[(?P<day>\d{2})/(?P<mon>[A-Z][a-z]{2})/(?P<year>\d{4}):(?P<time>\d{2}:\d{2}:\d{2})"
    r" (?P<tz>[+-]\d{4})\]"
)
_SYSLOG = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2})\b")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ERROR_LEVELS = {
    "error",
    "err",
    "fatal",
    "critical",
    "crit",
    "emerg",
    "emergency",
    "alert",
    "panic",
}
_LEVEL_WORD = re.compile(r"\b(?:ERROR|FATAL|CRITICAL|CRIT|EMERG|ALERT|SEVERE|PANIC)\b")
_LEVEL_FIELD = re.compile(
    r"\b(?:level|lvl|severity)\s*[=:]\s*\"?(?:error|err|fatal|critical|crit|emerg|alert|panic)\b",
    re.I,
)
_BRACKET_LEVEL = re.compile(r"\[(?:error|fatal|critical|crit|emerg|alert)\]", re.I)
_FIRST_WORD = re.compile(r"^[\s\W]*(?:error|fatal|critical)\b", re.I)
_METHOD = r"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE)"
# The status code of one HTTP response, by format. Each is linear: every repeat is bounded
# by a character the next part cannot start with.
_HTTP_STATUS = (
    re.compile(r"\"" + _METHOD + r" [^\"]*\" (?P<status>[1-5]\d\d)\b"),  # combined, common
    re.compile(r"\b" + _METHOD + r" \S+ HTTP/[\d.]+ (?P<status>[1-5]\d\d) "),  # morgan short
    re.compile(r"\b" + _METHOD + r" \S+ (?P<status>[1-5]\d\d) (?:[\d.]+ ms|\S+ - [\d.]+ ms)"),
    re.compile(  # logfmt
        r"(?:^|\s)(?:status|status_code|statusCode|http_status|response_status)="
        r"\"?(?P<status>[1-5]\d\d)\b"
    ),
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# JSON: pino-http and bunyan `res.statusCode`, Express-style top-level fields, ECS
_JSON_STATUS_PATHS = (
    ("res", "statusCode"),
    ("res", "status"),
    ("response", "statusCode"),
    ("response", "status_code"),
    ("response", "status"),
    ("http", "response", "status_code"),
    ("statusCode",),
    ("status_code",),
    ("status",),
    ("http_status",),
)
_JSON_TIME_KEYS = ("timestamp", "time", "@timestamp", "ts", "date", "datetime")
_JSON_LEVEL_KEYS = ("level", "severity", "levelname", "lvl", "log.level")


class LogSettingsError(Exception):
    """The log settings cannot be used."""


def _local_tz() -> timezone:
    offset = datetime.now().astimezone().utcoffset() or timedelta(0)
    return timezone(offset)


def _iso(match: re.Match[str]) -> datetime | None:
    frac = (match.group("frac") or "0")[:6].ljust(6, "0")
    try:
        value = datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{frac}")
    except ValueError:
        return None
    tz = match.group("tz")
    if tz is None:
        return value.replace(tzinfo=_local_tz())
    if tz == "Z":
        return value.replace(tzinfo=UTC)
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return value.replace(tzinfo=timezone(sign * offset))


def _from_json_time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        match = _ISO.search(value)
        return _iso(match) if match else None
    return None


def _json_level_is_error(value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value >= 50  # pino and bunyan: 50 error, 60 fatal
    return isinstance(value, str) and value.strip().lower() in _ERROR_LEVELS


def _json_entry(doc: dict[str, Any]) -> tuple[datetime | None, bool]:
    when = next(
        (t for k in _JSON_TIME_KEYS if (t := _from_json_time(doc.get(k))) is not None), None
    )
    level = next((doc[k] for k in _JSON_LEVEL_KEYS if k in doc), None)
    if level is None and isinstance(doc.get("log"), dict):
        level = doc["log"].get("level")  # Elastic Common Schema: log.level
    return when, _json_level_is_error(level)


def _status_value(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) == 3 and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    return None


def json_http_status(doc: dict[str, Any]) -> int | None:
    """The HTTP status of a JSON log record (pino-http, bunyan, ECS), or None."""
    for path in _JSON_STATUS_PATHS:
        node: Any = doc
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        status = _status_value(node)
        if status is not None:
            return status
    return None


def http_status(line: str) -> int | None:
    """The HTTP status of a text access-log line (combined, common, morgan, logfmt), or None."""
    if "\x1b" in line:  # morgan dev colours the status code
        line = _ANSI.sub("", line)
    for pattern in _HTTP_STATUS:
        match = pattern.search(line)
        if match:
            return int(match.group("status"))
    return None


def parse_line(line: str, now: datetime) -> tuple[datetime | None, bool]:
    """(timestamp or None, is an error line) for one log line."""
    ts, is_error, _ = parse_entry(line, now)
    return ts, is_error


def parse_entry(line: str, now: datetime) -> tuple[datetime | None, bool, int | None]:
    """(timestamp or None, is an error line, HTTP status or None) for one log line. A 5xx
    response is an error line."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            when, is_error = _json_entry(doc)
            status = json_http_status(doc)
            return when, is_error or (status is not None and status >= 500), status
    head = line[:120]
    ts: datetime | None = None
    rest = line
    if match := _ISO.search(head):
        ts = _iso(match)
        rest = line[match.end() :]
    elif match := _CLF.search(head):
        month = _MONTHS.get(match.group("mon"))
        if month:
            tz = match.group("tz")
            offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * (
                1 if tz[0] == "+" else -1
            )
            ts = datetime.fromisoformat(
                f"{match.group('year')}-{month:02d}-{match.group('day')}T{match.group('time')}"
            ).replace(tzinfo=timezone(offset))
            rest = line[match.end() :]
    elif match := _SYSLOG.match(line):
        month = _MONTHS.get(match.group("mon"))
        if month:
            local = now.astimezone(_local_tz())
            ts = datetime.fromisoformat(
                f"{local.year}-{month:02d}-{int(match.group('day')):02d}T{match.group('time')}"
            ).replace(tzinfo=_local_tz())
            if ts > now + timedelta(days=1):  # December's lines read in January
                ts = ts.replace(year=ts.year - 1)
            rest = line[match.end() :]
    status = http_status(line)
    is_error = bool(
        _LEVEL_WORD.search(line)
        or _LEVEL_FIELD.search(line)
        or _BRACKET_LEVEL.search(line)
        or _FIRST_WORD.match(rest)
        or (status is not None and status >= 500)
    )
    return ts, is_error, status


@dataclass
class FileScan:
    path: str
    bytes_read: int = 0
    truncated: bool = False
    lines_in_window: int = 0
    errors: int = 0
    responses: int = 0  # HTTP responses (access-log records) in the window
    responses_5xx: int = 0
    untimestamped_in_window: int = 0
    samples: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "bytes_read": self.bytes_read,
            "truncated": self.truncated,
            "lines_in_window": self.lines_in_window,
            "errors": self.errors,
            "responses": self.responses,
            "responses_5xx": self.responses_5xx,
            "untimestamped_in_window": self.untimestamped_in_window,
        }


def read_tail(path: Path, limit: int | None = None) -> tuple[str, int, bool]:
    """(text of the last `limit` bytes starting at a line boundary, bytes read, truncated)."""
    limit = limit or MAX_TAIL_BYTES
    size = path.stat().st_size
    with path.open("rb") as f:
        if size > limit:
            f.seek(size - limit)
            data = f.read(limit)
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else b""
            truncated = True
        else:
            data = f.read()
            truncated = False
    return data.decode("utf-8", errors="replace"), len(data), truncated


def scan_file(path: Path, since: datetime, now: datetime, redactor: Redactor) -> FileScan:
    text, bytes_read, truncated = read_tail(path)
    scan = FileScan(str(path), bytes_read=bytes_read, truncated=truncated)
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    mtime_in_window = modified >= since
    entry_in_window: bool | None = None  # None until the first timestamped line
    entry_is_error = False
    for line in text.splitlines():
        if not line.strip():
            continue
        ts, is_error, status = parse_entry(line, now)
        if ts is not None:
            entry_in_window = since <= ts <= now + _FUTURE_SLACK
            entry_is_error = is_error
            counted = is_error
            in_window = entry_in_window
        elif entry_in_window is None:  # before any timestamp: the file's mtime decides
            in_window = mtime_in_window
            counted = is_error
            if in_window:
                scan.untimestamped_in_window += 1
        else:  # continues the entry above
            in_window = entry_in_window
            counted = is_error and not entry_is_error
            entry_is_error = entry_is_error or is_error
        if not in_window:
            continue
        scan.lines_in_window += 1
        if status is not None:
            scan.responses += 1
            scan.responses_5xx += status >= 500
        if counted:
            scan.errors += 1
            if len(scan.samples) < MAX_SAMPLES:
                sample = redactor.text(line.strip())
                if len(sample) > SAMPLE_CHARS:
                    sample = sample[: SAMPLE_CHARS - 1] + "…"
                scan.samples.append(sample)
    return scan


def log_paths(spec: str) -> tuple[list[Path], list[str]]:
    """(existing files, patterns that matched nothing) for a comma-separated list."""
    found: list[Path] = []
    missing: list[str] = []
    for item in (p.strip() for p in spec.split(",")):
        if not item:
            continue
        expanded = os.path.expanduser(item)
        matches = sorted(glob.glob(expanded)) if glob.has_magic(expanded) else [expanded]
        files = [Path(m) for m in matches if Path(m).is_file()]
        if files:
            found.extend(files)
        else:
            missing.append(item)
    return found, missing


def _int_setting(ctx: CheckContext, name: str, default: int | None) -> int | None:
    value = ctx.setting(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise LogSettingsError(f"{name} must be a whole number") from None
    if number < 0:
        raise LogSettingsError(f"{name} must not be negative")
    return number


def _percent_setting(ctx: CheckContext, name: str, default: float) -> float:
    value = ctx.setting(name)
    if value is None:
        return default
    try:
        number = float(value.removesuffix("%"))
    except ValueError:
        raise LogSettingsError(f"{name} must be a percentage, e.g. 1 or 0.5") from None
    if not 0 <= number <= 100:
        raise LogSettingsError(f"{name} must be between 0 and 100")
    return number


def run(ctx: CheckContext) -> Result:
    spec = ctx.setting("PREFLIGHT_LOG_FILES")
    if not spec:
        return skipped("PREFLIGHT_LOG_FILES")
    try:
        window = _int_setting(ctx, "PREFLIGHT_LOG_WINDOW_MINUTES", DEFAULT_WINDOW_MINUTES) or 1
        max_errors = _int_setting(ctx, "PREFLIGHT_LOG_MAX_ERRORS", None)
        max_5xx = _percent_setting(ctx, "PREFLIGHT_LOG_MAX_5XX_PERCENT", DEFAULT_MAX_5XX_PERCENT)
    except LogSettingsError as exc:
        return Result(Status.ERROR, f"log check misconfigured: {exc}", remediation=str(exc) + ".")
    files, missing = log_paths(spec)
    if missing:
        return Result(
            Status.ERROR,
            f"log file{'s' if len(missing) > 1 else ''} not found: {', '.join(missing)}",
            {"missing": missing, "found": [str(f) for f in files]},
            "Fix PREFLIGHT_LOG_FILES (comma-separated paths or globs, e.g. "
            "tpe-backend/logs/combined.log) or make the logs readable where the bot runs.",
        )
    now = datetime.now(UTC)
    since = now - timedelta(minutes=window)
    redactor = Redactor.from_env(ctx.env)
    scans: list[FileScan] = []
    for path in files:
        try:
            scans.append(scan_file(path, since, now, redactor))
        except OSError as exc:
            return Result(
                Status.ERROR,
                f"cannot read log file {path}: {exc.strerror}",
                {"file": str(path)},
                "Give the bot read access to the log files.",
            )
    errors = sum(s.errors for s in scans)
    lines = sum(s.lines_in_window for s in scans)
    responses = sum(s.responses for s in scans)
    responses_5xx = sum(s.responses_5xx for s in scans)
    rate_5xx = 100.0 * responses_5xx / responses if responses else 0.0
    samples = [f"{Path(s.path).name}: {line}" for s in scans for line in s.samples][:MAX_SAMPLES]
    evidence = {
        "window_minutes": window,
        "max_errors": max_errors,
        "max_5xx_percent": max_5xx,
        "errors": errors,
        "lines_in_window": lines,
        "responses": responses,
        "responses_5xx": responses_5xx,
        "rate_5xx_percent": round(rate_5xx, 3),
        "files": [s.evidence() for s in scans],
        "samples": samples,
    }
    names = ", ".join(Path(s.path).name for s in scans)
    where = f"in the last {window} minutes of {names}"
    if lines == 0:
        return Result(
            Status.UNKNOWN,
            f"no log lines in the last {window} minutes in {names}",
            evidence,
            "Check that the application is running and writing to these files (the checklist: "
            "`tail -f tpe-backend/logs/combined.log`).",
        )
    read = f"{lines} line{'s' if lines != 1 else ''} read"
    if responses:
        read += f", {responses} HTTP response{'s' if responses != 1 else ''}"
    if errors == 0:
        return Result(Status.PASS, f"no errors {where} ({read})", evidence, observations=lines)
    problems: list[str] = []
    fail = False
    if responses_5xx:
        over = rate_5xx > max_5xx
        fail = fail or over
        problems.append(
            f"{responses_5xx} of {responses} HTTP responses were 5xx ({round(rate_5xx, 2):g}%"
            + (f", above {max_5xx:g}%)" if over else f", within {max_5xx:g}%)")
        )
    over_errors = max_errors is not None and errors > max_errors
    if errors > responses_5xx or not responses_5xx or over_errors:
        problems.append(
            f"{errors} error line{'s' if errors != 1 else ''}"
            + (f", above the limit of {max_errors}" if over_errors else "")
        )
    fail = fail or over_errors
    return Result(
        Status.FAIL if fail else Status.WARN,
        "; ".join(problems) + f" {where} ({read})",
        evidence,
        "Investigate the errors (samples in the evidence; the checklist: `grep -i error "
        "tpe-backend/logs/combined.log`) and fix or explain them before deploying.",
        observations=lines,
    )


CHECK = Check(
    id="log_errors",
    title="No recent errors in the application logs",
    section="Monitoring & Logging",
    run=run,
    settings=(
        "PREFLIGHT_LOG_FILES",
        "PREFLIGHT_LOG_WINDOW_MINUTES",
        "PREFLIGHT_LOG_MAX_ERRORS",
        "PREFLIGHT_LOG_MAX_5XX_PERCENT",
    ),
    severity="medium",
    blocking=False,
    timeout_s=20.0,
    max_age_s=900,
    description=("The application logs show no recent errors and a normal rate of HTTP 5xx"),
    criteria=(
        "Reads at most the last 8 MB of each of `PREFLIGHT_LOG_FILES` (comma-separated paths "
        "or globs) for the last `PREFLIGHT_LOG_WINDOW_MINUTES` (default 60). Error lines: "
        "error/fatal/critical levels in text, JSON and logfmt, pino/bunyan levels >= 50, and "
        "HTTP 5xx responses, recognised in Apache/nginx combined, morgan "
        "combined/common/dev/tiny/short, pino-http/bunyan JSON (`res.statusCode`, "
        "`statusCode`), ECS and logfmt (`status=500`). FAIL: 5xx above "
        "`PREFLIGHT_LOG_MAX_5XX_PERCENT` of the HTTP responses (default 1), or more error "
        "lines than `PREFLIGHT_LOG_MAX_ERRORS` (when set). WARN: other error lines or 5xx. "
        "PASS: none, naming the lines read and HTTP responses seen (observations: lines in "
        "the window). UNKNOWN: no line in the window. Lines without a timestamp continue the "
        "entry above; files without timestamps count when modified within the window. Up to 5 "
        "redacted samples in evidence"
    ),
)
