"""Poll messages of decisions and claimed digest slots (migration m006).

A decision's poll is one channel message, updated in place on every vote; the store keeps where
it is so any process can update it. A digest slot (one subscription's scheduled time) is claimed
by inserting its unique row before the digest is posted: whichever process or restart inserts
it first posts, every other one finds the row and does not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from store.base import StoreBase


@dataclass(frozen=True)
class PollMessage:
    """Where a decision's poll was posted."""

    decision_id: str
    channel: str
    ts: str
    at: datetime


@dataclass(frozen=True)
class DigestPoint:
    """One posted digest's readiness, for the chart of readiness over time."""

    at: datetime
    done: int
    applicable: int
    gate: str


def _ts(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    found = datetime.fromisoformat(text)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _col(row: Any, index: int, name: str) -> Any:
    """A column by name, whether the base hands out tuples or mappings."""
    return row[index] if isinstance(row, tuple) else row[name]


class DecisionPollsStore(StoreBase):
    """Decision poll messages and digest slot claims."""

    # ---- decision polls -------------------------------------------------------------------

    def save_poll(self, decision_id: str, channel: str, ts: str) -> PollMessage:
        """Remember the poll message of decision_id in channel (the latest one counts)."""
        at = self._clock()
        with self._write():
            self._insert(
                "INSERT INTO decision_polls (decision_id, channel, ts, at) VALUES (?, ?, ?, ?)",
                (decision_id, channel, ts, _ts(at)),
            )
        return PollMessage(decision_id, channel, ts, at)

    def polls(self, decision_id: str) -> list[PollMessage]:
        """The current poll message of decision_id in each channel that has one."""
        with self._read():
            rows = self._all(
                "SELECT p.decision_id, p.channel, p.ts, p.at FROM decision_polls p "
                "JOIN (SELECT MAX(id) AS id FROM decision_polls WHERE decision_id = ? "
                "GROUP BY channel) latest ON latest.id = p.id ORDER BY p.id",
                (decision_id,),
            )
        return [
            PollMessage(
                _col(r, 0, "decision_id"),
                _col(r, 1, "channel"),
                _col(r, 2, "ts"),
                _dt(_col(r, 3, "at")),
            )
            for r in rows
        ]

    def poll(self, decision_id: str, channel: str) -> PollMessage | None:
        return next((p for p in self.polls(decision_id) if p.channel == channel), None)

    # ---- digest slots ---------------------------------------------------------------------

    def claim_digest_slot(self, channel: str, slot: datetime) -> bool:
        """Claim channel's digest for the scheduled time `slot`: True for the one caller that
        inserted the row, False for every later one (another process, a restart)."""
        return self.claim_digest_slots([(channel, slot)]) == [channel]

    def claim_digest_slots(self, claims: Sequence[tuple[str, datetime]]) -> list[str]:
        """Claim a round's slots in one transaction: the channels whose row this call inserted.
        The unique key decides (RETURNING yields a row only for an insert that happened), so two
        processes claiming at once can never both win, on SQLite or PostgreSQL."""
        won: list[str] = []
        claimed_at = _ts(self._clock())
        with self._write():
            for channel, slot in claims:
                inserted = self._all(
                    "INSERT INTO digest_slots (channel, slot, claimed_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (channel, slot) DO NOTHING RETURNING channel",
                    (channel, _ts(slot), claimed_at),
                )
                if inserted:
                    won.append(channel)
        return won

    def finish_digest_slots(self, outcomes: Sequence[tuple[str, datetime, str]]) -> None:
        """finish_digest_slot for a whole round in one transaction."""
        with self._write():
            for channel, slot, outcome in outcomes:
                self._all(
                    "UPDATE digest_slots SET outcome = ? WHERE channel = ? AND slot = ?",
                    (outcome[:100], channel, _ts(slot)),
                )

    def last_digest_snapshots(self, channels: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each channel's last digest snapshot (channels without one are left out)."""
        wanted = set(channels)
        with self._read():
            rows = self._all(
                "SELECT s.channel, s.snapshot FROM digest_snapshots s JOIN "
                "(SELECT MAX(id) AS id FROM digest_snapshots GROUP BY channel) latest "
                "ON latest.id = s.id"
            )
        found: dict[str, dict[str, Any]] = {}
        for r in rows:
            channel = _col(r, 0, "channel")
            if channel in wanted:
                found[channel] = json.loads(_col(r, 1, "snapshot"))
        return found

    def save_digest_snapshots(self, snapshots: dict[str, dict[str, Any]]) -> None:
        """Keep what a round's digests showed, one row per channel, in one transaction."""
        at = _ts(self._clock())
        with self._write():
            for channel, snapshot in snapshots.items():
                self._all(
                    "INSERT INTO digest_snapshots (channel, at, snapshot) VALUES (?, ?, ?)",
                    (channel, at, json.dumps(snapshot, sort_keys=True, default=str)),
                )

    def finish_digest_slot(self, channel: str, slot: datetime, outcome: str) -> None:
        """What became of a claimed slot: "posted", "quiet" (nothing changed) or Slack's error."""
        with self._write():
            self._all(
                "UPDATE digest_slots SET outcome = ? WHERE channel = ? AND slot = ?",
                (outcome[:100], channel, _ts(slot)),
            )

    def digest_slots(self, channel: str) -> list[tuple[datetime, str | None]]:
        """(slot, outcome) of channel's claimed slots, oldest first."""
        with self._read():
            rows = self._all(
                "SELECT slot, outcome FROM digest_slots WHERE channel = ? ORDER BY slot",
                (channel,),
            )
        return [(_dt(_col(r, 0, "slot")), _col(r, 1, "outcome")) for r in rows]

    def digest_history(self, limit: int = 60) -> list[DigestPoint]:
        """Readiness as the last `limit` digest rounds saw it, oldest first: one point per
        round (the channels of one round share their snapshot's computed_at)."""
        with self._read():
            rows = self._all(
                "SELECT at, snapshot FROM digest_snapshots ORDER BY id DESC LIMIT ?",
                (limit * 20,),
            )
        seen: dict[str, DigestPoint] = {}
        for r in rows:
            try:
                snap = json.loads(_col(r, 1, "snapshot"))
                if "applicable" not in snap:
                    continue  # a snapshot of another shape is no point on the chart
                key = str(snap.get("computed_at") or _col(r, 0, "at"))
                if key in seen:
                    continue
                seen[key] = DigestPoint(
                    _dt(key),
                    int(snap.get("done") or 0),
                    int(snap.get("applicable") or 0),
                    str(snap.get("gate") or ""),
                )
            except (ValueError, TypeError, AttributeError):
                continue  # a snapshot of another shape is no point on the chart
            if len(seen) >= limit:
                break
        return sorted(seen.values(), key=lambda p: p.at)
