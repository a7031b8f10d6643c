"""Import time of the bundled checklist, and `status` computed over a long history.

    .venv/bin/python -m tests.perf.bench_status

History: 10,000 sign-off events (12 people changing their minds over the 223 items) and
100,000 check results (about 3,700 runs of every check). Target: status under 50 ms. The
baselines in the same run are the two store reads status needs, so a slow machine shows up
in all figures alike.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.checklist import load_bundled, parse_checklist
from bot.services import Services
from bot.settings import Settings
from checks import registry
from checks.base import Result, Status

SIGNOFFS = 10_000
RESULTS = 100_000
PEOPLE = [f"U{n:03d}" for n in range(12)]


def _median_ms(fn: Callable[[], Any], repeat: int = 21) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(folder: Path) -> dict[str, float]:
    text = (Path(__file__).resolve().parents[2] / "bot/content/checklist.md").read_text()
    figures = {"import_ms": _median_ms(lambda: parse_checklist(text))}

    services = Services.from_settings(Settings(preflight_db=str(folder / "bench.db")), env={})
    store = services.store
    rng = random.Random(7)
    items = [i.id for i in load_bundled().items]
    started = time.perf_counter()
    for n in range(SIGNOFFS):
        item, user = rng.choice(items), rng.choice(PEOPLE)
        if n % 5 == 4:
            store.remove_signoff(item, user)
        else:
            store.add_signoff(item, user, note="bench")
    figures["write_signoffs_s"] = time.perf_counter() - started

    check_ids = list(registry.all_checks())
    base = datetime.now(UTC) - timedelta(days=30)
    started = time.perf_counter()
    batch: list[Result] = []
    for n in range(RESULTS):
        at = base + timedelta(seconds=n * 20)
        batch.append(
            Result(
                rng.choice(list(Status)),
                "bench result",
                {"n": n},
                check_id=check_ids[n % len(check_ids)],
                started_at=at,
                observed_at=at,
                duration_ms=5,
            )
        )
        if len(batch) == len(check_ids):
            store.save_results(batch)
            batch = []
    store.save_results(batch)
    figures["write_results_s"] = time.perf_counter() - started

    figures["signoffs_read_ms"] = _median_ms(store.signoffs)
    figures["latest_results_ms"] = _median_ms(store.latest_results)
    figures["status_ms"] = _median_ms(services.readiness)

    def cold() -> None:
        store.add_signoff(items[0], "UCOLD")  # a sign-off: readiness is computed afresh
        services.readiness()

    figures["status_after_write_ms"] = _median_ms(cold)
    readiness = services.readiness()
    figures["done_items"] = readiness.done
    store.close()
    return figures


def report(f: dict[str, float]) -> str:
    return "\n".join(
        [
            f"import of the bundled checklist (parse, 223 items): {f['import_ms']:.1f} ms (median)",
            f"history written: {SIGNOFFS:,} sign-off events in {f['write_signoffs_s']:.1f} s, "
            f"{RESULTS:,} check results in {f['write_results_s']:.1f} s",
            f"baseline reads: signoffs() {f['signoffs_read_ms']:.2f} ms, "
            f"latest_results() {f['latest_results_ms']:.2f} ms",
            f"status (readiness of 223 items): {f['status_ms']:.1f} ms warm, "
            f"{f['status_after_write_ms']:.1f} ms right after a write (target < 50 ms); "
            f"{f['done_items']:.0f} items done",
        ]
    )


def test_bench_status(tmp_path: Path) -> None:
    print("\n" + report(run(tmp_path)))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(report(run(Path(tmp))))
