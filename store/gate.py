"""Accepted warnings and overrides: what lets an item pass the gate although a check says no."""

from __future__ import annotations

from store.base import Row, StoreBase, _at, _ts
from store.records import Acceptance, Override


def _acceptance(row: Row) -> Acceptance:
    return Acceptance(
        item_id=row["item_id"], check_id=row["check_id"], status=row["status"],
        fingerprint=row["fingerprint"], user=row["user"], reason=row["reason"],
        at=_at(row["at"]), source=row["source"],
    )  # fmt: skip


def _override(row: Row) -> Override:
    return Override(
        item_id=row["item_id"], user=row["user"], reason=row["reason"], at=_at(row["at"]),
        source=row["source"],
    )  # fmt: skip


class GateStore(StoreBase):
    def accept_result(
        self,
        item_id: str,
        check_id: str,
        status: str,
        fingerprint: str,
        user: str,
        reason: str,
        *,
        summary: str = "",
        source: str = "cli",
        request_key: str | None = None,
    ) -> Acceptance:
        """Record that `user` accepts `check_id`'s result (`status`, `fingerprint`) for
        `item_id`. Whether that result is a WARN, and whether `user` may, is the caller's."""

        def write() -> Acceptance:
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._exec(
                "INSERT INTO acceptance_events (version, item_id, check_id, status, fingerprint, "
                "summary, user, reason, at, source, request_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (version, item_id, check_id, status, fingerprint, summary, user, reason, at,
                 source, request_key),
            )  # fmt: skip
            return Acceptance(item_id, check_id, status, fingerprint, user, reason, _at(at), source)

        def replay() -> Acceptance | None:
            row = self._one(
                "SELECT item_id, check_id, status, fingerprint, user, reason, at, source "
                "FROM acceptance_events WHERE request_key = ? AND item_id = ? "
                "AND check_id = ? ORDER BY id LIMIT 1",
                (request_key, item_id, check_id),
            )
            return None if row is None else _acceptance(row)

        # One request (a modal) may accept several checks: the claim is per item and check.
        claim = f"{request_key}:{item_id}:{check_id}" if request_key else None
        return self._claim_or_replay("accept", request_key, write, replay, claim_key=claim)

    def acceptances(self) -> list[Acceptance]:
        """Every acceptance of a current item made since its text last changed, oldest first.
        Which of them still cover the item's current result is readiness's business."""
        with self._read():
            rows = self._all(
                "SELECT e.item_id, e.check_id, e.status, e.fingerprint, e.user, e.reason, e.at, "
                "e.source FROM acceptance_events e "
                "JOIN items i ON i.version = (SELECT MAX(version) FROM checklist_versions) "
                "AND i.id = e.item_id AND e.version >= i.since_version ORDER BY e.id"
            )
        return [_acceptance(r) for r in rows]

    def override(
        self,
        item_id: str,
        user: str,
        reason: str,
        *,
        source: str = "cli",
        request_key: str | None = None,
    ) -> Override:
        """Sign `item_id` off as `user` and override its checks, in one transaction: the
        override stands while that sign-off does. Who may override is the caller's business."""

        def write() -> Override:
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._exec(
                "INSERT INTO signoff_events (version, item_id, user, action, at, note, source) "
                "VALUES (?, ?, ?, 'signoff', ?, ?, ?)",
                (version, item_id, user, at, f"override: {reason}", source),
            )
            self._exec(
                "INSERT INTO override_events (version, item_id, user, reason, at, source, "
                "request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (version, item_id, user, reason, at, source, request_key),
            )
            return Override(item_id, user, reason, _at(at), source)

        def replay() -> Override | None:
            row = self._one(
                "SELECT item_id, user, reason, at, source FROM override_events "
                "WHERE request_key = ? ORDER BY id LIMIT 1",
                (request_key,),
            )
            return None if row is None else _override(row)

        return self._claim_or_replay("override", request_key, write, replay)

    def overrides(self) -> dict[str, list[Override]]:
        """Overrides of current items made since their text last changed, oldest first.
        Readiness counts one only while its author's sign-off stands."""
        with self._read():
            rows = self._all(
                "SELECT e.item_id, e.user, e.reason, e.at, e.source FROM override_events e "
                "JOIN items i ON i.version = (SELECT MAX(version) FROM checklist_versions) "
                "AND i.id = e.item_id AND e.version >= i.since_version ORDER BY e.id"
            )
        result: dict[str, list[Override]] = {}
        for r in rows:
            result.setdefault(r["item_id"], []).append(_override(r))
        return result
