"""The PostgreSQL backend: the same Store, for several Preflight instances on one database.

Every area module runs unchanged: this class replaces only the connection primitives of
StoreBase. The SQL the areas write is SQLite's; `to_pg` translates the few differences (`?` and
`:name` placeholders, the reserved word `user`), and `_PgMigrationDb` runs the same migration
functions, translating their DDL (INTEGER PRIMARY KEY -> identity, SQLite triggers -> PL/pgSQL).

Consistency across instances: a write transaction first takes one transaction-scoped advisory
lock, so writes are serialised across every instance exactly as SQLite's single writer
serialises them across processes; each check-then-insert (is the decision open? is the run
still running?) therefore sees every write committed before it. Request ids are deduplicated by
the primary key of processed_requests (INSERT ... ON CONFLICT DO NOTHING). Reads run in
REPEATABLE READ READ ONLY transactions on their own pooled connections and never wait for writers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from store import db as schema
from store.base import Cursor, Params, Row, _ts, _utcnow
from store.errors import StoreUnavailable
from store.sqlite import Store

# pg_advisory_xact_lock keys: any constant unlikely to be used by another application.
WRITE_LOCK = 0x5072_6546  # "PreF"
MIGRATE_LOCK = 0x5072_6547
MIGRATIONS_TABLE = "_preflight_migrations"


def is_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


# --- SQL translation ---------------------------------------------------------------------------


def _scan(sql: str, word: Callable[[str], str], mark: Callable[[str, str], str]) -> str:
    """Rewrite `sql` outside string literals and comments: identifiers through `word`,
    placeholders (`?`, `:name`) and `%` through `mark`. Our own SQL only: never outside input."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and not (j + 1 < n and sql[j + 1] == "'"):
                    break
                j += 2 if sql[j] == "'" else 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            out.append(mark(":", sql[i + 1 : j]))
            i = j
        elif c in "?%":
            out.append(mark(c, ""))
            i += 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            preceded_by_dot = i > 0 and sql[i - 1] == "."
            out.append(word(sql[i:j]) if not preceded_by_dot or sql[i:j] == "user" else sql[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _quote_user(identifier: str) -> str:
    # "user" is reserved in PostgreSQL (CURRENT_USER); several tables have a user column.
    return '"user"' if identifier.lower() == "user" else identifier


@lru_cache(maxsize=1024)
def to_pg(sql: str) -> str:
    """A statement of the store's (SQLite) SQL as psycopg wants it."""

    def mark(kind: str, name: str) -> str:
        return {"?": "%s", "%": "%%"}.get(kind, f"%({name})s")

    return _scan(sql, _quote_user, mark)


_TRIGGER = re.compile(
    r"CREATE TRIGGER (\w+) (BEFORE|AFTER) (INSERT|UPDATE|DELETE) ON (\w+)"
    r"\s+BEGIN\s+(.*?);?\s*END\s*$",
    re.S | re.I,
)
_RAISE = re.compile(r"SELECT RAISE\(ABORT, '([^']*)'\)", re.I)
_REPLACE = re.compile(r"INSERT OR REPLACE INTO (\w+) \(([^)]*)\)", re.I)
_INTEGER_PK = re.compile(r"\bINTEGER PRIMARY KEY\b", re.I)
_INTEGER = re.compile(r"\bINTEGER\b", re.I)


class _PgMigrationDb:
    """What a migration function sees on PostgreSQL: `execute(sql)`, DDL translated."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def _primary_key(self, table: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (table,),
        ).fetchall()
        return [r[0] for r in rows]

    def _trigger(self, match: re.Match[str]) -> list[str]:
        name, when, event, table, body = match.groups()
        if raised := _RAISE.fullmatch(body.strip()):
            body = f"RAISE EXCEPTION '{raised.group(1)}'"
        elif replace := _REPLACE.match(body.strip()):
            target, columns = replace.group(1), [c.strip() for c in replace.group(2).split(",")]
            key = self._primary_key(target)
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
            body = (
                _REPLACE.sub(lambda m: f"INSERT INTO {m.group(1)} ({m.group(2)})", body.strip())
                + f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
            )
        body = _scan(body, _quote_user, lambda kind, name: kind + name)
        result = "RETURN NULL" if when.upper() == "AFTER" else "RETURN COALESCE(NEW, OLD)"
        return [
            f"CREATE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $fn$ "
            f"BEGIN {body}; {result}; END $fn$",
            f"CREATE TRIGGER {name} {when} {event} ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION {name}_fn()",
        ]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if match := _TRIGGER.match(sql.strip()):
            for statement in self._trigger(match):
                self.conn.execute(statement.encode())
            return None
        ddl = _INTEGER_PK.sub("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql)
        ddl = _INTEGER.sub("BIGINT", ddl)
        ddl = _scan(ddl, _quote_user, lambda kind, name: kind + name)
        return self.conn.execute(ddl.encode(), params or None)


def migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply the migrations in store/db.py not yet applied, in one transaction under a lock, so
    instances starting together cannot both run one (the second waits, then finds none)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (migration_set TEXT NOT NULL, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))"
        )
        done = {
            r[0]
            for r in conn.execute(
                f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = %s",  # noqa: S608
                (schema.MIGRATIONS.name,),
            )
        }
        target = _PgMigrationDb(conn)
        for migration in schema.MIGRATIONS._migrations:
            if migration.name in done:
                continue
            migration.fn(target)  # type: ignore[arg-type]
            conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (migration_set, name, applied_at) "  # noqa: S608
                "VALUES (%s, %s, %s)",
                (schema.MIGRATIONS.name, migration.name, _ts(_utcnow())),
            )


# --- rows --------------------------------------------------------------------------------------


class PgRow(tuple[Any, ...]):
    """A row that reads by column name, like sqlite3.Row, and is still a tuple."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> PgRow:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: PgRow(values, index)


class _Materialised:
    """A finished statement's rows, for `db.execute` callers (tests, maintenance)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def fetchall(self) -> list[Any]:
        return self._rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None


class PgDatabase:
    """`store.db` on PostgreSQL: one autocommitted statement at a time, SQLite's SQL accepted."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def execute(self, sql: str, params: Params = ()) -> _Materialised:
        with self._pool.connection() as conn:
            cursor = conn.execute(to_pg(sql).encode(), params)
            rows = cursor.fetchall() if cursor.description else []
            return _Materialised(rows, cursor.rowcount)

    def table_names(self) -> list[str]:
        rows = self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._pool.close()


# --- the store ---------------------------------------------------------------------------------


class PostgresStore(Store):
    """The Store on PostgreSQL (psycopg 3, a psycopg_pool connection pool)."""

    backend = "postgresql"
    _FOR_UPDATE = " FOR UPDATE"

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        self._clock = clock
        self._lock = threading.RLock()  # only for the SQLite-shaped callers that take it
        self._local = threading.local()
        self._deferred = threading.local()  # a request claim deferred into the next write
        self._init_caches()
        try:
            self._pool: ConnectionPool[Any] = ConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                kwargs={"row_factory": _row_factory},
                open=False,
                name="preflight-store",
            )
            self._pool.open(wait=True, timeout=15)
            with self._pool.connection() as conn:
                migrate(conn)
        except (psycopg.Error, OSError) as exc:
            self._pool.close()
            raise StoreUnavailable(f"cannot open the PostgreSQL store: {exc}") from exc
        self._pg_db = PgDatabase(self._pool)

    @classmethod
    def open(cls, path: Any) -> Store:
        return cls(str(path))

    def close(self) -> None:
        self._pool.close()

    def integrity_problems(self) -> list[str]:
        """PostgreSQL keeps its own files sound (checksums, WAL): a query answered is enough."""
        try:
            self._pg_db.execute("SELECT 1")
        except psycopg.Error as exc:
            return [str(exc)]
        return []

    @property
    def db(self) -> PgDatabase:  # type: ignore[override]
        return self._pg_db

    # --- transactions -------------------------------------------------------------------------

    def _current(self) -> psycopg.Connection[Any] | None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        return conn

    @contextmanager
    def _transaction(self, first: str, params: Sequence[Any] = ()) -> Iterator[None]:
        if self._current() is not None:  # nested: part of the enclosing transaction
            yield
            return
        with self._pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    conn.execute(first.encode(), params)
                    yield
            finally:
                self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[None]:
        key = self._take_deferred_claim() if self._current() is None else None
        try:
            with self._transaction("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,)):
                self._apply_deferred_claim(key)
                yield
        except BaseException as exc:
            self._restore_deferred_claim(key, exc)
            raise

    def _write_one(self, sql: str, params: Params = ()) -> int:
        with self._write():
            return int(self._exec(sql, params).rowcount)

    @contextmanager
    def _read(self) -> Iterator[None]:
        with self._transaction("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"):
            yield

    def _conn(self) -> psycopg.Connection[Any]:
        conn = self._current()
        if conn is None:
            raise RuntimeError("a store statement outside _read()/_write()")
        return conn

    # --- statements ---------------------------------------------------------------------------

    def _exec(self, sql: str, params: Params = ()) -> Cursor:
        return self._conn().execute(to_pg(sql).encode(), params)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = list(rows)
        if batch:
            with self._conn().cursor() as cursor:
                cursor.executemany(to_pg(sql).encode(), batch)

    def _all(self, sql: str, params: Params = ()) -> list[Row]:
        # A statement without rows (INSERT, UPDATE) answers [] as sqlite3 does; psycopg raises.
        cursor = self._conn().execute(to_pg(sql).encode(), params)
        return cursor.fetchall() if cursor.description else []

    def _one(self, sql: str, params: Params = ()) -> Row | None:
        cursor = self._conn().execute(to_pg(sql).encode(), params)
        row: Row | None = cursor.fetchone() if cursor.description else None
        return row

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        row = self._conn().execute(to_pg(f"{sql} RETURNING id").encode(), params).fetchone()
        assert row is not None
        return int(row[0])

    def _unchanged_since(self) -> tuple[int, int]:
        """The signoffs() answer depends on sign-off events and checklist versions only, and
        both are append-only with growing keys: their maxima change whenever it may."""
        row = self._one(
            "SELECT COALESCE((SELECT MAX(id) FROM signoff_events), 0) AS e, "
            "COALESCE((SELECT MAX(version) FROM checklist_versions), 0) AS v"
        )
        return (int(row["e"]), int(row["v"])) if row else (0, 0)
