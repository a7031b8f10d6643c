"""npm_audit on saved reports (npm 6 and 7+, npm's error output) and, for the directory
mode, a fake `npm` on PATH that prints a fixture: no test talks to the npm registry."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from checks import npm_audit
from checks.base import CheckContext, Status
from checks.runner import run_one

FIXTURES = Path(__file__).parent / "fixtures" / "part2" / "npm"


def reports(*names: str) -> CheckContext:
    paths = ",".join(str(FIXTURES / n) for n in names)
    return CheckContext(env={"PREFLIGHT_NPM_AUDIT_REPORT": paths}, timeout_s=10)


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`npm` first on PATH: prints ./audit.out of the directory it runs in, exits with
    ./exit_code (1 when absent, as npm does when it finds something), and logs its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(
        "#!/bin/sh\n"
        'echo "$@" > "$PWD/argv"\n'
        'if [ -f "$PWD/sleep" ]; then exec sleep "$(cat "$PWD/sleep")"; fi\n'
        'cat "$PWD/audit.out"\n'
        'exit "$(cat "$PWD/exit_code" 2>/dev/null || echo 1)"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def project(tmp_path: Path, name: str, fixture: str, exit_code: int | None = None) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(FIXTURES / fixture, directory / "audit.out")
    if exit_code is not None:
        (directory / "exit_code").write_text(str(exit_code))
    return directory


def test_skipped_without_settings() -> None:
    result = run_one(npm_audit.CHECK, CheckContext(env={}))
    assert result.status is Status.SKIPPED
    assert "PREFLIGHT_NPM_DIRS" in result.summary


@pytest.mark.parametrize(
    ("fixture", "status", "totals"),
    [
        ("npm7_clean.json", Status.PASS, {"high": 0, "critical": 0, "moderate": 0}),
        ("npm7_low.json", Status.PASS, {"low": 1, "info": 1}),
        ("npm7_moderate.json", Status.WARN, {"moderate": 1, "low": 2}),
        ("npm7_high.json", Status.FAIL, {"high": 1, "moderate": 1}),
        ("npm6_critical.json", Status.FAIL, {"critical": 1, "low": 1}),
    ],
)
def test_saved_reports(fixture: str, status: Status, totals: dict[str, int]) -> None:
    result = run_one(npm_audit.CHECK, reports(fixture))
    assert result.status is status, result.summary
    for severity, count in totals.items():
        assert result.evidence["totals"][severity] == count
    if status is Status.PASS:
        assert result.observations == 1  # one report read


def test_packages_named_worst_first() -> None:
    result = run_one(npm_audit.CHECK, reports("npm7_high.json"))
    [proj] = result.evidence["projects"]
    assert proj["format"] == "npm7"
    assert proj["packages"] == ["jsonwebtoken (high)", "semver (moderate)"]
    assert proj["dependencies"] == 212
    assert "1 high, 1 moderate" in result.summary
    assert "jsonwebtoken" in result.remediation


def test_npm6_format() -> None:
    result = run_one(npm_audit.CHECK, reports("npm6_critical.json"))
    [proj] = result.evidence["projects"]
    assert proj["format"] == "npm6"
    assert proj["packages"][0] == "minimist (critical)"


@pytest.mark.parametrize(
    ("fixture", "phrase"),
    [
        ("npm_error_enolock.json", "ENOLOCK"),
        ("npm_error_network.json", "EAI_AGAIN"),
        ("npm6_error_noaudit.json", "ENOAUDIT"),
        ("npm_endpoint_error.json", "audit endpoint returned an error"),
        ("npm_not_json.txt", "no JSON report"),
    ],
)
def test_npm_failures_are_errors(fixture: str, phrase: str) -> None:
    result = run_one(npm_audit.CHECK, reports(fixture))
    assert result.status is Status.ERROR
    assert phrase in result.summary
    assert "package-lock.json" in result.remediation


def test_missing_report_file_is_error(tmp_path: Path) -> None:
    ctx = CheckContext(env={"PREFLIGHT_NPM_AUDIT_REPORT": str(tmp_path / "none.json")})
    assert run_one(npm_audit.CHECK, ctx).status is Status.ERROR


def test_error_in_one_source_does_not_hide_a_finding() -> None:
    result = run_one(npm_audit.CHECK, reports("npm7_high.json", "npm_error_enolock.json"))
    assert result.status is Status.FAIL
    assert len(result.evidence["errors"]) == 1
    assert "could not run" in result.summary


def test_directories_audited_with_npm(fake_npm: Path, tmp_path: Path) -> None:
    backend = project(tmp_path, "tpe-backend", "npm7_moderate.json")
    frontend = project(tmp_path, "tpe-front-end", "npm7_clean.json", exit_code=0)
    ctx = CheckContext(env={"PREFLIGHT_NPM_DIRS": f"{backend}, {frontend}"}, timeout_s=20)
    result = run_one(npm_audit.CHECK, ctx)
    assert result.status is Status.WARN, result.summary
    assert (backend / "argv").read_text().split() == ["audit", "--json"]
    assert [p["source"] for p in result.evidence["projects"]] == [str(backend), str(frontend)]
    assert "tpe-backend, tpe-front-end" in result.summary


def test_directory_with_npm_error_output_is_error(fake_npm: Path, tmp_path: Path) -> None:
    backend = project(tmp_path, "tpe-backend", "npm_error_enolock.json")
    result = run_one(npm_audit.CHECK, CheckContext(env={"PREFLIGHT_NPM_DIRS": str(backend)}))
    assert result.status is Status.ERROR
    assert "ENOLOCK" in result.summary


def test_hanging_npm_is_stopped_at_the_deadline(fake_npm: Path, tmp_path: Path) -> None:
    backend = project(tmp_path, "tpe-backend", "npm7_clean.json")
    (backend / "sleep").write_text("60")
    ctx = CheckContext(env={"PREFLIGHT_NPM_DIRS": str(backend)}, timeout_s=2.5)
    result = run_one(npm_audit.CHECK, ctx)
    assert result.status is Status.ERROR
    assert "did not finish" in result.summary  # our bound, not the runner's deadline


def test_npm_missing_is_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    ctx = CheckContext(env={"PREFLIGHT_NPM_DIRS": str(tmp_path)})
    result = run_one(npm_audit.CHECK, ctx)
    assert result.status is Status.ERROR
    assert "npm is not installed" in result.summary
