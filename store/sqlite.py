"""The SQLite store: events in, derived state out.

Sign-offs, votes, decision closes/reopens, runbook steps, subscriptions and the audit log are
append-only events; "who has signed off item X" or "what did Alice vote" is a query over them.

Threads: one connection (opened with check_same_thread=False) guarded by one RLock around every
public method. The Store is handed a single `Database` (tests pass an in-memory one, which cannot
be shared between connections), its traffic is a few human clicks a minute plus the scheduler, and
SQLite admits one writer at a time anyway: a lock in this process turns what would be
"database is locked" retries between our own threads into a short wait. Other processes (the CLI
beside the bot) are handled by WAL and busy_timeout.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.model import Checklist, Item
from checks.base import Result
from store import db as schema
from store.errors import (
    DecisionClosed,
    DecisionNotClosed,
    DuplicateItem,
    RunEnded,
    StoreError,
    UnknownAction,
    UnknownDecision,
    UnknownItem,
    UnknownOption,
    UnknownRun,
)
from store.records import (
    DECISION_ACCEPTED,
    DECISION_OPEN,
    STEP_ACTIONS,
    Acceptance,
    Assignment,
    AuditEntry,
    ChangeMarks,
    ChecklistVersion,
    DecisionState,
    ImportReport,
    Override,
    RunbookRun,
    Signoff,
    StepEvent,
    Subscription,
    Vote,
)

Row = tuple[Any, ...]


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


def content_sha256(checklist: Checklist) -> str:
    """Fingerprint of what the store keeps of a checklist (items and decisions, check bindings
    included), so that a bindings change with an unchanged document still makes a new version."""
    content = {
        "title": checklist.title,
        "items": [asdict(i) for i in checklist.items],
        "decisions": [asdict(d) for d in checklist.decisions],
    }
    canonical = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _item_row(version: int, position: int, item: Item, since_version: int) -> tuple[Any, ...]:
    return (
        *(version, item.id, position, item.section, _json([*item.path]), item.text),
        *(str(item.kind), item.line, int(item.checked), int(item.claimed), item.parent_id),
        *(item.decision_id, item.condition, _json([*item.details]), _json([*item.checks])),
        since_version,
    )


def _check_unique(checklist: Checklist) -> None:
    def dupes(ids: Iterable[str]) -> list[str]:
        return sorted(i for i, n in Counter(ids).items() if n > 1)

    if found := dupes(i.id for i in checklist.items):
        raise DuplicateItem(f"duplicate item ids: {', '.join(found)}")
    if found := dupes(d.id for d in checklist.decisions):
        raise DuplicateItem(f"duplicate decision ids: {', '.join(found)}")
    for d in checklist.decisions:
        if found := dupes(o.id for o in d.options):
            raise DuplicateItem(f"decision {d.id}: duplicate option ids: {', '.join(found)}")


def _file_of(db: sqlite_utils.Database) -> str:
    rows = db.execute("PRAGMA database_list").fetchall()
    return next((str(file) for _, name, file in rows if name == "main" and file), ":memory:")


class Store:
    """Preflight's persistence. Every public method is atomic, and thread-safe when the
    connection allows use from several threads: open it with `Store.open` or `open_database`
    (a plain `sqlite_utils.Database(...)` connection is bound to the thread that made it)."""

    def __init__(
        self, db: sqlite_utils.Database, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._db = db
        self._lock = threading.RLock()
        self._clock = clock
        # signoffs() is read on every status, App Home view and digest, and is the one read whose
        # cost grows with history: keep its last answer while the database is unchanged.
        self._signoffs_cache: tuple[tuple[int, int], dict[str, list[Signoff]]] | None = None
        if schema.is_file_backed(db):
            schema.require_sound(db, _file_of(db))
        schema.configure(db)
        schema.migrate(db)
        self._init_readers(db)  # perf (issue 11)

    @classmethod
    def open(cls, path: str | Path | None) -> Store:
        """A store on the database file at `path` (None or ":memory:": in memory)."""
        return cls(schema.open_database(path))

    def close(self) -> None:
        with self._lock:
            self._close_readers()  # perf (issue 11)
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            conn = self._db.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT: a transaction left open would swallow later writes.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[None]:
        """A read snapshot, so a method's several queries agree with each other even while
        another process writes: on this thread's own WAL reader connection (no lock, never
        waits for the writer), or under the lock for an in-memory store."""
        with self._read_snapshot():  # perf (issue 11)
            yield

    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        return self._conn().execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        row: Row | None = self._conn().execute(sql, params).fetchone()
        return row

    def _insert(self, sql: str, params: Sequence[Any]) -> int:
        rowid = self._db.execute(sql, params).lastrowid
        assert rowid is not None
        return rowid

    def _claim(self, scope: str, key: str | None) -> bool:
        """Claim a write's request key inside the write's transaction: False if it was claimed
        before, and then the write must not be applied again."""
        if key is None:
            return True
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO processed_requests (scope, key, claimed_at) VALUES (?, ?, ?)",
            (scope, key, _ts(self._clock())),
        )
        return cursor.rowcount == 1

    # --- checklist versions -------------------------------------------------------------------

    def _version(self) -> int | None:
        row = self._one("SELECT MAX(version) FROM checklist_versions")
        return row[0] if row else None

    def import_checklist(
        self,
        checklist: Checklist,
        *,
        source: str = "cli",
        origin: str = "",
        imported_by: str = "",
        bindings: dict[str, list[str]] | None = None,
        notes: list[dict[str, object]] | None = None,
    ) -> ImportReport:
        """Store `checklist` as a new version unless it matches the current one.

        The version keeps the document's text (`checklist.source_text`, already masked), its
        origin, who imported it and the bindings applied, so that any process can rebuild it.
        An item's sign-offs carry over to the new version while its text is unchanged (a move to
        another section or a new check binding keeps them); once its text changes, only
        sign-offs made from then on count. A removed item is archived (its rows stay in the
        older versions): re-added with the same text, it comes back with its sign-offs.
        """
        _check_unique(checklist)
        content = content_sha256(checklist)
        sha = checklist.source_sha256 or content
        items = checklist.items
        with self._write():
            current = self._one(
                "SELECT version, sha256, content_sha256 FROM checklist_versions "
                "ORDER BY version DESC LIMIT 1"
            )
            same = bool(current and current[1] == sha and current[2] == content)
            if current and same and (self._has_text() or not checklist.source_text):
                return ImportReport(
                    version=current[0],
                    added=[],
                    changed=[],
                    removed=[],
                    unchanged=len(items),
                    decisions=len(checklist.decisions),
                    first_import=False,
                    new_version=False,
                )
            previous: dict[str, Row] = {}
            if current:
                rows = self._all(
                    "SELECT id, text, kind, path, since_version FROM items "
                    "WHERE version = ? ORDER BY position",
                    (current[0],),
                )
                previous = {r[0]: r for r in rows}
            version = current[0] + 1 if current else 1
            self._db.execute(
                "INSERT INTO checklist_versions "
                "(version, sha256, content_sha256, title, imported_at, source, source_text, "
                "origin, imported_by, bindings, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *(version, sha, content, checklist.title, _ts(self._clock()), source),
                    *(checklist.source_text or None, origin, imported_by),
                    *(_json(bindings or {}), _json(notes or [])),
                ),
            )
            added: list[str] = []
            changed: list[str] = []
            item_rows = []
            for position, item in enumerate(items):
                since = version
                old = previous.get(item.id)
                if old is None:
                    added.append(item.id)
                    archived = self._one(
                        "SELECT text, since_version FROM items WHERE id = ? "
                        "ORDER BY version DESC LIMIT 1",
                        (item.id,),
                    )
                    if archived and archived[0] == item.text:
                        since = archived[1]
                else:
                    if old[1] == item.text:
                        since = old[4]
                    if (old[1], old[2], json.loads(old[3])) != (item.text, item.kind, [*item.path]):
                        changed.append(item.id)
                item_rows.append(_item_row(version, position, item, since))
            self._db.conn.executemany(
                "INSERT INTO items (version, id, position, section, path, text, kind, line, "
                "checked, claimed, parent_id, decision_id, condition, details, checks, "
                "since_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                item_rows,
            )
            self._db.conn.executemany(
                "INSERT INTO decisions (version, id, position, topic, question, item_id, aliases) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (version, d.id, n, d.topic, d.question, d.item_id, _json(list(d.aliases)))
                    for n, d in enumerate(checklist.decisions)
                ],
            )
            self._db.conn.executemany(
                "INSERT INTO decision_options (version, decision_id, id, position, label, aliases) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (version, d.id, o.id, n, o.label, _json(list(o.aliases)))
                    for d in checklist.decisions
                    for n, o in enumerate(d.options)
                ],
            )
            now_ids = {i.id for i in items}
            return ImportReport(
                version=version,
                added=added,
                changed=changed,
                removed=[i for i in previous if i not in now_ids],
                unchanged=len(items) - len(added) - len(changed),
                decisions=len(checklist.decisions),
                first_import=current is None,
            )

    def _has_text(self) -> bool:
        row = self._one(
            "SELECT source_text IS NOT NULL FROM checklist_versions ORDER BY version DESC LIMIT 1"
        )
        return bool(row and row[0])

    _VERSION_COLUMNS = (
        "v.version, v.sha256, v.title, v.origin, v.imported_at, v.imported_by, v.source, "
        "(SELECT COUNT(*) FROM items i WHERE i.version = v.version), v.bindings, v.notes"
    )

    def _version_record(self, row: Row, text: str | None) -> ChecklistVersion:
        return ChecklistVersion(
            *(row[0], row[1], row[2], row[3], _at(row[4]), row[5], row[6], row[7]),
            source_text=text,
            bindings=json.loads(row[8]),
            notes=json.loads(row[9]),
        )

    def current_checklist(self) -> ChecklistVersion | None:
        """The current version with its document text (None for a fresh store)."""
        with self._read():
            row = self._one(
                f"SELECT {self._VERSION_COLUMNS}, v.source_text FROM checklist_versions v "  # noqa: S608
                "ORDER BY v.version DESC LIMIT 1"
            )
        return None if row is None else self._version_record(row, row[10])

    def checklist_history(self) -> list[ChecklistVersion]:
        """Every stored version, newest first, without the document texts."""
        with self._read():
            rows = self._all(
                f"SELECT {self._VERSION_COLUMNS} FROM checklist_versions v "  # noqa: S608
                "ORDER BY v.version DESC"
            )
        return [self._version_record(r, None) for r in rows]

    def current_version(self) -> int | None:
        with self._read():
            return self._version()

    def current_item_ids(self) -> set[str]:
        with self._read():
            rows = self._all(
                "SELECT id FROM items WHERE version = (SELECT MAX(version) FROM checklist_versions)"
            )
        return {r[0] for r in rows}

    # --- sign-offs ----------------------------------------------------------------------------

    @staticmethod
    def _signoff(row: Row) -> Signoff:
        return Signoff(row[0], row[1], _at(row[2]), row[3], row[4], row[5])

    def _current_item(self, item_id: str) -> int:
        """The current version, if it holds `item_id`."""
        version = self._version()
        if version is None or not self._one(
            "SELECT 1 FROM items WHERE version = ? AND id = ?", (version, item_id)
        ):
            raise UnknownItem(f"no item {item_id!r} in the current checklist")
        return version

    def _standing(self, version: int, item_id: str, user: str) -> bool:
        row = self._one(
            "SELECT e.action = 'signoff' AND e.version >= i.since_version "
            "FROM signoff_latest l JOIN signoff_events e ON e.id = l.event_id "
            "JOIN items i ON i.version = ? AND i.id = e.item_id "
            "WHERE l.item_id = ? AND l.user = ?",
            (version, item_id, user),
        )
        return bool(row and row[0])

    def add_signoff(
        self,
        item_id: str,
        user: str,
        *,
        note: str = "",
        source: str = "cli",
        na_reason: str | None = None,
        request_key: str | None = None,
    ) -> Signoff:
        """Sign off `item_id` as `user` (as not applicable when `na_reason` is given)."""
        with self._write():
            if not self._claim("signoff", request_key):
                row = self._one(
                    "SELECT item_id, user, at, note, na_reason, source FROM signoff_events "
                    "WHERE request_key = ? AND action = 'signoff' ORDER BY id LIMIT 1",
                    (request_key,),
                )
                if row is None:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return self._signoff(row)
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._db.execute(
                "INSERT INTO signoff_events (version, item_id, user, action, at, note, na_reason, "
                "source, request_key) VALUES (?, ?, ?, 'signoff', ?, ?, ?, ?, ?)",
                (version, item_id, user, at, note, na_reason, source, request_key),
            )
        return Signoff(item_id, user, _at(at), note, na_reason, source)

    def remove_signoff(
        self, item_id: str, user: str, *, source: str = "cli", request_key: str | None = None
    ) -> bool:
        """Withdraw `user`'s standing sign-off; False (and nothing written) if there was none."""
        with self._write():
            if not self._claim("unsign", request_key):
                return bool(
                    self._one(
                        "SELECT 1 FROM signoff_events WHERE request_key = ? AND action = 'unsign'",
                        (request_key,),
                    )
                )
            version = self._version()
            if version is None or not self._standing(version, item_id, user):
                return False
            self._db.execute(
                "INSERT INTO signoff_events (version, item_id, user, action, at, source, "
                "request_key) VALUES (?, ?, ?, 'unsign', ?, ?, ?)",
                (version, item_id, user, _ts(self._clock()), source, request_key),
            )
            return True

    def _unchanged_since(self) -> tuple[int, int]:
        """Changes when the standing sign-offs can: a new checklist version or a new sign-off
        event, by any process (both tables are append-only). Read from the data itself, so it
        compares across connections (perf, issue 11: reads use per-thread connections, whose
        data_version counters do not) and survives unrelated writes such as dedupe claims."""
        row = self._one(
            "SELECT (SELECT MAX(version) FROM checklist_versions), "
            "(SELECT MAX(id) FROM signoff_events)"
        )
        return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)

    def signoffs(self) -> dict[str, list[Signoff]]:
        """Standing sign-offs per current item id, oldest first."""
        with self._read():
            key = self._unchanged_since()
            if self._signoffs_cache and self._signoffs_cache[0] == key:
                return {k: list(v) for k, v in self._signoffs_cache[1].items()}
            rows = self._all(
                "SELECT e.item_id, e.user, e.at, e.note, e.na_reason, e.source "
                "FROM signoff_latest l JOIN signoff_events e ON e.id = l.event_id "
                "JOIN items i ON i.version = (SELECT MAX(version) FROM checklist_versions) "
                "AND i.id = e.item_id "
                "WHERE e.action = 'signoff' AND e.version >= i.since_version ORDER BY e.id"
            )
            result: dict[str, list[Signoff]] = {}
            parse = datetime.fromisoformat  # inlined: this loop is most of a cold call's time
            for item_id, user, at, note, na_reason, source in rows:
                result.setdefault(item_id, []).append(
                    Signoff(item_id, user, parse(at), note, na_reason, source)
                )
            self._signoffs_cache = (key, result)
            return {k: list(v) for k, v in result.items()}

    def signoff_history(self, item_id: str) -> list[dict[str, Any]]:
        """Every sign-off event for `item_id`, in any version, oldest first."""
        with self._read():
            rows = self._all(
                "SELECT id, version, item_id, user, action, at, note, na_reason, source "
                "FROM signoff_events WHERE item_id = ? ORDER BY id",
                (item_id,),
            )
        keys = ("id", "version", "item_id", "user", "action", "at", "note", "na_reason", "source")
        return [dict(zip(keys, (*r[:5], _at(r[5]), *r[6:]), strict=True)) for r in rows]

    def signoff_count(self) -> int:
        """Number of sign-off events (sign-offs and withdrawals) ever written."""
        with self._read():
            row = self._one("SELECT COUNT(*) FROM signoff_events")
        return int(row[0]) if row else 0

    # --- accepted warnings and overrides ------------------------------------------------------

    @staticmethod
    def _acceptance(row: Row) -> Acceptance:
        return Acceptance(
            item_id=row[0], check_id=row[1], status=row[2], fingerprint=row[3], user=row[4],
            reason=row[5], at=_at(row[6]), source=row[7],
        )  # fmt: skip

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
        with self._write():
            if not self._claim(
                "accept", f"{request_key}:{item_id}:{check_id}" if request_key else None
            ):
                row = self._one(
                    "SELECT item_id, check_id, status, fingerprint, user, reason, at, source "
                    "FROM acceptance_events WHERE request_key = ? AND item_id = ? "
                    "AND check_id = ? ORDER BY id LIMIT 1",
                    (request_key, item_id, check_id),
                )
                if row is None:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return self._acceptance(row)
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._db.execute(
                "INSERT INTO acceptance_events (version, item_id, check_id, status, fingerprint, "
                "summary, user, reason, at, source, request_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (version, item_id, check_id, status, fingerprint, summary, user, reason, at,
                 source, request_key),
            )  # fmt: skip
        return Acceptance(item_id, check_id, status, fingerprint, user, reason, _at(at), source)

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
        return [self._acceptance(r) for r in rows]

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
        with self._write():
            if not self._claim("override", request_key):
                row = self._one(
                    "SELECT item_id, user, reason, at, source FROM override_events "
                    "WHERE request_key = ? ORDER BY id LIMIT 1",
                    (request_key,),
                )
                if row is None:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return Override(row[0], row[1], row[2], _at(row[3]), row[4])
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._db.execute(
                "INSERT INTO signoff_events (version, item_id, user, action, at, note, source) "
                "VALUES (?, ?, ?, 'signoff', ?, ?, ?)",
                (version, item_id, user, at, f"override: {reason}", source),
            )
            self._db.execute(
                "INSERT INTO override_events (version, item_id, user, reason, at, source, "
                "request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (version, item_id, user, reason, at, source, request_key),
            )
        return Override(item_id, user, reason, _at(at), source)

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
        for item_id, user, reason, at, source in rows:
            result.setdefault(item_id, []).append(Override(item_id, user, reason, _at(at), source))
        return result

    # --- assignments --------------------------------------------------------------------------

    def assign(
        self, item_id: str, assignee: str | None, by: str, *, source: str = "cli"
    ) -> Assignment | None:
        """Ask `assignee` to see `item_id` through, replacing any earlier assignment;
        None clears it (and returns None)."""
        with self._write():
            version = self._current_item(item_id)
            at = _ts(self._clock())
            self._db.execute(
                "INSERT INTO assignment_events (version, item_id, assignee, assigned_by, at, "
                "source) VALUES (?, ?, ?, ?, ?, ?)",
                (version, item_id, assignee, by, at, source),
            )
        return None if assignee is None else Assignment(item_id, assignee, by, _at(at), source)

    def assignments(self) -> dict[str, str]:
        """item id -> assignee, for current items with an assignment in force."""
        with self._read():
            rows = self._all(
                "WITH latest AS (SELECT MAX(id) AS id FROM assignment_events GROUP BY item_id) "
                "SELECT a.item_id, a.assignee FROM latest JOIN assignment_events a "
                "ON a.id = latest.id JOIN items i ON i.id = a.item_id "
                "AND i.version = (SELECT MAX(version) FROM checklist_versions) "
                "WHERE a.assignee IS NOT NULL ORDER BY a.id"
            )
        return {item_id: assignee for item_id, assignee in rows}

    # --- decisions ----------------------------------------------------------------------------

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
        return self._all(
            "WITH latest AS (SELECT MAX(id) AS id FROM vote_events "
            "WHERE decision_id = :d AND (:until IS NULL OR at <= :until) GROUP BY user) "
            "SELECT v.user, v.option_id FROM latest JOIN vote_events v ON v.id = latest.id "
            "JOIN decision_options o ON o.version = :version AND o.decision_id = v.decision_id "
            "AND o.id = v.option_id ORDER BY v.id",
            {"d": decision_id, "until": until, "version": version},
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
            action, option_id, user = event[0], event[1], event[2]
            if user not in deciders:
                deciders.append(user)
            if action == "close":
                earlier = [o for o in accepted if o != option_id]
                supersedes = earlier[-1] if earlier else None
                accepted.append(option_id)
                standing = event
            else:
                standing, supersedes = None, None
        until = events[-1][3] if upto is not None and events else None
        voters = [user for user, _ in self._current_votes(version, decision_id, until)]
        if standing is None:
            return DecisionState(decision_id, DECISION_OPEN, deciders=deciders, voters=voters)
        return DecisionState(
            decision_id=decision_id,
            status=DECISION_ACCEPTED,
            chosen=standing[1],
            closed_by=standing[2],
            closed_at=_at(standing[3]),
            rationale=standing[4],
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
        with self._write():
            if not self._claim("vote", request_key):
                row = self._one(
                    "SELECT decision_id, option_id, user, at, source FROM vote_events "
                    "WHERE request_key = ? ORDER BY id LIMIT 1",
                    (request_key,),
                )
                if row is None:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return Vote(row[0], row[1], row[2], _at(row[3]), row[4])
            version = self._current_decision(decision_id)
            self._check_option(version, decision_id, option_id)
            if not self._state(version, decision_id).is_open:
                raise DecisionClosed(f"decision {decision_id!r} is closed")
            at = _ts(self._clock())
            self._db.execute(
                "INSERT INTO vote_events (version, decision_id, option_id, user, at, source, "
                "request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (version, decision_id, option_id, user, at, source, request_key),
            )
        return Vote(decision_id, option_id, user, _at(at), source)

    def votes(self, decision_id: str) -> dict[str, str]:
        """user -> option id of their current vote, earliest vote first."""
        with self._read():
            version = self._current_decision(decision_id)
            return {user: option for user, option in self._current_votes(version, decision_id)}

    def vote_history(self, decision_id: str) -> list[Vote]:
        """Every vote ever cast on the decision, oldest first."""
        with self._read():
            rows = self._all(
                "SELECT decision_id, option_id, user, at, source FROM vote_events "
                "WHERE decision_id = ? ORDER BY id",
                (decision_id,),
            )
        return [Vote(r[0], r[1], r[2], _at(r[3]), r[4]) for r in rows]

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
        with self._write():
            if not self._claim(scope, request_key):
                row = self._one(
                    "SELECT id, version FROM decision_events WHERE request_key = ? AND action = ?",
                    (request_key, "close" if scope == "close" else "reopen"),
                )
                if row is None:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return self._state(row[1], decision_id, upto=row[0])
            version = self._current_decision(decision_id)
            state = self._state(version, decision_id)
            if option_id is not None:
                self._check_option(version, decision_id, option_id)
                if not state.is_open:
                    raise DecisionClosed(f"decision {decision_id!r} is already closed")
            elif state.is_open:
                raise DecisionNotClosed(f"decision {decision_id!r} is not closed")
            self._db.execute(
                "INSERT INTO decision_events (version, decision_id, action, option_id, user, at, "
                "rationale, source, request_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version,
                    decision_id,
                    scope,
                    option_id,
                    user,
                    _ts(self._clock()),
                    text,
                    source,
                    request_key,
                ),
            )
            return self._state(version, decision_id)

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
            return {d: self._state(version, d) for (d,) in ids}

    def decision_history(self, decision_id: str) -> list[dict[str, Any]]:
        """Every close and reopen of the decision, oldest first (for decision records)."""
        with self._read():
            rows = self._all(
                "SELECT id, version, decision_id, action, option_id, user, at, rationale, source "
                "FROM decision_events WHERE decision_id = ? ORDER BY id",
                (decision_id,),
            )
        keys = (
            *("id", "version", "decision_id", "action", "option_id", "user", "at"),
            *("rationale", "source"),
        )
        return [dict(zip(keys, (*r[:6], _at(r[6]), *r[7:]), strict=True)) for r in rows]

    # --- check results ------------------------------------------------------------------------

    def save_result(self, result: Result) -> None:
        self.save_results([result])

    def save_results(self, results: Iterable[Result]) -> None:
        """Append results to the history in one transaction and keep the newest per check."""
        batch = list(results)
        if any(not r.check_id for r in batch):
            raise ValueError("a result without a check_id cannot be stored")
        saved_at = _ts(self._clock())
        rows = [
            (
                r.check_id,
                r.status.value,
                _ts(r.observed_at) if r.observed_at else "",
                saved_at,
                _json(r.to_dict()),
            )
            for r in batch
        ]
        newest: dict[str, tuple[str, str]] = {}
        for check_id, _, observed_at, _, data in rows:
            if check_id not in newest or observed_at >= newest[check_id][0]:
                newest[check_id] = (observed_at, data)
        with self._write():
            self._db.conn.executemany(
                "INSERT INTO check_results (check_id, status, observed_at, saved_at, result) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            # A slow run that finishes after a quicker, later one must not replace its result.
            self._db.conn.executemany(
                "INSERT INTO latest_results (check_id, observed_at, result) VALUES (?, ?, ?) "
                "ON CONFLICT (check_id) DO UPDATE SET observed_at = excluded.observed_at, "
                "result = excluded.result WHERE excluded.observed_at >= observed_at",
                [(c, o, d) for c, (o, d) in newest.items()],
            )

    def latest_results(self) -> dict[str, Result]:
        """The newest (by observed_at) result of every check ever stored, by check id."""
        with self._read():
            rows = self._all("SELECT check_id, result FROM latest_results ORDER BY check_id")
        return {r[0]: Result.from_dict(json.loads(r[1])) for r in rows}

    def result_history(self, check_id: str, limit: int = 20) -> list[Result]:
        """A check's results, newest first."""
        with self._read():
            rows = self._all(
                "SELECT result FROM check_results WHERE check_id = ? "
                "ORDER BY observed_at DESC, id DESC LIMIT ?",
                (check_id, limit),
            )
        return [Result.from_dict(json.loads(r[0])) for r in rows]

    # --- runbook runs -------------------------------------------------------------------------

    _RUN_COLUMNS = (
        "id, runbook_id, started_by, started_at, channel, thread_ts, ended_at, ended_by, source"
    )

    def _runs(self, where: str, params: Sequence[Any]) -> list[RunbookRun]:
        """Runs matching `where`, a literal condition from this class (values go in params)."""
        sql = f"SELECT {self._RUN_COLUMNS} FROM runbook_runs WHERE {where}"  # noqa: S608
        rows = self._all(sql, params)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        events: dict[int, list[StepEvent]] = {i: [] for i in ids}
        for e in self._all(
            "SELECT id, run_id, step, action, user, at, note FROM runbook_step_events "
            "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(ids),),
        ):
            events[e[1]].append(self._step(e))
        return [
            RunbookRun(
                id=r[0],
                runbook_id=r[1],
                started_by=r[2],
                started_at=_at(r[3]),
                channel=r[4],
                thread_ts=r[5],
                ended_at=_dt(r[6]),
                ended_by=r[7],
                events=events[r[0]],
                source=r[8],
            )
            for r in rows
        ]

    @staticmethod
    def _step(row: Row) -> StepEvent:
        return StepEvent(
            id=row[0], run_id=row[1], step=row[2], action=row[3], user=row[4], at=_at(row[5]),
            note=row[6],
        )  # fmt: skip

    def _get_run(self, run_id: int) -> RunbookRun:
        runs = self._runs("id = ?", (run_id,))
        if not runs:
            raise UnknownRun(f"no runbook run {run_id}")
        return runs[0]

    def start_run(
        self,
        runbook_id: str,
        user: str,
        *,
        channel: str | None = None,
        thread_ts: str | None = None,
        source: str = "cli",
        request_key: str | None = None,
    ) -> RunbookRun:
        """Begin a run of `runbook_id`. Which runbooks exist is the caller's business."""
        with self._write():
            if not self._claim("start_run", request_key):
                runs = self._runs("request_key = ? ORDER BY id LIMIT 1", (request_key,))
                if not runs:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return runs[0]
            run_id = self._insert(
                "INSERT INTO runbook_runs (runbook_id, started_by, started_at, channel, "
                "thread_ts, source, request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (runbook_id, user, _ts(self._clock()), channel, thread_ts, source, request_key),
            )
            return self._get_run(run_id)

    def step_event(
        self,
        run_id: int,
        step: int,
        action: str,
        user: str,
        note: str = "",
        *,
        request_key: str | None = None,
    ) -> StepEvent:
        """Record that `user` did `action` (done, skip, note, undo) on `step` of a running run."""
        if action not in STEP_ACTIONS:
            raise UnknownAction(f"unknown step action {action!r}: use {', '.join(STEP_ACTIONS)}")
        if step < 0:
            raise ValueError(f"step must not be negative, got {step}")
        with self._write():
            if not self._claim("step", request_key):
                row = self._one(
                    "SELECT id, run_id, step, action, user, at, note FROM runbook_step_events "
                    "WHERE request_key = ? ORDER BY id LIMIT 1",
                    (request_key,),
                )
                if row is None:
                    raise StoreError(f"request {request_key!r} was claimed but wrote nothing")
                return self._step(row)
            run = self._one("SELECT ended_at FROM runbook_runs WHERE id = ?", (run_id,))
            if run is None:
                raise UnknownRun(f"no runbook run {run_id}")
            if run[0] is not None:
                raise RunEnded(f"runbook run {run_id} has ended")
            at = _ts(self._clock())
            event_id = self._insert(
                "INSERT INTO runbook_step_events (run_id, step, action, user, note, at, "
                "request_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, step, action, user, note, at, request_key),
            )
        return StepEvent(event_id, run_id, step, action, user, _at(at), note)

    def run(self, run_id: int) -> RunbookRun:
        with self._read():
            return self._get_run(run_id)

    def active_runs(self, channel: str | None = None) -> list[RunbookRun]:
        """Runs not yet ended (in `channel`, if given), oldest first."""
        with self._read():
            if channel is None:
                return self._runs("ended_at IS NULL ORDER BY id", ())
            return self._runs("ended_at IS NULL AND channel = ? ORDER BY id", (channel,))

    def end_run(self, run_id: int, user: str, *, request_key: str | None = None) -> RunbookRun:
        with self._write():
            if not self._claim("end_run", request_key):
                return self._get_run(run_id)
            run = self._get_run(run_id)
            if not run.active:
                raise RunEnded(f"runbook run {run_id} has already ended")
            self._db.execute(
                "UPDATE runbook_runs SET ended_at = ?, ended_by = ? WHERE id = ?",
                (_ts(self._clock()), user, run_id),
            )
            return self._get_run(run_id)

    def set_run_message(self, run_id: int, channel: str, ts: str) -> None:
        """Remember the Slack message the run lives under (its thread)."""
        with self._write():
            cursor = self._db.execute(
                "UPDATE runbook_runs SET channel = ?, thread_ts = ? WHERE id = ?",
                (channel, ts, run_id),
            )
            if cursor.rowcount == 0:
                raise UnknownRun(f"no runbook run {run_id}")

    # --- digests ------------------------------------------------------------------------------

    _CURRENT_SUBSCRIPTIONS = (
        "WITH latest AS (SELECT MAX(id) AS id FROM digest_subscriptions GROUP BY channel) "
        "SELECT s.channel, s.user, s.schedule, s.at FROM latest "
        "JOIN digest_subscriptions s ON s.id = latest.id WHERE s.action = 'subscribe'"
    )

    def subscribe(self, channel: str, user: str, schedule: str = "daily 09:00") -> Subscription:
        """Subscribe `channel` to digests; subscribing again replaces its schedule."""
        at = _ts(self._clock())
        with self._write():
            self._db.execute(
                "INSERT INTO digest_subscriptions (channel, user, action, schedule, at) "
                "VALUES (?, ?, 'subscribe', ?, ?)",
                (channel, user, schedule, at),
            )
        return Subscription(channel, user, schedule, _at(at))

    def unsubscribe(self, channel: str, user: str) -> bool:
        """Stop `channel`'s digests; False if it had none."""
        with self._write():
            if not self._one(f"{self._CURRENT_SUBSCRIPTIONS} AND s.channel = ?", (channel,)):
                return False
            self._db.execute(
                "INSERT INTO digest_subscriptions (channel, user, action, at) "
                "VALUES (?, ?, 'unsubscribe', ?)",
                (channel, user, _ts(self._clock())),
            )
            return True

    def subscriptions(self) -> list[Subscription]:
        with self._read():
            rows = self._all(f"{self._CURRENT_SUBSCRIPTIONS} ORDER BY s.channel")
        return [Subscription(r[0], r[1], r[2], _at(r[3])) for r in rows]

    def save_digest_snapshot(self, channel: str, snapshot: dict[str, Any]) -> None:
        """Keep what the last digest showed, so the next one can say what changed."""
        with self._write():
            self._db.execute(
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
        snapshot: dict[str, Any] = json.loads(row[0])
        return snapshot

    # --- audit --------------------------------------------------------------------------------

    def audit(
        self,
        actor: str,
        action: str,
        target: str = "",
        detail: str = "",
        *,
        allowed: bool = True,
        source: str = "cli",
    ) -> None:
        """Record who did (or was refused) what. `detail` must already be free of secrets."""
        with self._write():
            self._db.execute(
                "INSERT INTO audit_log (at, actor, action, target, detail, allowed, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_ts(self._clock()), actor, action, target, detail, int(allowed), source),
            )

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The latest audit entries, newest first."""
        with self._read():
            rows = self._all(
                "SELECT id, at, actor, action, target, detail, allowed, source FROM audit_log "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [AuditEntry(r[0], _at(r[1]), r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]

    # --- request de-duplication ---------------------------------------------------------------

    def claim_request(self, key: str) -> bool:
        """True the first time `key` (a Slack retry's trigger_id, action_ts...) is seen."""
        with self._write():
            return self._claim("request", key)

    def prune_requests(self, older_than: timedelta) -> int:
        """Forget request keys claimed longer ago than Slack could still redeliver them
        (retries come within minutes); returns how many were removed."""
        cutoff = _ts(self._clock() - older_than)
        with self._write():
            return self._db.execute(
                "DELETE FROM processed_requests WHERE claimed_at < ?", (cutoff,)
            ).rowcount

    # --- perf (issue 11) ---
    # Reads go to per-thread reader connections on a file-backed store: in WAL mode a reader
    # never waits for the writer, so the 16 server threads no longer queue behind one lock
    # (and behind every request's dedupe write) just to read. Writes keep the one connection
    # and the lock. An in-memory store has one connection only: reads stay under the lock.

    def _init_readers(self, db: sqlite_utils.Database) -> None:
        self._reader_path = _file_of(db) if schema.is_file_backed(db) else None
        self._reader_local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()  # not self._lock: a writer may hold that
        self._readers_closed = False

    def file(self) -> str | None:
        """The store's database file; None for a store in memory."""
        return self._reader_path

    def _reader(self) -> sqlite3.Connection | None:
        """This thread's reader connection (opened on first use), None for an in-memory store."""
        if self._reader_path is None:
            return None
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._reader_path,
                timeout=schema.BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # transactions are ours: BEGIN in _read_snapshot
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
        with self._readers_lock:
            self._readers_closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

    def _conn(self) -> sqlite3.Connection:
        """The connection this thread's queries go to: its reader inside a read snapshot,
        else the writer (inside a write, or a read of an in-memory store)."""
        active: sqlite3.Connection | None = getattr(self._reader_local, "active", None)
        return active if active is not None else self._db.conn

    @contextmanager
    def _read_snapshot(self) -> Iterator[None]:
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

    def change_marks(self) -> ChangeMarks:
        """Where each kind of state readiness derives from stands: the current checklist
        version and the newest event id of each append-only table. Equal marks mean equal
        state, whatever else was written since (a dedupe claim, an audit entry), so caches
        keyed by them survive unrelated writes. Cheap: each is a b-tree's last key."""
        # One statement is one snapshot by itself: no BEGIN/COMMIT round trip. It is asked on
        # every request, so it goes straight to this thread's reader.
        reader = self._reader()
        if reader is None:
            with self._read():
                row = self._one(self._MARKS)
        else:
            row = reader.execute(self._MARKS).fetchone()
        assert row is not None
        return ChangeMarks(*(int(v or 0) for v in row))

    _MARKS = (
        "SELECT (SELECT MAX(version) FROM checklist_versions), "
        "(SELECT MAX(id) FROM signoff_events), (SELECT MAX(id) FROM check_results), "
        "(SELECT MAX(id) FROM vote_events), (SELECT MAX(id) FROM decision_events), "
        "(SELECT MAX(id) FROM acceptance_events), (SELECT MAX(id) FROM override_events)"
    )

    def signoffs_delta(
        self, since_event: int, full: bool = False
    ) -> tuple[int, int, dict[str, list[Signoff]]]:
        """What changed in the standing sign-offs after event `since_event`: the current
        checklist version, the newest event id, and the standing sign-offs (oldest first,
        possibly none) of every current item with a later event; with `full`, of every
        current item (like signoffs()). One snapshot, so
        a cache of signoffs() updated with it stays exactly signoffs() as of the returned id:
        a sign-off changes one item, not the reading of all of them (perf, issue 11)."""
        with self._read():
            row = self._one(
                "SELECT (SELECT MAX(version) FROM checklist_versions), "
                "(SELECT MAX(id) FROM signoff_events)"
            )
            version, newest = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
            if full:
                changed: list[str] | None = None
            else:
                changed = [
                    r[0]
                    for r in self._all(
                        "SELECT DISTINCT item_id FROM signoff_events WHERE id > ?", (since_event,)
                    )
                ]
            rows = self._all(
                "SELECT e.item_id, e.user, e.at, e.note, e.na_reason, e.source "
                "FROM signoff_latest l JOIN signoff_events e ON e.id = l.event_id "
                "JOIN items i ON i.version = (SELECT MAX(version) FROM checklist_versions) "
                "AND i.id = e.item_id "
                "WHERE e.action = 'signoff' AND e.version >= i.since_version "
                "AND (?1 IS NULL OR l.item_id IN (SELECT value FROM json_each(?1))) "
                "ORDER BY e.id",
                (None if changed is None else json.dumps(changed),),
            )
        result: dict[str, list[Signoff]] = {item_id: [] for item_id in changed or ()}
        parse = datetime.fromisoformat
        for item_id, user, at, note, na_reason, source in rows:
            result.setdefault(item_id, []).append(
                Signoff(item_id, user, parse(at), note, na_reason, source)
            )
        return version, newest, result
