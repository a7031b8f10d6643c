"""Copy a whole store from one backend to another (SQLite <-> PostgreSQL), row for row.

Ids are kept (events point at each other by id), rows go in table creation order (foreign keys
point backwards) and in key order (the trigger that keeps signoff_latest sees events in id order,
so it rebuilds the same table). Afterwards both stores are dumped and compared table by table:
the copy is reported only when every row of every table matches.
"""

from __future__ import annotations

import json
from typing import Any

from store.base import StoreBase
from store.errors import StoreError

BATCH = 1000


class CopyMismatch(StoreError):
    """The copy's rows differ from the source's."""


def tables(store: StoreBase) -> list[str]:
    """The store's tables in creation order, without the migration bookkeeping (`_...`)."""
    if store.backend == "postgresql":
        sql = (
            "SELECT c.relname AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.oid"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid"
    with store._read():
        names = [r["name"] for r in store._all(sql)]
    return [n for n in names if not n.startswith(("_", "sqlite_"))]


def _rows(store: StoreBase, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with store._read():
        rows = store._all(f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608 (catalog names)
    columns = list(rows[0].keys()) if rows else []
    return columns, [tuple(r) for r in rows]


def dump(store: StoreBase) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in an order independent of the backend."""

    def key(row: tuple[Any, ...]) -> str:
        return json.dumps(row, default=str)

    return {t: sorted(_rows(store, t)[1], key=key) for t in tables(store)}


def copy_store(source: StoreBase, target: StoreBase) -> dict[str, int]:
    """Copy every row of `source` into `target`, an empty store; rows copied per table.
    Raises StoreError when `target` holds data and CopyMismatch when the result differs."""
    names = tables(source)
    missing = [t for t in names if t not in set(tables(target))]
    if missing:
        raise StoreError(f"the target store has no table {missing[0]} (an older version?)")
    with target._read():
        for t in names:
            if target._one(f"SELECT 1 FROM {t} LIMIT 1"):  # noqa: S608
                raise StoreError(f"the target store is not empty (table {t} has rows)")
    copied: dict[str, int] = {}
    with target._write():
        for t in names:
            columns, rows = _rows(source, t)
            copied[t] = len(rows)
            if not rows:
                continue
            marks = ", ".join("?" for _ in columns)
            # DO NOTHING: a row a trigger already derived from an earlier table (signoff_latest)
            # is left as derived; the comparison below proves it equal.
            sql = (
                f"INSERT INTO {t} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
                "ON CONFLICT DO NOTHING"
            )
            for start in range(0, len(rows), BATCH):
                target._many(sql, rows[start : start + BATCH])
        if target.backend == "postgresql":
            _resync_identities(target)
    if dump(source) != dump(target):
        raise CopyMismatch("the copy differs from the source; the target is left for inspection")
    return copied


def _resync_identities(store: StoreBase) -> None:
    """Explicit ids were written into identity columns: move each sequence past them."""
    for r in store._all(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ):
        t, c = r["table_name"], r["column_name"]
        store._one(
            f"SELECT setval(pg_get_serial_sequence('{t}', '{c}'), MAX({c})) AS v FROM {t} "  # noqa: S608
            f"HAVING MAX({c}) IS NOT NULL"
        )
