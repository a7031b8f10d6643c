"""Preflight at checklist scale (issue 11): 200, 2,000 and 20,000 items (9, 99, 999 sections).

For each size: readiness computed in process (no I/O), `preflight import FILE`,
`preflight status --cached --json` end to end (a new process each time: the first one after
the import, and later ones), each beside the 200-item run; and `preflight --help` beside a bare
`python -c pass`. Wall times are medians; peak RSS is the process's own.

    .venv/bin/python -m tests.perf.bench_big_checklist
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.perf.big_checklist import SIZES, big_checklist_text

ROOT = Path(__file__).resolve().parents[2]
REPEAT = 5
# Targets of issue 11.
TARGET_READINESS_MS = 50  # 20,000 items, in process
TARGET_STATUS_S = 1.5  # 20,000 items, `status --cached --json` end to end
TARGET_HELP_S = 0.3


def _median_ms(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _run(args: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # 1: the gate is blocked, as expected
        assert proc.stderr is not None
        raise RuntimeError(f"{args} exited {proc.returncode}: {proc.stderr.read()!r}")
    return wall, usage.ru_maxrss / 1024


def _preflight(*args: str) -> list[str]:
    return [sys.executable, "-c", "from bot.cli import main; main()", *args]


def readiness_ms(items: int, sections: int) -> tuple[float, float]:
    """Median and first (cold) in-process readiness of a fresh checklist of this size."""
    from bot.checklist import parse_checklist
    from bot.readiness import compute
    from checks import registry

    checklist = parse_checklist(big_checklist_text(items, sections))
    meta = registry.all_checks()
    started = time.perf_counter()
    compute(checklist, {}, {}, {}, meta=meta)
    cold = (time.perf_counter() - started) * 1000
    return _median_ms(lambda: compute(checklist, {}, {}, {}, meta=meta), 9), cold


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {"sizes": {}}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "PREFLIGHT_CHECKLIST", "PREFLIGHT_BINDINGS"):
        env.pop(key, None)
    figures["python_s"] = statistics.median(
        _run([sys.executable, "-c", "pass"], env)[0] for _ in range(REPEAT)
    )
    helps = [_run(_preflight("--help"), env) for _ in range(REPEAT)]
    figures["help_s"] = statistics.median(h[0] for h in helps)
    with tempfile.TemporaryDirectory() as tmp:
        for items, sections in SIZES:
            doc = Path(tmp) / f"checklist-{items}.md"
            doc.write_text(big_checklist_text(items, sections), "utf-8")
            db = Path(tmp) / f"store-{items}.db"
            run_env = {**env, "PREFLIGHT_DB": str(db)}
            f: dict[str, float] = {}
            f["readiness_ms"], f["readiness_cold_ms"] = readiness_ms(items, sections)
            f["import_s"], f["import_rss_mb"] = _run(
                _preflight("import", str(doc), "--as", "bench"), run_env
            )
            f["status_first_s"], _ = _run(_preflight("status", "--cached", "--json"), run_env)
            runs = [_run(_preflight("status", "--cached", "--json"), run_env) for _ in range(3)]
            f["status_s"] = statistics.median(r[0] for r in runs)
            f["status_rss_mb"] = max(r[1] for r in runs)
            figures["sizes"][items] = f
    return figures


def report(figures: dict[str, Any]) -> str:
    sizes = figures["sizes"]
    base = sizes[SIZES[0][0]]
    lines = [
        "checklists of 200 / 2,000 / 20,000 items (9 / 99 / 999 sections); ratios are to the "
        "200-item run",
        "",
        "| Items | readiness in process ms (cold) | × 200 | import s | × 200 "
        "| status --cached --json s (first after import) | × 200 | status peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for items, _ in SIZES:
        f = sizes[items]
        lines.append(
            f"| {items:,} | {f['readiness_ms']:.1f} ({f['readiness_cold_ms']:.1f}) "
            f"| {f['readiness_ms'] / base['readiness_ms']:.0f} "
            f"| {f['import_s']:.2f} | {f['import_s'] / base['import_s']:.1f} "
            f"| {f['status_s']:.2f} ({f['status_first_s']:.2f}) "
            f"| {f['status_s'] / base['status_s']:.1f} | {f['status_rss_mb']:.0f} |"
        )
    big = sizes[SIZES[-1][0]]
    lines += [
        "",
        f"`preflight --help`: {figures['help_s']:.2f} s; bare `python -c pass`: "
        f"{figures['python_s']:.2f} s ({figures['help_s'] / figures['python_s']:.1f}×)",
        "targets (issue 11): readiness of 20,000 items < 50 ms: "
        + ("met" if big["readiness_ms"] < TARGET_READINESS_MS else "MISSED")
        + "; status --cached --json < 1.5 s: "
        + ("met" if big["status_s"] < TARGET_STATUS_S else "MISSED")
        + "; --help < 0.3 s: "
        + ("met" if figures["help_s"] < TARGET_HELP_S else "MISSED"),
    ]
    return "\n".join(lines)


def test_bench_big_checklist() -> None:
    print("\n" + report(run()))


if __name__ == "__main__":
    print(report(run()))
