"""log_errors on log files rendered from templates with timestamps relative to now."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks import log_errors
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import result_text

TEMPLATES = Path(__file__).parent / "fixtures" / "part2" / "logs"
_TOKEN = re.compile(r"\{(iso|iso_z|clf|epoch_ms):(-?\d+)\}")


def render(template: str, tmp_path: Path) -> Path:
    """Copy a template with each {format:minutes} token replaced by now+minutes."""
    now = datetime.now(UTC)

    def stamp(match: re.Match[str]) -> str:
        when = now + timedelta(minutes=int(match.group(2)))
        kind = match.group(1)
        if kind == "iso":  # naive local time, comma before the milliseconds
            return (
                when.astimezone().strftime("%Y-%m-%d %H:%M:%S,") + f"{when.microsecond // 1000:03d}"
            )
        if kind == "iso_z":
            return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        if kind == "clf":
            return when.strftime("%d/%b/%Y:%H:%M:%S +0000")
        return str(int(when.timestamp() * 1000))

    text = _TOKEN.sub(stamp, (TEMPLATES / template).read_text())
    target = tmp_path / template.removesuffix(".tmpl")
    target.write_text(text)
    return target


def ctx(*paths: Path, **env: str) -> CheckContext:
    return CheckContext(env={"PREFLIGHT_LOG_FILES": ",".join(map(str, paths)), **env})


def test_skipped_without_files() -> None:
    result = run_one(log_errors.CHECK, CheckContext(env={}))
    assert result.status is Status.SKIPPED
    assert "PREFLIGHT_LOG_FILES" in result.summary


def test_winston_text_log(tmp_path: Path) -> None:
    log = render("combined.log.tmpl", tmp_path)
    env = {"DB_PASSWORD": "not-a-real-password-123"}
    result = run_one(log_errors.CHECK, ctx(log, **env))
    assert result.status is Status.WARN
    # the -20 min error; its stack trace and "Error:" line belong to it; -90 is outside
    assert result.evidence["errors"] == 1
    assert result.evidence["lines_in_window"] == 6
    [sample] = result.evidence["samples"]
    assert sample.startswith("combined.log: ") and "ECONNREFUSED" in sample
    assert "not-a-real-password-123" not in result_text(result)
    assert "combined.log" in result.summary


def test_json_lines_winston_and_pino(tmp_path: Path) -> None:
    log = render("app.jsonl.tmpl", tmp_path)
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.status is Status.WARN
    assert result.evidence["errors"] == 2  # "error" at -15 and pino 50 at -11
    assert result.evidence["lines_in_window"] == 5


def test_access_log_5xx(tmp_path: Path) -> None:
    log = render("access.log.tmpl", tmp_path)
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.evidence["errors"] == 1
    assert "502" in result.evidence["samples"][0]


def test_window_is_configurable(tmp_path: Path) -> None:
    log = render("combined.log.tmpl", tmp_path)
    result = run_one(log_errors.CHECK, ctx(log, PREFLIGHT_LOG_WINDOW_MINUTES="15"))
    assert result.status is Status.PASS
    assert result.evidence["window_minutes"] == 15
    wide = run_one(log_errors.CHECK, ctx(log, PREFLIGHT_LOG_WINDOW_MINUTES="120"))
    assert wide.evidence["errors"] == 2


def test_above_max_errors_fails(tmp_path: Path) -> None:
    logs = [render(t, tmp_path) for t in ("combined.log.tmpl", "app.jsonl.tmpl")]
    assert run_one(log_errors.CHECK, ctx(*logs, PREFLIGHT_LOG_MAX_ERRORS="3")).status is Status.WARN
    result = run_one(log_errors.CHECK, ctx(*logs, PREFLIGHT_LOG_MAX_ERRORS="2"))
    assert result.status is Status.FAIL
    assert result.evidence["errors"] == 3
    assert "above the limit of 2" in result.summary


def test_no_lines_in_window_is_unknown(tmp_path: Path) -> None:
    result = run_one(log_errors.CHECK, ctx(render("quiet.log.tmpl", tmp_path)))
    assert result.status is Status.UNKNOWN


def test_clean_recent_log_passes(tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    now = datetime.now(UTC)
    log.write_text(f"{now.isoformat()} INFO all good\n{now.isoformat()} DEBUG fine\n")
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.status is Status.PASS
    assert result.evidence["lines_in_window"] == 2


def test_untimestamped_file_uses_mtime(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    log.write_text("starting\nError: boom\nFATAL crash\n")
    recent = run_one(log_errors.CHECK, ctx(log))
    assert recent.evidence["errors"] == 2
    assert recent.evidence["files"][0]["untimestamped_in_window"] == 3
    old = time.time() - 3 * 3600
    os.utime(log, (old, old))
    assert run_one(log_errors.CHECK, ctx(log)).status is Status.UNKNOWN


def test_only_the_tail_of_a_huge_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_errors, "MAX_TAIL_BYTES", 4096)
    now = datetime.now(UTC).isoformat()
    log = tmp_path / "big.log"
    with log.open("w") as f:
        f.write(f"{now} ERROR early error that is not read\n")
        for i in range(2000):
            f.write(f"{now} INFO line {i}\n")
        f.write(f"{now} ERROR late error\n")
    text, read, truncated = log_errors.read_tail(log, 4096)
    assert truncated and read <= 4096
    assert text.splitlines()[0].startswith(now[:19])  # starts at a line boundary
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.evidence["errors"] == 1
    assert result.evidence["files"][0]["truncated"] is True


def test_glob_and_missing_files(tmp_path: Path) -> None:
    render("combined.log.tmpl", tmp_path)
    render("access.log.tmpl", tmp_path)
    result = run_one(log_errors.CHECK, ctx(Path(tmp_path / "*.log")))
    assert len(result.evidence["files"]) == 2
    missing = run_one(log_errors.CHECK, ctx(tmp_path / "nope.log"))
    assert missing.status is Status.ERROR
    assert "nope.log" in missing.summary


def test_bad_window_setting_is_error(tmp_path: Path) -> None:
    result = run_one(log_errors.CHECK, ctx(tmp_path, PREFLIGHT_LOG_WINDOW_MINUTES="an hour"))
    assert result.status is Status.ERROR


@pytest.mark.parametrize(
    ("line", "is_error"),
    [
        ("2025-10-25T14:03:07.123Z error: boom", True),
        ("2025-10-25 14:03:07,123 ERROR [main] boom", True),
        ("2025-10-25T14:03:07+02:00 [error] boom", True),
        ('time="2025-10-25T14:03:07Z" level=error msg="boom"', True),
        ("2025-10-25T14:03:07Z CRITICAL disk full", True),
        ("2025-10-25T14:03:07Z info: 0 errors so far", False),
        ("2025-10-25T14:03:07Z info: retrying after error: timeout", False),
        ("Oct 25 14:03:07 web1 app[123]: FATAL out of memory", True),
        ('{"severity":"ERROR","time":"2025-10-25T14:03:07Z"}', True),
        ('{"level":40,"time":1761400987000}', False),
    ],
)
def test_error_lines(line: str, is_error: bool) -> None:
    ts, error = log_errors.parse_line(line, datetime.now(UTC))
    assert ts is not None
    assert error is is_error


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2025-10-25T14:03:07.5Z x", datetime(2025, 10, 25, 14, 3, 7, 500000, tzinfo=UTC)),
        ("2025-10-25T16:03:07+02:00 x", datetime(2025, 10, 25, 14, 3, 7, tzinfo=UTC)),
        (
            '1.2.3.4 - - [25/Oct/2025:09:03:07 -0500] "GET / HTTP/1.1" 200 1',
            datetime(2025, 10, 25, 14, 3, 7, tzinfo=UTC),
        ),
        ('{"time": 1761400987}', datetime.fromtimestamp(1761400987, UTC)),
        ('{"ts": 1761400987000}', datetime.fromtimestamp(1761400987, UTC)),
    ],
)
def test_timestamps(line: str, expected: datetime) -> None:
    ts, _ = log_errors.parse_line(line, datetime.now(UTC))
    assert ts == expected


# --- HTTP 5xx in every access-log format a Node backend writes (issue 10) -----------------


def _clf(minutes: int = -1) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _epoch_ms(minutes: int = -1) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=minutes)).timestamp() * 1000)


def _iso(minutes: int = -1) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


# One line per format with the given status; every one is a sample the check must read.
FORMATS = {
    "nginx_combined": lambda s: (
        f'10.0.0.1 - - [{_clf()}] "GET /api/leads HTTP/1.1" {s} 12 "-" "Mozilla/5.0"'
    ),
    "morgan_combined": lambda s: (
        f'::ffff:127.0.0.1 - - [{_clf()}] "GET /api/leads HTTP/1.1" {s} 12 '
        '"https://tpx.power100.io/" "Mozilla/5.0"'
    ),
    "morgan_common": lambda s: f'::1 - - [{_clf()}] "POST /api/leads HTTP/1.1" {s} 27',
    "morgan_dev": lambda s: f"GET /api/leads {s} 12.3 ms - 12",
    "morgan_dev_colours": lambda s: (
        f"\x1b[0mGET /api/leads \x1b[31m{s}\x1b[0m 12.345 ms - 12\x1b[0m"
    ),
    "morgan_tiny": lambda s: f"GET /api/leads {s} 12 - 3.456 ms",
    "morgan_short": lambda s: f"::1 - GET /api/leads HTTP/1.1 {s} 12 - 3.456 ms",
    "pino_http": lambda s: (
        f'{{"level":30,"time":{_epoch_ms()},"pid":7,"req":{{"id":1,"method":"GET",'
        f'"url":"/api/leads"}},"res":{{"statusCode":{s}}},"responseTime":12,'
        '"msg":"request completed"}'
    ),
    "bunyan": lambda s: (
        f'{{"name":"api","hostname":"web1","pid":7,"level":30,"statusCode":{s},'
        f'"msg":"handled","time":"{_iso()}","v":0}}'
    ),
    "logfmt": lambda s: (
        f'time="{_iso()}" level=info method=GET path=/api/leads status={s} duration=12ms'
    ),
    "logfmt_heroku": lambda s: (
        f"{_iso()} heroku[router]: at=info method=GET path=/api/leads host=api.test "
        f'fwd="10.0.0.1" dyno=web.1 connect=0ms service=12ms status={s} bytes=120'
    ),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_http_status_is_read_in_every_format(fmt: str) -> None:
    now = datetime.now(UTC)
    for status in (200, 302, 404, 500, 503):
        line = FORMATS[fmt](status)
        _, is_error, seen = log_errors.parse_entry(line, now)
        assert seen == status, (fmt, line)
        assert is_error is (status >= 500), (fmt, line)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_5xx_in_any_format_fails_and_is_named(fmt: str, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [FORMATS[fmt](200) for _ in range(9)] + [FORMATS[fmt](500)]
    log.write_text("\n".join(lines) + "\n")
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.status is Status.FAIL, result.summary  # 10% is above the default 1%
    assert "1 of 10 HTTP responses were 5xx (10%, above 1%)" in result.summary
    assert result.evidence["responses"] == 10 and result.evidence["responses_5xx"] == 1
    assert result.observations == 10


def test_the_issue_s_morgan_line_is_not_a_pass(tmp_path: Path) -> None:
    log = tmp_path / "combined.log"
    log.write_text("GET /api/leads 500 12.3 ms - 12\n")
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.status is Status.FAIL
    assert "1 of 1 HTTP responses were 5xx (100%" in result.summary


def test_5xx_rate_within_the_setting_warns(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [FORMATS["morgan_dev"](200) for _ in range(199)] + [FORMATS["morgan_dev"](502)]
    log.write_text("\n".join(lines) + "\n")
    result = run_one(log_errors.CHECK, ctx(log))  # 0.5%: within the default 1%
    assert result.status is Status.WARN
    assert "1 of 200 HTTP responses were 5xx (0.5%, within 1%)" in result.summary
    strict = run_one(log_errors.CHECK, ctx(log, PREFLIGHT_LOG_MAX_5XX_PERCENT="0"))
    assert strict.status is Status.FAIL
    assert "above 0%" in strict.summary


def test_4xx_and_redirects_are_not_errors(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    statuses = (200, 201, 301, 302, 304, 401, 404, 429)
    log.write_text("\n".join(FORMATS["logfmt"](s) for s in statuses) + "\n")
    result = run_one(log_errors.CHECK, ctx(log))
    assert result.status is Status.PASS, result.summary
    assert result.summary.endswith("(8 lines read, 8 HTTP responses)")
    assert result.observations == 8


@pytest.mark.parametrize("value", ["lots", "-1", "101"])
def test_bad_5xx_setting_is_error(value: str, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("x\n")
    result = run_one(log_errors.CHECK, ctx(log, PREFLIGHT_LOG_MAX_5XX_PERCENT=value))
    assert result.status is Status.ERROR
    assert "PREFLIGHT_LOG_MAX_5XX_PERCENT" in result.summary


@pytest.mark.parametrize(
    "line",
    [
        "2025-10-25T14:03:07Z info: 500 widgets sold",
        "2025-10-25T14:03:07Z info: GET is the method, 500 is a number",
        '{"level":30,"status":"ok","count":500}',
        "2025-10-25T14:03:07Z info: retry_status=5000",
    ],
)
def test_numbers_that_are_not_statuses(line: str) -> None:
    _, is_error, status = log_errors.parse_entry(line, datetime.now(UTC))
    assert status is None and is_error is False
