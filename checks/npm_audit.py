"""`npm audit` shows no high or critical vulnerability in the projects.

Two sources, either or both: PREFLIGHT_NPM_DIRS (comma-separated project directories, each
audited with `npm audit --json`) and PREFLIGHT_NPM_AUDIT_REPORT (comma-separated saved
`npm audit --json` outputs, e.g. from CI). Reads npm 7+ reports (`auditReportVersion` 2,
`vulnerabilities` by package) and npm 6 reports (`advisories`); both carry the counts in
`metadata.vulnerabilities`.

A report npm could not produce (no lockfile, no network, audit endpoint down: the JSON holds
an `error` object, or the output is not JSON at all) is an ERROR: the audit did not happen,
so it can neither pass nor fail. Note that npm exits 1 when it finds vulnerabilities, so
the exit code alone says nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.base import Check, CheckContext, Result, Status, skipped, worst
from checks.redact import Redactor

SEVERITIES = ("critical", "high", "moderate", "low", "info")
MAX_PACKAGES_SHOWN = 10


class AuditUnavailable(Exception):
    """npm did not produce an audit report."""


@dataclass
class Audit:
    """One project's audit."""

    source: str
    counts: dict[str, int] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)  # "name (severity)", worst first
    report_format: str = ""
    dependencies: int | None = None

    @property
    def status(self) -> Status:
        if self.counts.get("critical") or self.counts.get("high"):
            return Status.FAIL
        if self.counts.get("moderate"):
            return Status.WARN
        return Status.PASS


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def parse_report(text: str, source: str) -> Audit:
    """An Audit from `npm audit --json` output; AuditUnavailable when npm reported failure."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        # npm may print warnings before the JSON document
        start = text.find("{")
        try:
            doc = json.loads(text[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            doc = None
    if not isinstance(doc, dict):
        first = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
        raise AuditUnavailable(f"npm printed no JSON report ({first[:200]})")
    error = doc.get("error")
    if isinstance(error, dict | str):
        code = error.get("code", "") if isinstance(error, dict) else ""
        summary = error.get("summary", "") if isinstance(error, dict) else error
        raise AuditUnavailable(f"npm audit failed: {code} {summary}".strip())
    counts_doc = (doc.get("metadata") or {}).get("vulnerabilities")
    if not isinstance(counts_doc, dict):
        message = doc.get("message") or "no metadata.vulnerabilities"
        raise AuditUnavailable(f"not an npm audit report: {str(message)[:200]}")
    counts = {s: int(counts_doc.get(s) or 0) for s in SEVERITIES}
    audit = Audit(source=source, counts=counts)
    found: list[tuple[str, str]] = []
    if isinstance(doc.get("vulnerabilities"), dict):
        audit.report_format = "npm7"
        for name, vuln in doc["vulnerabilities"].items():
            found.append((str(vuln.get("name") or name), str(vuln.get("severity", ""))))
        deps = (doc.get("metadata") or {}).get("dependencies")
        audit.dependencies = deps.get("total") if isinstance(deps, dict) else deps
    elif isinstance(doc.get("advisories"), dict):
        audit.report_format = "npm6"
        for advisory in doc["advisories"].values():
            found.append((str(advisory.get("module_name", "?")), str(advisory.get("severity", ""))))
        audit.dependencies = (doc.get("metadata") or {}).get("totalDependencies")
    found = sorted(set(found), key=lambda p: (_rank(p[1]), p[0]))
    audit.packages = [f"{name} ({severity})" for name, severity in found][:MAX_PACKAGES_SHOWN]
    return audit


def _run_bounded(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
    """Run argv in its own process group, killing the whole group at the timeout."""
    env = {**os.environ, "npm_config_fund": "false", "npm_config_update_notifier": "false"}
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err


def audit_directory(npm: str, directory: Path, timeout: float) -> Audit:
    if not directory.is_dir():
        raise AuditUnavailable(f"{directory} is not a directory")
    try:
        code, out, err = _run_bounded([npm, "audit", "--json"], directory, timeout)
    except subprocess.TimeoutExpired:
        raise AuditUnavailable(f"npm audit did not finish within {timeout:.0f} s") from None
    if not out.strip():
        raise AuditUnavailable(f"npm audit exited {code} without a report ({err.strip()[:200]})")
    return parse_report(out, str(directory))


def audit_file(path: Path) -> Audit:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError as exc:
        raise AuditUnavailable(f"cannot read {path}: {exc.strerror}") from None
    return parse_report(text, str(path))


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def run(ctx: CheckContext) -> Result:
    dirs = _split(ctx.setting("PREFLIGHT_NPM_DIRS"))
    reports = _split(ctx.setting("PREFLIGHT_NPM_AUDIT_REPORT"))
    if not dirs and not reports:
        return skipped("PREFLIGHT_NPM_DIRS", "PREFLIGHT_NPM_AUDIT_REPORT")
    redactor = Redactor.from_env(ctx.env)
    deadline = time.monotonic() + max(ctx.timeout_s - 1.0, 1.0)
    audits: list[Audit] = []
    failures: list[dict[str, str]] = []
    npm = ctx.setting("PREFLIGHT_NPM_BIN") or shutil.which("npm")
    for report in reports:
        try:
            audits.append(audit_file(Path(report).expanduser()))
        except AuditUnavailable as exc:
            failures.append({"source": report, "error": redactor.text(str(exc))})
    for directory in dirs:
        if npm is None:
            failures.append({"source": directory, "error": "npm is not installed"})
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            failures.append({"source": directory, "error": "no time left to audit it"})
            continue
        try:
            audits.append(audit_directory(npm, Path(directory).expanduser(), remaining))
        except AuditUnavailable as exc:
            failures.append({"source": directory, "error": redactor.text(str(exc))})

    totals = {s: sum(a.counts.get(s, 0) for a in audits) for s in SEVERITIES}
    evidence: dict[str, Any] = {
        "totals": totals,
        "projects": [
            {
                "source": a.source,
                "status": a.status.value,
                "counts": a.counts,
                "packages": a.packages,
                "format": a.report_format,
                "dependencies": a.dependencies,
            }
            for a in audits
        ],
        "errors": failures,
    }
    statuses = [a.status for a in audits] + [Status.ERROR] * len(failures)
    status = worst(statuses)
    counted = ", ".join(f"{totals[s]} {s}" for s in SEVERITIES if totals[s]) or "no vulnerabilities"
    names = ", ".join(Path(a.source).name or a.source for a in audits)
    parts = []
    if audits:
        parts.append(f"npm audit of {names}: {counted}")
    if failures:
        parts.append(
            f"npm audit could not run for {', '.join(f['source'] for f in failures)}: "
            f"{failures[0]['error']}"
        )
    summary = "; ".join(parts)
    if status is Status.FAIL:
        worst_packages = [
            p for a in audits for p in a.packages if "(critical)" in p or "(high)" in p
        ]
        return Result(
            status,
            summary,
            evidence,
            "Upgrade the affected packages (`npm audit fix`, or a major upgrade for "
            f"{', '.join(worst_packages[:5]) or 'the listed packages'}), commit the lockfile, "
            "and re-run.",
        )
    if status is Status.ERROR:
        return Result(
            status,
            summary,
            evidence,
            "Make npm audit work where the check runs: a package-lock.json in each directory "
            "(npm i --package-lock-only), and access to the npm registry's audit endpoint; or "
            "save `npm audit --json` from CI and point PREFLIGHT_NPM_AUDIT_REPORT at it.",
        )
    if status is Status.WARN:
        return Result(
            status,
            summary,
            evidence,
            "Plan upgrades for the moderate findings (`npm audit fix`); the checklist wants none.",
        )
    dependencies = sum(a.dependencies for a in audits if isinstance(a.dependencies, int))
    if dependencies:
        summary += f" ({dependencies} dependencies)"
    return Result(status, summary, evidence, observations=len(audits))


CHECK = Check(
    id="npm_audit",
    title="npm audit: no high or critical vulnerabilities",
    section="Security Requirements",
    run=run,
    settings=("PREFLIGHT_NPM_DIRS", "PREFLIGHT_NPM_AUDIT_REPORT", "PREFLIGHT_NPM_BIN"),
    severity="high",
    blocking=True,
    timeout_s=120.0,
    max_age_s=24 * 3600,
    description=("`npm audit` finds no high or critical vulnerability"),
    criteria=(
        "`npm audit --json` in each of `PREFLIGHT_NPM_DIRS` (with `PREFLIGHT_NPM_BIN`, "
        "default `npm` on PATH), or saved reports in `PREFLIGHT_NPM_AUDIT_REPORT` "
        "(comma-separated; npm 6 and 7+ formats). FAIL: high or critical; WARN: moderate; "
        "PASS: low/info only, with counts and the projects audited (observations: "
        "projects/reports). ERROR when npm could not audit (an `error` object: no lockfile, "
        "no network, endpoint down; or output that is not JSON)"
    ),
    anchor="npm audit --audit-level=high",
)
