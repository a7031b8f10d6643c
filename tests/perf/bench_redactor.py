"""Redactor throughput on 1 MiB of adversarial input per pattern, beside a baseline measured
in the same process on the same input: one `str.replace` of the canary (the cheapest possible
pass over the text). Prints MB/s for both and the ratio; the security suite asserts only that
the output is right (tests/security/test_redactor.py).

    .venv/bin/python -m tests.perf.bench_redactor
    .venv/bin/pytest tests/perf/bench_redactor.py -s

Target: every input well under a second (the backtracking pattern this replaced took 25.7 s
for 40 KB of one of them).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from checks.redact import Redactor
from tests.security.adversarial import CANARY, CANARY_ENV, inputs

REPEAT = 3
TARGET_S = 1.0


def _best_of(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench() -> dict[str, dict[str, float]]:
    redactor = Redactor.from_env(CANARY_ENV)
    figures: dict[str, dict[str, float]] = {}
    print(f"{'input (1 MiB)':44} {'redactor':>10} {'baseline':>10} {'ratio':>7} {'time':>9}")
    for name, text in inputs().items():
        mb = len(text.encode("utf-8", "surrogatepass")) / 1e6
        ours = _best_of(lambda text=text: redactor.text(text))
        base = _best_of(lambda text=text: text.replace(CANARY, "[REDACTED]"))
        figures[name] = {"redactor_mb_s": mb / ours, "baseline_mb_s": mb / base, "seconds": ours}
        flag = "" if ours < TARGET_S else "  OVER TARGET"
        print(
            f"{name:44} {mb / ours:7.1f} MB/s {mb / base:7.0f} MB/s "
            f"{base / ours:7.3f} {ours * 1000:6.0f} ms{flag}"
        )
    slowest = max(figures, key=lambda n: figures[n]["seconds"])
    print(
        f"slowest: {slowest} at {figures[slowest]['redactor_mb_s']:.1f} MB/s; median "
        f"{statistics.median(f['redactor_mb_s'] for f in figures.values()):.1f} MB/s"
    )
    return figures


def test_bench_redactor() -> None:
    bench()


if __name__ == "__main__":
    bench()
