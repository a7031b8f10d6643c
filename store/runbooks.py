"""Runbook runs: the run row is written at start and once at its end; steps are events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.base import Row, StoreBase, _at, _dt, _ts
from store.errors import RunEnded, UnknownAction, UnknownRun
from store.records import STEP_ACTIONS, RunbookRun, StepEvent

_STEP_COLUMNS = "id, run_id, step, action, user, at, note"


def _step(row: Row) -> StepEvent:
    return StepEvent(
        id=row["id"], run_id=row["run_id"], step=row["step"], action=row["action"],
        user=row["user"], at=_at(row["at"]), note=row["note"],
    )  # fmt: skip


class RunbookStore(StoreBase):
    _RUN_COLUMNS = (
        "id, runbook_id, started_by, started_at, channel, thread_ts, ended_at, ended_by, source"
    )

    def _runs(self, where: str, params: Sequence[Any]) -> list[RunbookRun]:
        """Runs matching `where`, a literal condition from this class (values go in params)."""
        sql = f"SELECT {self._RUN_COLUMNS} FROM runbook_runs WHERE {where}"  # noqa: S608
        rows = self._all(sql, params)
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        events: dict[int, list[StepEvent]] = {i: [] for i in ids}
        marks = ", ".join("?" for _ in ids)
        for e in self._all(
            f"SELECT {_STEP_COLUMNS} FROM runbook_step_events "  # noqa: S608
            f"WHERE run_id IN ({marks}) ORDER BY id",
            ids,
        ):
            events[e["run_id"]].append(_step(e))
        return [
            RunbookRun(
                id=r["id"],
                runbook_id=r["runbook_id"],
                started_by=r["started_by"],
                started_at=_at(r["started_at"]),
                channel=r["channel"],
                thread_ts=r["thread_ts"],
                ended_at=_dt(r["ended_at"]),
                ended_by=r["ended_by"],
                events=events[r["id"]],
                source=r["source"],
            )
            for r in rows
        ]

    def _get_run(self, run_id: int) -> RunbookRun:
        runs = self._runs("id = ?", (run_id,))
        if not runs:
            raise UnknownRun(f"no runbook run {run_id}")
        return runs[0]

    def start_run(
        self,
        runbook_id: str,
        user: str,
        *,
        channel: str | None = None,
        thread_ts: str | None = None,
        source: str = "cli",
        request_key: str | None = None,
    ) -> RunbookRun:
        """Begin a run of `runbook_id`. Which runbooks exist is the caller's business."""

        def write() -> RunbookRun:
            run_id = self._insert(
                "INSERT INTO runbook_runs (runbook_id, started_by, started_at, channel, "
                "thread_ts, source, request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (runbook_id, user, _ts(self._clock()), channel, thread_ts, source, request_key),
            )
            return self._get_run(run_id)

        def replay() -> RunbookRun | None:
            runs = self._runs("request_key = ? ORDER BY id LIMIT 1", (request_key,))
            return runs[0] if runs else None

        return self._claim_or_replay("start_run", request_key, write, replay)

    def step_event(
        self,
        run_id: int,
        step: int,
        action: str,
        user: str,
        note: str = "",
        *,
        request_key: str | None = None,
    ) -> StepEvent:
        """Record that `user` did `action` (done, skip, note, undo) on `step` of a running run."""
        if action not in STEP_ACTIONS:
            raise UnknownAction(f"unknown step action {action!r}: use {', '.join(STEP_ACTIONS)}")
        if step < 0:
            raise ValueError(f"step must not be negative, got {step}")

        def write() -> StepEvent:
            # Locks the run's row where the backend has row locks: a step and the run's end
            # from two instances are then ordered, and no step lands on an ended run.
            run = self._one(
                f"SELECT ended_at FROM runbook_runs WHERE id = ?{self._FOR_UPDATE}",  # noqa: S608
                (run_id,),
            )
            if run is None:
                raise UnknownRun(f"no runbook run {run_id}")
            if run["ended_at"] is not None:
                raise RunEnded(f"runbook run {run_id} has ended")
            at = _ts(self._clock())
            event_id = self._insert(
                "INSERT INTO runbook_step_events (run_id, step, action, user, note, at, "
                "request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, step, action, user, note, at, request_key),
            )
            return StepEvent(event_id, run_id, step, action, user, _at(at), note)

        def replay() -> StepEvent | None:
            row = self._one(
                f"SELECT {_STEP_COLUMNS} FROM runbook_step_events "  # noqa: S608
                "WHERE request_key = ? ORDER BY id LIMIT 1",
                (request_key,),
            )
            return None if row is None else _step(row)

        return self._claim_or_replay("step", request_key, write, replay)

    def run(self, run_id: int) -> RunbookRun:
        with self._read():
            return self._get_run(run_id)

    def active_runs(self, channel: str | None = None) -> list[RunbookRun]:
        """Runs not yet ended (in `channel`, if given), oldest first."""
        with self._read():
            if channel is None:
                return self._runs("ended_at IS NULL ORDER BY id", ())
            return self._runs("ended_at IS NULL AND channel = ? ORDER BY id", (channel,))

    def end_run(self, run_id: int, user: str, *, request_key: str | None = None) -> RunbookRun:
        def write() -> RunbookRun:
            run = self._get_run(run_id)
            if not run.active:
                raise RunEnded(f"runbook run {run_id} has already ended")
            self._exec(
                "UPDATE runbook_runs SET ended_at = ?, ended_by = ? WHERE id = ?",
                (_ts(self._clock()), user, run_id),
            )
            return self._get_run(run_id)

        return self._claim_or_replay("end_run", request_key, write, lambda: self._get_run(run_id))

    def set_run_message(self, run_id: int, channel: str, ts: str) -> None:
        """Remember the Slack message the run lives under (its thread)."""
        with self._write():
            cursor = self._exec(
                "UPDATE runbook_runs SET channel = ?, thread_ts = ? WHERE id = ?",
                (channel, ts, run_id),
            )
            if cursor.rowcount == 0:
                raise UnknownRun(f"no runbook run {run_id}")
