"""Store at size: write 10,000 sign-off events and 100,000 check results, then time the reads
the readiness report makes. Prints figures; target: each read under 50 ms.

    .venv/bin/python -m tests.perf.bench_store [FOLDER]
    .venv/bin/pytest tests/perf/bench_store.py -s

Sign-off history is a team's: 12 people over 200 items signing, withdrawing and signing again,
so 10,000 events leave a couple of thousand standing. The worst case, every event a separate
person's standing sign-off, is timed too.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from checks.base import Result, Status
from store import Store
from tests.support.store_helpers import checklist, item

ITEMS = 200
PEOPLE = 12
SIGNOFF_EVENTS = 10_000
CHECKS = 50
RESULTS = 100_000
READ_TARGET_MS = 50.0


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _read_ms(store: Store, fn: Callable[[], Any], repeat: int = 21) -> dict[str, float]:
    """Median and worst of `repeat` calls in ms: cold (just after a write, so nothing cached)
    and warm (nothing written since the previous call)."""
    cold, warm = [], []
    for n in range(repeat):
        store.claim_request(f"bench-{time.perf_counter_ns()}-{n}")
        cold.append(_timed(fn) * 1000)
        warm.append(_timed(fn) * 1000)
    return {
        "cold": statistics.median(cold),
        "cold_worst": max(cold),
        "warm": statistics.median(warm),
    }


def _team_history(store: Store) -> None:
    """SIGNOFF_EVENTS events of a team changing its mind, one transaction each."""
    rng = random.Random(7)
    standing: set[tuple[str, str]] = set()
    for n in range(SIGNOFF_EVENTS):
        key = (f"item-{rng.randrange(ITEMS)}", f"person-{rng.randrange(PEOPLE)}")
        if key in standing and rng.random() < 0.4:
            store.remove_signoff(*key, source="bench")
            standing.discard(key)
        else:
            store.add_signoff(*key, note=f"evidence {n}", source="bench")
            standing.add(key)


def _everyone_once(store: Store) -> None:
    """The worst case for reads: every event is another person's standing sign-off."""
    for n in range(SIGNOFF_EVENTS):
        store.add_signoff(f"item-{n % ITEMS}", f"user-{n // ITEMS}", source="bench")


def _write_results(store: Store) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = list(Status)
    # One save_results() per run of all checks.
    for run in range(RESULTS // CHECKS):
        at = t0 + timedelta(minutes=run)
        store.save_results(
            Result(
                statuses[(run + k) % len(statuses)],
                f"check {k} run {run}",
                evidence={"run": run, "values": list(range(5))},
                check_id=f"check_{k}",
                started_at=at,
                duration_ms=120,
                observed_at=at,
            )
            for k in range(CHECKS)
        )


def _report_read(name: str, f: dict[str, float]) -> None:
    verdict = "ok" if f["cold"] < READ_TARGET_MS else f"OVER the {READ_TARGET_MS:.0f} ms target"
    print(f"  {name}: cold median {f['cold']:.2f} ms (worst {f['cold_worst']:.2f}), "
          f"warm {f['warm']:.2f} ms  [{verdict}]")  # fmt: skip


def _new_store(path: Path) -> Store:
    store = Store.open(path)
    store.import_checklist(checklist(*(item(f"item-{n}") for n in range(ITEMS))))
    return store


def bench(folder: Path) -> dict[str, float]:
    """Run the benchmark with store files in `folder`; return the figures."""
    figures: dict[str, float] = {}
    path = folder / "bench.db"
    with _new_store(path) as store:
        figures["signoff_write_s"] = _timed(lambda: _team_history(store))
        figures["results_write_s"] = _timed(lambda: _write_results(store))

        def one_at_a_time() -> None:
            for k in range(1000):
                store.save_result(Result(Status.PASS, "one", check_id=f"check_{k % CHECKS}"))

        figures["save_result_ms"] = _timed(one_at_a_time)  # 1,000 calls: s in total = ms each
        events, results = (
            store.signoff_count(),
            store.db.execute("SELECT COUNT(*) FROM check_results").fetchone()[0],
        )
        standing = sum(len(v) for v in store.signoffs().values())
        signoffs = _read_ms(store, store.signoffs)
        latest = _read_ms(store, store.latest_results)
        history = _read_ms(store, lambda: store.result_history("check_7"))
        decisions = _read_ms(store, store.decision_states)
    size_mb = sum(p.stat().st_size for p in folder.glob("bench.db*")) / 1e6

    with _new_store(folder / "worst.db") as worst:
        _everyone_once(worst)
        worst_standing = sum(len(v) for v in worst.signoffs().values())
        worst_signoffs = _read_ms(worst, worst.signoffs)

    print(f"\nstore benchmark ({folder}, {size_mb:.1f} MB incl. WAL)")
    print(f"  rows: {events:,} sign-off events ({standing:,} standing), {results:,} check results")
    print(f"  write {SIGNOFF_EVENTS:,} sign-off events, one transaction each: "
          f"{figures['signoff_write_s']:.2f} s "
          f"({figures['signoff_write_s'] / SIGNOFF_EVENTS * 1e3:.3f} ms each)")  # fmt: skip
    print(f"  write {RESULTS:,} check results, save_results() of {CHECKS} per run: "
          f"{figures['results_write_s']:.2f} s "
          f"({figures['results_write_s'] / RESULTS * 1e6:.0f} µs per result)")  # fmt: skip
    print(f"  save_result() one at a time: {figures['save_result_ms']:.3f} ms each")
    _report_read("signoffs()", signoffs)
    _report_read("latest_results()", latest)
    _report_read("result_history(limit=20)", history)
    _report_read("decision_states()", decisions)
    _report_read(f"signoffs(), worst case: {worst_standing:,} standing", worst_signoffs)
    for name, f in (("signoffs", signoffs), ("latest_results", latest)):
        figures[f"{name}_cold_ms"], figures[f"{name}_warm_ms"] = f["cold"], f["warm"]
    figures["signoffs_worst_case_cold_ms"] = worst_signoffs["cold"]
    return figures


def test_bench_store(tmp_path: Path) -> None:
    bench(tmp_path)


def main(argv: list[str]) -> None:
    if argv:
        folder = Path(argv[0])
        folder.mkdir(parents=True, exist_ok=True)
        bench(folder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench(Path(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
