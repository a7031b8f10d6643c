"""The store: events in, derived state out, composed from one mixin per area over StoreBase.

Sign-offs, votes, decision closes/reopens, runbook steps, subscriptions and the audit log are
append-only events; "who has signed off item X" or "what did Alice vote" is a query over them.
Connections, transactions and the claim-or-replay helper are in store/base.py; the SQL of each
area in its own module. `Store.open` picks the backend: a path (SQLite, the default) or a
postgresql:// URL (store/postgres.py, for several instances on one database).
"""

from __future__ import annotations

from pathlib import Path

from store import db as schema
from store.audit import AuditStore
from store.base import StoreBase
from store.checklist import ChecklistStore, content_sha256
from store.decision_polls import DecisionPollsStore
from store.decisions import DecisionStore
from store.digests import DigestStore
from store.gate import GateStore
from store.parsed import ParsedStore
from store.requests import RequestStore
from store.results import ResultStore
from store.runbooks import RunbookStore
from store.signoffs import SignoffStore

__all__ = ["Store", "content_sha256"]


class Store(
    ChecklistStore,
    SignoffStore,
    GateStore,
    DecisionStore,
    DecisionPollsStore,
    ResultStore,
    RunbookStore,
    DigestStore,
    AuditStore,
    RequestStore,
    ParsedStore,
    StoreBase,
):
    """Preflight's persistence. Every public method is atomic, and thread-safe when the
    connection allows use from several threads: open it with `Store.open` or `open_database`
    (a plain `sqlite_utils.Database(...)` connection is bound to the thread that made it)."""

    @classmethod
    def open(cls, path: str | Path | None) -> Store:
        """A store on the database file at `path` (None or ":memory:": in memory), or on the
        PostgreSQL database at a postgresql:// URL."""
        if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
            from store.postgres import PostgresStore  # psycopg_pool only when asked for

            return PostgresStore(path)
        return cls(schema.open_database(path))

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
