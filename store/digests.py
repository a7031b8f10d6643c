"""Digest subscriptions (append-only events) and the snapshot each digest showed."""

from __future__ import annotations

import json
from typing import Any

from store.base import StoreBase, _at, _json, _ts
from store.records import Subscription

_CURRENT_SUBSCRIPTIONS = (
    "WITH latest AS (SELECT MAX(id) AS id FROM digest_subscriptions GROUP BY channel) "
    "SELECT s.channel, s.user, s.schedule, s.at FROM latest "
    "JOIN digest_subscriptions s ON s.id = latest.id WHERE s.action = 'subscribe'"
)


class DigestStore(StoreBase):
    _CURRENT_SUBSCRIPTIONS = _CURRENT_SUBSCRIPTIONS

    def subscribe(self, channel: str, user: str, schedule: str = "daily 09:00") -> Subscription:
        """Subscribe `channel` to digests; subscribing again replaces its schedule."""
        at = _ts(self._clock())
        with self._write():
            self._exec(
                "INSERT INTO digest_subscriptions (channel, user, action, schedule, at) "
                "VALUES (?, ?, 'subscribe', ?, ?)",
                (channel, user, schedule, at),
            )
        return Subscription(channel, user, schedule, _at(at))

    def unsubscribe(self, channel: str, user: str) -> bool:
        """Stop `channel`'s digests; False if it had none."""
        with self._write():
            if not self._one(f"{_CURRENT_SUBSCRIPTIONS} AND s.channel = ?", (channel,)):
                return False
            self._exec(
                "INSERT INTO digest_subscriptions (channel, user, action, at) "
                "VALUES (?, ?, 'unsubscribe', ?)",
                (channel, user, _ts(self._clock())),
            )
            return True

    def subscriptions(self) -> list[Subscription]:
        with self._read():
            rows = self._all(f"{_CURRENT_SUBSCRIPTIONS} ORDER BY s.channel")
        return [Subscription(r["channel"], r["user"], r["schedule"], _at(r["at"])) for r in rows]

    def save_digest_snapshot(self, channel: str, snapshot: dict[str, Any]) -> None:
        """Keep what the last digest showed, so the next one can say what changed."""
        with self._write():
            self._exec(
                "INSERT INTO digest_snapshots (channel, at, snapshot) VALUES (?, ?, ?)",
                (channel, _ts(self._clock()), _json(snapshot)),
            )

    def last_digest_snapshot(self, channel: str) -> dict[str, Any] | None:
        with self._read():
            row = self._one(
                "SELECT snapshot FROM digest_snapshots WHERE channel = ? ORDER BY id DESC LIMIT 1",
                (channel,),
            )
        if row is None:
            return None
        snapshot: dict[str, Any] = json.loads(row["snapshot"])
        return snapshot
