"""Check results: the full history, plus the newest per check so reading never scans history."""

from __future__ import annotations

import json
from collections.abc import Iterable

from checks.base import Result
from store.base import StoreBase, _json, _ts


class ResultStore(StoreBase):
    def save_result(self, result: Result) -> None:
        self.save_results([result])

    def save_results(self, results: Iterable[Result]) -> None:
        """Append results to the history in one transaction and keep the newest per check."""
        batch = list(results)
        if any(not r.check_id for r in batch):
            raise ValueError("a result without a check_id cannot be stored")
        saved_at = _ts(self._clock())
        rows = [
            (
                r.check_id,
                r.status.value,
                _ts(r.observed_at) if r.observed_at else "",
                saved_at,
                _json(r.to_dict()),
            )
            for r in batch
        ]
        newest: dict[str, tuple[str, str]] = {}
        for check_id, _, observed_at, _, data in rows:
            if check_id not in newest or observed_at >= newest[check_id][0]:
                newest[check_id] = (observed_at, data)
        with self._write():
            self._many(
                "INSERT INTO check_results (check_id, status, observed_at, saved_at, result) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            # A slow run that finishes after a quicker, later one must not replace its result.
            self._many(
                "INSERT INTO latest_results (check_id, observed_at, result) VALUES (?, ?, ?) "
                "ON CONFLICT (check_id) DO UPDATE SET observed_at = excluded.observed_at, "
                "result = excluded.result "
                "WHERE excluded.observed_at >= latest_results.observed_at",
                [(c, o, d) for c, (o, d) in newest.items()],
            )

    def latest_results(self) -> dict[str, Result]:
        """The newest (by observed_at) result of every check ever stored, by check id."""
        with self._read():
            rows = self._all("SELECT check_id, result FROM latest_results ORDER BY check_id")
        return {r["check_id"]: Result.from_dict(json.loads(r["result"])) for r in rows}

    def result_history(self, check_id: str, limit: int = 20) -> list[Result]:
        """A check's results, newest first."""
        with self._read():
            rows = self._all(
                "SELECT result FROM check_results WHERE check_id = ? "
                "ORDER BY observed_at DESC, id DESC LIMIT ?",
                (check_id, limit),
            )
        return [Result.from_dict(json.loads(r["result"])) for r in rows]
