"""Parsed checklists by content hash (migration m007): a cache the bot keeps in the store, so
every backend has it and every instance on one database shares it.

The store holds the data only (JSON text the caller wrote) under the caller's key; what the key
covers and how the data reads back is the caller's business (bot/parsed_cache.py). Only the
last few keys are kept: a new document, or a new parser, makes the old parses dead weight.
"""

from __future__ import annotations

from store.base import StoreBase, _ts

# More than one, so instances of two versions sharing a database (a rolling deploy) do not
# replace each other's parse at every start.
KEEP_PARSED = 3


class ParsedStore(StoreBase):
    """The parsed-checklist cache."""

    def parsed_checklist(self, key: str) -> str | None:
        """The data saved under `key`, None when there is none."""
        with self._read():
            row = self._one("SELECT data FROM parsed_checklists WHERE key = ?", (key,))
        return None if row is None else str(row["data"])

    def save_parsed_checklist(self, key: str, data: str) -> None:
        """Save `data` under `key` (replacing what was there), and drop all but the newest
        KEEP_PARSED keys, this one always among them."""
        with self._write():
            self._exec(
                "INSERT INTO parsed_checklists (key, data, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data, "
                "saved_at = excluded.saved_at",
                (key, data, _ts(self._clock())),
            )
            self._exec(
                "DELETE FROM parsed_checklists WHERE key <> ? AND key NOT IN ("
                "SELECT key FROM parsed_checklists WHERE key <> ? "
                "ORDER BY saved_at DESC, key LIMIT ?)",
                (key, key, KEEP_PARSED - 1),
            )
