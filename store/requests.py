"""Request de-duplication: a Slack retry (same trigger_id, action_ts...) is applied once."""

from __future__ import annotations

from datetime import timedelta

from store.base import StoreBase, _ts


class RequestStore(StoreBase):
    def claim_request(self, key: str) -> bool:
        """True the first time `key` (a Slack retry's trigger_id, action_ts...) is seen, by any
        process or instance on this database."""
        return (
            self._write_one(
                "INSERT INTO processed_requests (scope, key, claimed_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                ("request", key, _ts(self._clock())),
            )
            == 1
        )

    def prune_requests(self, older_than: timedelta) -> int:
        """Forget request keys claimed longer ago than Slack could still redeliver them
        (retries come within minutes); returns how many were removed."""
        cutoff = _ts(self._clock() - older_than)
        with self._write():
            return self._exec(
                "DELETE FROM processed_requests WHERE claimed_at < ?", (cutoff,)
            ).rowcount
