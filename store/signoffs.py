"""Sign-offs and assignments: append-only events; who stands signed off is a query over them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from store.base import Row, StoreBase, _as_dict, _at, _ts
from store.records import Assignment, Signoff

_SIGNOFF_COLUMNS = "item_id, user, at, note, na_reason, source"


def _signoff(row: Row) -> Signoff:
    return Signoff(
        item_id=row["item_id"], user=row["user"], at=_at(row["at"]), note=row["note"],
        na_reason=row["na_reason"], source=row["source"],
    )  # fmt: skip


class SignoffStore(StoreBase):
    def _standing(self, version: int, item_id: str, user: str) -> bool:
        row = self._one(
            "SELECT e.action = 'signoff' AND e.version >= i.since_version AS standing "
            "FROM signoff_latest l JOIN signoff_events e ON e.id = l.event_id "
            "JOIN items i ON i.version = ? AND i.id = e.item_id "
            "WHERE l.item_id = ? AND l.user = ?",
            (version, item_id, user),
        )
        return bool(row and row["standing"])

    def add_signoff(
        self,
        item_id: str,
        user: str,
        *,
        note: str = "",
        source: str = "cli",
        na_reason: str | None = None,
        request_key: str | None = None,
    ) -> Signoff:
        """Sign off `item_id` as `user` (as not applicable when `na_reason` is given)."""

        def write() -> Signoff:
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._exec(
                "INSERT INTO signoff_events (version, item_id, user, action, at, note, na_reason, "
                "source, request_key) VALUES (?, ?, ?, 'signoff', ?, ?, ?, ?, ?)",
                (version, item_id, user, at, note, na_reason, source, request_key),
            )
            return Signoff(item_id, user, _at(at), note, na_reason, source)

        def replay() -> Signoff | None:
            row = self._one(
                f"SELECT {_SIGNOFF_COLUMNS} FROM signoff_events "  # noqa: S608
                "WHERE request_key = ? AND action = 'signoff' ORDER BY id LIMIT 1",
                (request_key,),
            )
            return None if row is None else _signoff(row)

        return self._claim_or_replay("signoff", request_key, write, replay)

    def remove_signoff(
        self, item_id: str, user: str, *, source: str = "cli", request_key: str | None = None
    ) -> bool:
        """Withdraw `user`'s standing sign-off; False (and nothing written) if there was none."""

        def write() -> bool:
            version = self._version()
            if version is None or not self._standing(version, item_id, user):
                return False
            self._exec(
                "INSERT INTO signoff_events (version, item_id, user, action, at, source, "
                "request_key) VALUES (?, ?, ?, 'unsign', ?, ?, ?)",
                (version, item_id, user, _ts(self._clock()), source, request_key),
            )
            return True

        def replay() -> bool:
            return bool(
                self._one(
                    "SELECT 1 FROM signoff_events WHERE request_key = ? AND action = 'unsign'",
                    (request_key,),
                )
            )

        return self._claim_or_replay("unsign", request_key, write, replay)

    def signoffs(self) -> dict[str, list[Signoff]]:
        """Standing sign-offs per current item id, oldest first."""
        with self._read():
            key = self._unchanged_since()
            if self._signoffs_cache and self._signoffs_cache[0] == key:
                return {k: list(v) for k, v in self._signoffs_cache[1].items()}
            rows = self._all(
                "SELECT e.item_id, e.user, e.at, e.note, e.na_reason, e.source "
                "FROM signoff_latest l JOIN signoff_events e ON e.id = l.event_id "
                "JOIN items i ON i.version = (SELECT MAX(version) FROM checklist_versions) "
                "AND i.id = e.item_id "
                "WHERE e.action = 'signoff' AND e.version >= i.since_version ORDER BY e.id"
            )
            result: dict[str, list[Any]] = {}
            parse = datetime.fromisoformat  # inlined: this loop is most of a cold call's time
            for r in rows:
                item_id = r["item_id"]
                result.setdefault(item_id, []).append(
                    Signoff(
                        item_id, r["user"], parse(r["at"]), r["note"], r["na_reason"], r["source"]
                    )
                )
            self._signoffs_cache = (key, result)
            return {k: list(v) for k, v in result.items()}

    def signoffs_delta(
        self, since_event: int, full: bool = False
    ) -> tuple[int, int, dict[str, list[Signoff]]]:
        """What changed in the standing sign-offs after event `since_event`: the current
        checklist version, the newest event id, and the standing sign-offs (oldest first,
        possibly none) of every current item with a later event; with `full`, of every current
        item (like signoffs()). One snapshot, so a cache of signoffs() updated with it stays
        exactly signoffs() as of the returned id: a sign-off changes one item, not the reading
        of all of them (perf, issue 11)."""
        standing = (
            "SELECT e.item_id, e.user, e.at, e.note, e.na_reason, e.source "
            "FROM signoff_latest l JOIN signoff_events e ON e.id = l.event_id "
            "JOIN items i ON i.version = (SELECT MAX(version) FROM checklist_versions) "
            "AND i.id = e.item_id "
            "WHERE e.action = 'signoff' AND e.version >= i.since_version"
        )
        with self._read():
            row = self._one(
                "SELECT (SELECT MAX(version) FROM checklist_versions) AS v, "
                "(SELECT MAX(id) FROM signoff_events) AS s"
            )
            version, newest = (int(row["v"] or 0), int(row["s"] or 0)) if row else (0, 0)
            changed: list[str] | None = None
            if full:
                rows = self._all(f"{standing} ORDER BY e.id")
            else:
                changed = [
                    r["item_id"]
                    for r in self._all(
                        "SELECT DISTINCT item_id FROM signoff_events WHERE id > ?", (since_event,)
                    )
                ]
                rows = []
                for start in range(0, len(changed), 500):  # bounded IN lists, any backend
                    chunk = changed[start : start + 500]
                    marks = ", ".join("?" for _ in chunk)
                    rows += self._all(f"{standing} AND l.item_id IN ({marks}) ORDER BY e.id", chunk)
        result: dict[str, list[Signoff]] = {item_id: [] for item_id in changed or ()}
        parse = datetime.fromisoformat
        for r in rows:  # each item lies in one chunk, its sign-offs in event order
            result.setdefault(r["item_id"], []).append(
                Signoff(
                    r["item_id"], r["user"], parse(r["at"]), r["note"], r["na_reason"], r["source"]
                )
            )
        return version, newest, result

    def signoff_history(self, item_id: str) -> list[dict[str, Any]]:
        """Every sign-off event for `item_id`, in any version, oldest first."""
        with self._read():
            rows = self._all(
                "SELECT id, version, item_id, user, action, at, note, na_reason, source "
                "FROM signoff_events WHERE item_id = ? ORDER BY id",
                (item_id,),
            )
        return [{**_as_dict(r), "at": _at(r["at"])} for r in rows]

    def signoff_count(self) -> int:
        """Number of sign-off events (sign-offs and withdrawals) ever written."""
        with self._read():
            row = self._one("SELECT COUNT(*) AS n FROM signoff_events")
        return int(row["n"]) if row else 0

    # --- assignments --------------------------------------------------------------------------

    def assign(
        self, item_id: str, assignee: str | None, by: str, *, source: str = "cli"
    ) -> Assignment | None:
        """Ask `assignee` to see `item_id` through, replacing any earlier assignment;
        None clears it (and returns None)."""
        with self._write():
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._exec(
                "INSERT INTO assignment_events (version, item_id, assignee, assigned_by, at, "
                "source) VALUES (?, ?, ?, ?, ?, ?)",
                (version, item_id, assignee, by, at, source),
            )
        return None if assignee is None else Assignment(item_id, assignee, by, _at(at), source)

    def assignments(self) -> dict[str, str]:
        """item id -> assignee, for current items with an assignment in force."""
        with self._read():
            rows = self._all(
                "WITH latest AS (SELECT MAX(id) AS id FROM assignment_events GROUP BY item_id) "
                "SELECT a.item_id, a.assignee FROM latest JOIN assignment_events a "
                "ON a.id = latest.id JOIN items i ON i.id = a.item_id "
                "AND i.version = (SELECT MAX(version) FROM checklist_versions) "
                "WHERE a.assignee IS NOT NULL ORDER BY a.id"
            )
        return {r["item_id"]: r["assignee"] for r in rows}
