"""What every area of the store stands on: the connection, transactions, row access by column
name, and the one claim-or-replay helper that makes a write idempotent across Slack retries.

`StoreBase` is the SQLite connection: one connection (check_same_thread=False) guarded by one RLock
around every public method. Its traffic is a few human clicks a minute plus the scheduler, and
SQLite admits one writer at a time anyway: a lock in this process turns what would be "database is
locked" retries between our own threads into a short wait. Other processes (the CLI beside the bot)
are handled by WAL and busy_timeout. The PostgreSQL backend (store/postgres.py) overrides the
connection primitives here (`_write`, `_read`, `_exec`, `_many`, `_all`, `_one`, `_insert`) and
keeps everything else, so every area module runs unchanged on both.

Area modules use only those primitives plus `_claim` / `_claim_or_replay`, never the connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import sqlite_utils

from store import db as schema
from store.errors import DuplicateRequest, StoreError, UnknownItem
from store.records import ChangeMarks

log = logging.getLogger("preflight.store")
T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row: read by column name (`row["user"]`); both backends' rows are also tuples."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...


def _as_dict(row: Row) -> dict[str, Any]:
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 (a Row iterates its values)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(when: datetime) -> str:
    """A sortable text timestamp: UTC, fixed width, so string order is time order."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _json(value: Any) -> str:
    # default=str: evidence may hold datetimes or paths; they are kept as text, never lost.
    return json.dumps(value, default=str, ensure_ascii=False)


def _file_of(db: sqlite_utils.Database) -> str:
    rows = db.execute("PRAGMA database_list").fetchall()
    return next((str(file) for _, name, file in rows if name == "main" and file), ":memory:")


# A store checkpointing in the background (a server's) checkpoints after this many commits:
# about 2,400 pages of log for Preflight's small writes, where SQLite's own default is 1,000.
CHECKPOINT_EVERY_COMMITS = 1000
# Should that thread ever stop, the writer checkpoints once the log holds this many pages.
CHECKPOINT_BACKSTOP_PAGES = 10_000


class _Checkpointer:
    """A thread that checkpoints the store's WAL when told enough commits went by.

    Each round is three PASSIVE checkpoints. The first copies the bulk of the log without the
    store's lock while writers go on appending, the second (still without it) what they
    appended meanwhile. The third, under the lock, copies the last few pages (0.3-0.7 ms on a
    store with a long history; straight after the bulk it took up to 13 ms, syncing what the
    bulk had written), so the log is complete when the lock is released and the next write
    starts it over. Without that last pass a server that never pauses between commits would
    grow its log for as long as the load lasts."""

    def __init__(self, path: str, lock: threading.RLock, every: int) -> None:
        self._every = every
        self._lock = lock
        self._pending = 0  # commits since the last round; written under the store lock
        self._stopping = False
        self.checkpoints = 0  # rounds taken so far (tests, diagnostics)
        self._wake = threading.Event()
        self._conn = sqlite3.connect(
            path,
            timeout=schema.BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        self._thread = threading.Thread(
            target=self._run, name="preflight-store-checkpoint", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        self._pending += 1
        if self._pending >= self._every:
            self._pending = 0
            self._wake.set()

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    for _ in range(2):  # the second copies (and syncs) what the first let by
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    with self._lock:
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # the next round tries again; the log just grows
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._conn.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)


class StoreBase:
    """Connection, transactions and the shared helpers of every store area (SQLite here)."""

    backend = "sqlite"
    # Appended to a SELECT that a write then acts on: a row lock where the backend has them
    # (SQLite's write transaction already holds the whole database).
    _FOR_UPDATE = ""

    def __init__(
        self, db: sqlite_utils.Database, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._db = db
        self._lock = threading.RLock()
        self._write_depth = 0  # nested _write()s join the outer one (touched under the lock)
        self._deferred = threading.local()
        self._clock = clock
        self._checkpointer: _Checkpointer | None = None
        self._init_caches()
        if schema.is_file_backed(db):
            schema.require_sound(db, _file_of(db))
        schema.configure(db)
        schema.migrate(db)
        self._init_readers(db)

    def _init_caches(self) -> None:
        # signoffs() is read on every status, App Home view and digest, and is the one read whose
        # cost grows with history: keep its last answer while the database is unchanged.
        self._signoffs_cache: tuple[tuple[int, int], dict[str, list[Any]]] | None = None

    def close(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()  # outside the lock, which a round's second pass takes
        with self._lock:
            self._close_readers()
            self._db.close()

    def checkpoint_in_background(self, every: int = CHECKPOINT_EVERY_COMMITS) -> None:
        """Take WAL checkpoints off the committing thread (a long-running server's store).

        SQLite checkpoints in whichever commit takes the log past 1,000 pages, and that commit
        holds the store's lock while the pages are copied: 17-20 ms on a store with a long
        history, with every request's write queued behind it (`/preflight status` at c=10:
        p99 21 ms, 13-15 ms without). Here a thread of its own, on its own connection, takes
        checkpoints after every `every` commits (see _Checkpointer), and closing the store
        takes the last one; the writer's own is only a backstop. A file-backed SQLite store
        only; idempotent."""
        path = self.file()
        with self._lock:
            if path is None or self._checkpointer is not None:
                return
            self._checkpointer = _Checkpointer(path, self._lock, every)
            self._db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_BACKSTOP_PAGES}")

    def _committed(self) -> None:
        if self._checkpointer is not None:  # under the store's lock, like every commit
            self._checkpointer.committed()

    def integrity_problems(self) -> list[str]:
        """SQLite's quick_check of the store file: empty when sound."""
        with self._lock:
            return schema.integrity_problems(self._db, limit=20)

    @property
    def db(self) -> sqlite_utils.Database:
        """The underlying database, for tests and maintenance commands."""
        return self._db

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction under the lock.

        BEGIN IMMEDIATE rather than sqlite-utils' atomic() (a deferred BEGIN): our writes read
        before they write, and a deferred transaction that must upgrade from reader to writer
        after another process committed fails at once with SQLITE_BUSY, which busy_timeout
        cannot help. Taking the write lock up front makes that a wait instead.
        """
        with self._lock:
            if self._write_depth:  # inside transaction(): part of the enclosing write
                self._write_depth += 1
                try:
                    yield
                finally:
                    self._write_depth -= 1
                return
            conn = self._db.conn
            key = self._take_deferred_claim()
            conn.execute("BEGIN IMMEDIATE")
            self._write_depth = 1
            try:
                self._apply_deferred_claim(key)
                yield
                conn.execute("COMMIT")
                self._committed()
            except BaseException as exc:
                # Also after a failed COMMIT: a transaction left open would swallow later writes.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._restore_deferred_claim(key, exc)
                raise
            finally:
                self._write_depth = 0

    def _write_one(self, sql: str, params: Params = ()) -> int:
        """One statement as a transaction of its own; how many rows it changed. On SQLite the
        statement begins its transaction itself (its first step takes the write lock, so no
        deferred upgrade can fail) and commits in one more call: two trips out of Python
        instead of BEGIN, the statement and COMMIT. Each trip gives up the GIL and, under
        load, waits to get it back while holding the write lock (perf, issue 11)."""
        with self._lock:
            if self._write_depth:  # inside transaction(): part of it
                return self._exec(sql, params).rowcount
            conn = self._db.conn
            try:
                rowcount = conn.execute(sql, params).rowcount
                conn.commit()
                self._committed()
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            return rowcount

    # --- a request's dedupe claim, deferred into its first write ---------------------------
    # A slash command's listener runs in the request thread (bot/app.py), so the claim of its
    # Slack request id can ride in the first write transaction the command makes (a vote and
    # its audit entry): one write per vote instead of two. A command that writes nothing
    # settles the claim when it acks. Either way it is committed before Slack hears back.

    def defer_request_claim(self, key: str | None) -> None:
        """Claim `key` (as claim_request would) in this thread's next write, or at
        settle_request_claim(); None forgets a claim left pending."""
        self._deferred.key = key

    def settle_request_claim(self) -> bool:
        """Claim the pending key now if no write took it: False when it was claimed before."""
        key = self._take_deferred_claim()
        return key is None or self.claim_request(key)  # type: ignore[attr-defined]

    def _take_deferred_claim(self) -> str | None:
        key: str | None = getattr(self._deferred, "key", None)
        self._deferred.key = None
        return key

    def _apply_deferred_claim(self, key: str | None) -> None:
        if key is not None and not self._claim("request", key):
            raise DuplicateRequest(key)

    def _restore_deferred_claim(self, key: str | None, exc: BaseException) -> None:
        """A write that failed for another reason leaves the claim to the ack (a retry of a
        duplicate needs no second claim)."""
        if key is not None and not isinstance(exc, DuplicateRequest):
            self._deferred.key = key

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several store writes as one transaction: all of them or none, and one commit
        instead of one each (a vote and its audit entry; perf, issue 11)."""
        with self._write():
            yield

    @contextmanager
    def _read(self) -> Iterator[None]:
        """A read snapshot, so a method's several queries agree with each other even while
        another process writes: on this thread's own WAL reader connection (no lock, never
        waits for the writer), or under the lock for an in-memory store."""
        reader = self._reader()
        if reader is None:
            with self._lock:
                conn = self._db.conn
                conn.execute("BEGIN")
                try:
                    yield
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            return
        reader.execute("BEGIN")
        self._reader_local.active = reader
        try:
            yield
        finally:
            self._reader_local.active = None
            if reader.in_transaction:
                reader.execute("COMMIT")

    # --- reader connections -------------------------------------------------------------------
    # Reads go to per-thread reader connections on a file-backed store: in WAL mode a reader
    # never waits for the writer, so the server's threads do not queue behind one lock (and
    # behind every request's dedupe write) just to read. Writes keep the one connection and the
    # lock. An in-memory store has one connection only: reads stay under the lock.

    def _init_readers(self, db: sqlite_utils.Database) -> None:
        self._reader_path: str | None = _file_of(db) if schema.is_file_backed(db) else None
        self._reader_local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # not self._lock: a writer may hold that
        self._readers_closed = False

    def file(self) -> str | None:
        """The store's database file; None for a store in memory (or on PostgreSQL)."""
        path: str | None = getattr(self, "_reader_path", None)
        return path

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's reader connection (opened on first use), None without one."""
        if getattr(self, "_reader_path", None) is None:
            return None
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            assert self._reader_path is not None
            conn = sqlite3.connect(
                self._reader_path,
                timeout=schema.BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # transactions are ours: BEGIN in _read
                check_same_thread=False,  # close() may run on another thread
            )
            conn.execute("PRAGMA query_only = ON")
            with self._readers_lock:
                if self._readers_closed:
                    conn.close()
                    raise StoreError("the store is closed")
                self._readers.append(conn)
            self._reader_local.conn = conn
        return conn

    def _close_readers(self) -> None:
        if not hasattr(self, "_readers_lock"):
            return
        with self._readers_lock:
            self._readers_closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

    def _sqlite_conn(self) -> sqlite3.Connection:
        """The connection this thread's queries go to: its reader inside a read snapshot,
        else the writer (inside a write, or a read of an in-memory store)."""
        local = getattr(self, "_reader_local", None)
        active: sqlite3.Connection | None = getattr(local, "active", None) if local else None
        return active if active is not None else self._db.conn

    def change_marks(self) -> ChangeMarks:
        """Where each kind of state readiness derives from stands: the current checklist
        version and the newest event id of each append-only table. Equal marks mean equal
        state, whatever else was written since (a dedupe claim, an audit entry), so caches
        keyed by them survive unrelated writes. Cheap: each is a b-tree's last key."""
        reader = self._reader()
        if reader is None:
            with self._read():
                row = self._one(self._MARKS)
        else:  # one statement is one snapshot by itself: no BEGIN/COMMIT round trip
            row = reader.execute(self._MARKS).fetchone()
        assert row is not None
        return ChangeMarks(*(int(v or 0) for v in tuple(row)))

    _MARKS = (
        "SELECT (SELECT MAX(version) FROM checklist_versions) AS version, "
        "(SELECT MAX(id) FROM signoff_events) AS signoffs, "
        "(SELECT MAX(id) FROM check_results) AS results, "
        "(SELECT MAX(id) FROM vote_events) AS votes, "
        "(SELECT MAX(id) FROM decision_events) AS decisions, "
        "(SELECT MAX(id) FROM acceptance_events) AS acceptances, "
        "(SELECT MAX(id) FROM override_events) AS overrides"
    )

    # --- statements ---------------------------------------------------------------------------

    def _cursor(self) -> sqlite3.Cursor:
        cursor = self._sqlite_conn().cursor()
        cursor.row_factory = sqlite3.Row  # rows by column name; the connection's own stay tuples
        return cursor

    def _exec(self, sql: str, params: Params = ()) -> Cursor:
        """Run one statement (no rows wanted); the cursor tells `rowcount`."""
        return self._cursor().execute(sql, params)

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cursor().executemany(sql, rows)

    def _all(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = self._cursor().execute(sql, params).fetchall()
        return rows

    def _one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._cursor().execute(sql, params).fetchone()
        return row

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT into a table with an `id` column; the new row's id."""
        rowid = self._db.execute(sql, params).lastrowid
        assert rowid is not None
        return rowid

    def _unchanged_since(self) -> tuple[int, int]:
        """Changes when the standing sign-offs can: a new checklist version or a new sign-off
        event, by any process (both tables are append-only). Read from the data itself, so it
        compares across connections (reads use per-thread connections, whose data_version
        counters differ) and survives unrelated writes such as dedupe claims."""
        row = self._one(
            "SELECT (SELECT MAX(version) FROM checklist_versions) AS v, "
            "(SELECT MAX(id) FROM signoff_events) AS s"
        )
        return (int(row["v"] or 0), int(row["s"] or 0)) if row else (0, 0)

    # --- idempotent writes --------------------------------------------------------------------

    def _claim(self, scope: str, key: str | None) -> bool:
        """Claim a write's request key inside the write's transaction: False if it was claimed
        before, and then the write must not be applied again. The primary key (scope, key) makes
        this hold across processes and instances, not only threads."""
        if key is None:
            return True
        cursor = self._exec(
            "INSERT INTO processed_requests (scope, key, claimed_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (scope, key, _ts(self._clock())),
        )
        return cursor.rowcount == 1

    def _claim_or_replay(
        self,
        scope: str,
        request_key: str | None,
        write: Callable[[], T],
        replay: Callable[[], T | None],
        *,
        claim_key: str | None = None,
    ) -> T:
        """The one shape of every idempotent write: in one write transaction, claim the request
        key (`claim_key` when the key needs more than the request id to be unique) and `write`;
        if a retry of the same request claimed it first, `replay` reads back what that one wrote.
        A failed write rolls its claim back with it, so the key is not used up."""
        with self._write():
            if self._claim(scope, claim_key if claim_key is not None else request_key):
                return write()
            found = replay()
            if found is None:
                raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
            return found

    # --- lookups shared by several areas ------------------------------------------------------

    def _version(self) -> int | None:
        row = self._one("SELECT MAX(version) AS version FROM checklist_versions")
        return row["version"] if row else None

    def _current_item(self, item_id: str) -> int:
        """The current version, if it holds `item_id`."""
        version = self._version()
        if version is None or not self._one(
            "SELECT 1 FROM items WHERE version = ? AND id = ?", (version, item_id)
        ):
            raise UnknownItem(f"no item {item_id!r} in the current checklist")
        return version
