"""Decisions: votes and close/reopen events; a decision's state is derived from them."""

from __future__ import annotations

from typing import Any

from store.base import Row, StoreBase, _as_dict, _at, _ts
from store.errors import DecisionClosed, DecisionNotClosed, UnknownDecision, UnknownOption
from store.records import DECISION_ACCEPTED, DECISION_OPEN, DecisionState, Vote


def _vote(row: Row) -> Vote:
    return Vote(
        decision_id=row["decision_id"], option_id=row["option_id"], user=row["user"],
        at=_at(row["at"]), source=row["source"],
    )  # fmt: skip


class DecisionStore(StoreBase):
    def _current_decision(self, decision_id: str) -> int:
        version = self._version()
        if version is None or not self._one(
            "SELECT 1 FROM decisions WHERE version = ? AND id = ?", (version, decision_id)
        ):
            raise UnknownDecision(f"no decision {decision_id!r} in the current checklist")
        return version

    def _check_option(self, version: int, decision_id: str, option_id: str) -> None:
        if not self._one(
            "SELECT 1 FROM decision_options WHERE version = ? AND decision_id = ? AND id = ?",
            (version, decision_id, option_id),
        ):
            raise UnknownOption(f"decision {decision_id!r} has no option {option_id!r}")

    def _current_votes(self, version: int, decision_id: str, until: str | None = None) -> list[Row]:
        """(user, option_id) of each user's latest vote (cast by `until`, a stored timestamp),
        if that option still exists."""
        cast_by = "" if until is None else "AND at <= :until "
        return self._all(
            "WITH latest AS (SELECT MAX(id) AS id FROM vote_events "  # noqa: S608
            f"WHERE decision_id = :d {cast_by}GROUP BY user) "
            "SELECT v.user, v.option_id FROM latest JOIN vote_events v ON v.id = latest.id "
            "JOIN decision_options o ON o.version = :version AND o.decision_id = v.decision_id "
            "AND o.id = v.option_id ORDER BY v.id",
            {"d": decision_id, "version": version, **({} if until is None else {"until": until})},
        )

    def _state(self, version: int, decision_id: str, upto: int | None = None) -> DecisionState:
        """A decision's state from its events, as of event id `upto` (default: now)."""
        events = self._all(
            "SELECT action, option_id, user, at, rationale FROM decision_events "
            "WHERE decision_id = ? AND id <= ? ORDER BY id",
            (decision_id, upto if upto is not None else 2**62),
        )
        standing: Row | None = None  # the close event in force, if any
        supersedes: str | None = None
        accepted: list[str] = []
        deciders: list[str] = []
        for event in events:
            action, option_id, user = event["action"], event["option_id"], event["user"]
            if user not in deciders:
                deciders.append(user)
            if action == "close":
                earlier = [o for o in accepted if o != option_id]
                supersedes = earlier[-1] if earlier else None
                accepted.append(option_id)
                standing = event
            else:
                standing, supersedes = None, None
        until = events[-1]["at"] if upto is not None and events else None
        voters = [r["user"] for r in self._current_votes(version, decision_id, until)]
        if standing is None:
            return DecisionState(decision_id, DECISION_OPEN, deciders=deciders, voters=voters)
        return DecisionState(
            decision_id=decision_id,
            status=DECISION_ACCEPTED,
            chosen=standing["option_id"],
            closed_by=standing["user"],
            closed_at=_at(standing["at"]),
            rationale=standing["rationale"],
            supersedes=supersedes,
            deciders=deciders,
            voters=voters,
        )

    def vote(
        self,
        decision_id: str,
        option_id: str,
        user: str,
        *,
        source: str = "cli",
        request_key: str | None = None,
    ) -> Vote:
        """Record `user`'s vote; a later vote replaces their earlier one, which stays in history."""

        def write() -> Vote:
            at = _ts(self._clock())
            # One statement checks and writes (each statement is a trip out of Python while
            # holding the write lock; perf, issue 11); when it writes nothing, say why.
            inserted = self._exec(
                "INSERT INTO vote_events (version, decision_id, option_id, user, at, source, "
                "request_key) SELECT o.version, o.decision_id, o.id, :user, :at, :source, :key "
                "FROM decision_options o WHERE o.version = "
                "(SELECT MAX(version) FROM checklist_versions) "
                "AND o.decision_id = :d AND o.id = :o AND COALESCE((SELECT action FROM "
                "decision_events WHERE decision_id = :d ORDER BY id DESC LIMIT 1), '') <> 'close'",
                {
                    "user": user, "at": at, "source": source, "key": request_key,
                    "d": decision_id, "o": option_id,
                },
            ).rowcount  # fmt: skip
            if inserted != 1:
                version = self._current_decision(decision_id)
                self._check_option(version, decision_id, option_id)
                raise DecisionClosed(f"decision {decision_id!r} is closed")
            return Vote(decision_id, option_id, user, _at(at), source)

        def replay() -> Vote | None:
            row = self._one(
                "SELECT decision_id, option_id, user, at, source FROM vote_events "
                "WHERE request_key = ? ORDER BY id LIMIT 1",
                (request_key,),
            )
            return None if row is None else _vote(row)

        return self._claim_or_replay("vote", request_key, write, replay)

    def votes(self, decision_id: str) -> dict[str, str]:
        """user -> option id of their current vote, earliest vote first."""
        with self._read():
            version = self._current_decision(decision_id)
            return {r["user"]: r["option_id"] for r in self._current_votes(version, decision_id)}

    def vote_history(self, decision_id: str) -> list[Vote]:
        """Every vote ever cast on the decision, oldest first."""
        with self._read():
            rows = self._all(
                "SELECT decision_id, option_id, user, at, source FROM vote_events "
                "WHERE decision_id = ? ORDER BY id",
                (decision_id,),
            )
        return [_vote(r) for r in rows]

    def _decision_event(
        self,
        scope: str,
        decision_id: str,
        user: str,
        text: str,
        option_id: str | None,
        source: str,
        request_key: str | None,
    ) -> DecisionState:
        def write() -> DecisionState:
            version = self._current_decision(decision_id)
            state = self._state(version, decision_id)
            if option_id is not None:
                self._check_option(version, decision_id, option_id)
                if not state.is_open:
                    raise DecisionClosed(f"decision {decision_id!r} is already closed")
            elif state.is_open:
                raise DecisionNotClosed(f"decision {decision_id!r} is not closed")
            self._exec(
                "INSERT INTO decision_events (version, decision_id, action, option_id, user, at, "
                "rationale, source, request_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (version, decision_id, scope, option_id, user, _ts(self._clock()), text, source,
                 request_key),
            )  # fmt: skip
            return self._state(version, decision_id)

        def replay() -> DecisionState | None:
            row = self._one(
                "SELECT id, version FROM decision_events WHERE request_key = ? AND action = ?",
                (request_key, "close" if scope == "close" else "reopen"),
            )
            return None if row is None else self._state(row["version"], decision_id, row["id"])

        return self._claim_or_replay(scope, request_key, write, replay)

    def close_decision(
        self,
        decision_id: str,
        option_id: str,
        user: str,
        rationale: str = "",
        *,
        source: str = "cli",
        request_key: str | None = None,
    ) -> DecisionState:
        """Accept `option_id`. Whether `user` may decide is the caller's business."""
        return self._decision_event(
            "close", decision_id, user, rationale, option_id, source, request_key
        )

    def reopen_decision(
        self,
        decision_id: str,
        user: str,
        reason: str = "",
        *,
        source: str = "cli",
        request_key: str | None = None,
    ) -> DecisionState:
        """Open a closed decision to votes again; closing it anew supersedes the old choice."""
        return self._decision_event("reopen", decision_id, user, reason, None, source, request_key)

    def decision_state(self, decision_id: str) -> DecisionState:
        with self._read():
            version = self._current_decision(decision_id)
            return self._state(version, decision_id)

    def decision_states(self) -> dict[str, DecisionState]:
        """The state of every decision in the current checklist, in document order."""
        with self._read():
            version = self._version()
            if version is None:
                return {}
            ids = self._all(
                "SELECT id FROM decisions WHERE version = ? ORDER BY position", (version,)
            )
            return {r["id"]: self._state(version, r["id"]) for r in ids}

    def decision_history(self, decision_id: str) -> list[dict[str, Any]]:
        """Every close and reopen of the decision, oldest first (for decision records)."""
        with self._read():
            rows = self._all(
                "SELECT id, version, decision_id, action, option_id, user, at, rationale, source "
                "FROM decision_events WHERE decision_id = ? ORDER BY id",
                (decision_id,),
            )
        return [{**_as_dict(r), "at": _at(r["at"])} for r in rows]
