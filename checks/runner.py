"""Runs checks concurrently, each under its own deadline, and never lets one break the run.

Python cannot kill a thread, so a check that ignores its timeout is abandoned (daemon thread):
the run reports it as ERROR at its deadline and moves on. Checks are expected to pass
`ctx.timeout_s` to their sockets so abandoned threads end soon after.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from checks.base import Check, CheckContext, Result, Status, utcnow
from checks.redact import Redactor

log = logging.getLogger(__name__)


class ResultSink(Protocol):
    def save_result(self, result: Result) -> None: ...


def no_pass_without_evidence(result: Result) -> Result:
    """A PASS that observed nothing (observations < 1) becomes UNKNOWN: "nothing wrong in
    nothing seen" is not evidence. The check's own summary is kept after the reason."""
    if result.status is not Status.PASS or result.observations >= 1:
        return result
    return dataclasses.replace(
        result,
        status=Status.UNKNOWN,
        summary=f"observed nothing (0 observations), so it cannot pass: {result.summary}",
        remediation=result.remediation
        or "The check reported no observation (files scanned, requests sent, records read): "
        "check its settings and target.",
    )


def _finish(
    check: Check, result: Result, started: tuple[float, datetime], redactor: Redactor
) -> Result:
    duration_ms = int((time.monotonic() - started[0]) * 1000)
    result = no_pass_without_evidence(result)
    return dataclasses.replace(
        result,
        check_id=check.id,
        summary=redactor.text(result.summary),
        evidence=redactor(result.evidence),
        remediation=redactor.text(result.remediation),
        started_at=result.started_at or started[1],
        duration_ms=duration_ms,
        observed_at=utcnow(),
        max_age_s=check.max_age_s,
    )


def _error(check: Check, summary: str, remediation: str = "") -> Result:
    return Result(Status.ERROR, summary, remediation=remediation)


def _call(check: Check, ctx: CheckContext) -> Result:
    if check.active and not ctx.allow_active:
        return Result(
            Status.SKIPPED,
            f"{check.id} sends traffic and is opt-in",
            evidence={"active": True},
            remediation="Run it explicitly with --active (CLI) or `check ID active` (Slack).",
        )
    try:
        result = check.run(ctx)
    except Exception as exc:  # a broken check is a finding about the check, not a crash
        log.warning("check %s raised %s", check.id, type(exc).__name__, exc_info=True)
        return _error(
            check,
            f"{check.id} failed to run: {type(exc).__name__}: {exc}",
            "This is a problem in the check or its target; see the bot's log.",
        )
    if not isinstance(result, Result):
        return _error(check, f"{check.id} returned {type(result).__name__}, not a Result")
    return result


def run_checks(
    selected: Iterable[Check],
    ctx: CheckContext,
    *,
    on_result: Callable[[Result], None] | None = None,
    store: ResultSink | None = None,
) -> list[Result]:
    """Run checks concurrently; results come back in the order given.

    on_result is called (in the caller's thread) as each result arrives, for live progress.
    Every string in every result has passed through the redactor; results are stored if a
    store is given.
    """
    checks_list = list(selected)
    redactor = Redactor.from_env(ctx.env)
    done: queue.Queue[tuple[int, Result]] = queue.Queue()
    deadlines: dict[int, float] = {}
    starts: dict[int, tuple[float, datetime]] = {}

    for index, check in enumerate(checks_list):
        timeout = min(check.timeout_s, ctx.timeout_s) if ctx.timeout_s else check.timeout_s
        check_ctx = dataclasses.replace(ctx, timeout_s=timeout)
        starts[index] = (time.monotonic(), utcnow())
        deadlines[index] = starts[index][0] + timeout

        def work(i: int = index, c: Check = check, cc: CheckContext = check_ctx) -> None:
            done.put((i, _call(c, cc)))

        threading.Thread(target=work, name=f"check-{check.id}", daemon=True).start()

    results: dict[int, Result] = {}
    pending = set(range(len(checks_list)))
    while pending:
        now = time.monotonic()
        expired = [i for i in pending if deadlines[i] <= now]
        for i in expired:
            check = checks_list[i]
            timeout = deadlines[i] - starts[i][0]
            late = _error(
                check,
                f"{check.id} did not finish within {timeout:g} s",
                "The target did not answer in time: check that it is up and reachable.",
            )
            _accept(i, late, check, starts, redactor, results, pending, on_result, store)
        if not pending:
            break
        wait = max(0.0, min(deadlines[i] for i in pending) - time.monotonic())
        try:
            i, result = done.get(timeout=wait + 0.01)
        except queue.Empty:
            continue
        if i in pending:  # a late answer after its deadline was already reported is dropped
            _accept(i, result, checks_list[i], starts, redactor, results, pending, on_result, store)
    return [results[i] for i in range(len(checks_list))]


def _accept(
    i: int,
    raw: Result,
    check: Check,
    starts: dict[int, tuple[float, datetime]],
    redactor: Redactor,
    results: dict[int, Result],
    pending: set[int],
    on_result: Callable[[Result], None] | None,
    store: ResultSink | None,
) -> None:
    result = _finish(check, raw, starts[i], redactor)
    results[i] = result
    pending.discard(i)
    if store is not None:
        store.save_result(result)
    if on_result is not None:
        on_result(result)


def run_one(check: Check, ctx: CheckContext) -> Result:
    """Run a single check under the runner's rules (timeout, ERROR on exception, redaction)."""
    return run_checks([check], ctx)[0]
