"""Opening the SQLite database and bringing its schema up to date.

The schema is a set of `sqlite_utils.Migrations` functions, applied in order at start; a function
that has been applied is never edited again: a schema change is a new function at the end.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from store.errors import StoreDamaged, StoreUnavailable

BUSY_TIMEOUT_MS = 5000

MIGRATIONS = Migrations("preflight")


def open_database(
    path: str | Path | None, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite_utils.Database:
    """Open (creating if needed) the database at `path`; None or ":memory:" is in-memory.

    The connection may be used from any thread (`check_same_thread=False`): the Store serialises
    access with its own lock. Migrations are applied by the Store, not here.
    """
    target = ":memory:"
    try:
        if path is not None and str(path) != ":memory:":
            file = Path(path).expanduser()
            file.parent.mkdir(parents=True, exist_ok=True)
            target = str(file)
        conn = sqlite3.connect(target, timeout=busy_timeout_ms / 1000, check_same_thread=False)
        db = sqlite_utils.Database(conn)
        configure(db, busy_timeout_ms=busy_timeout_ms)
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot open the store at {path}: {exc}") from exc
    return db


def is_file_backed(db: sqlite_utils.Database) -> bool:
    rows = db.execute("PRAGMA database_list").fetchall()
    return any(name == "main" and file for _, name, file in rows)


def integrity_problems(db: sqlite_utils.Database, limit: int = 5) -> list[str]:
    """What SQLite's quick_check finds wrong (empty when the file is sound). quick_check reads
    every page but skips index-content comparisons: milliseconds for a store of this size."""
    try:
        rows = db.execute(f"PRAGMA quick_check({int(limit)})").fetchall()
    except sqlite3.DatabaseError as exc:  # a header or schema page too damaged to read
        return [str(exc)]
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else found


def require_sound(db: sqlite_utils.Database, path: str | Path | None) -> None:
    """Raise StoreDamaged unless the file passes quick_check: a write into a damaged file can
    spread the damage and would be an acknowledged write that may not survive."""
    problems = integrity_problems(db, limit=1)
    if problems:
        raise StoreDamaged(
            f"the store at {path} is damaged ({problems[0]}); restore it from a backup "
            "(`preflight store check` lists the damage)"
        )


def configure(db: sqlite_utils.Database, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    """Set the connection pragmas the store relies on. Idempotent; must run outside a transaction.

    - WAL (files only): readers never block the writer, and a commit is one append to the log.
    - synchronous=NORMAL: in WAL mode a commit is durable against a crash of the *process*
      (SIGKILL, OOM, exception) because the log is written before COMMIT returns; only a power
      loss or OS crash can drop the last few commits, never corrupt the file. FULL would add an
      fsync per sign-off for protection this bot does not need.
    - foreign_keys=ON: SQLite leaves them off by default, per connection.
    - busy_timeout: another process (the CLI beside the bot) holding the write lock makes us
      wait instead of failing with "database is locked".
    """
    if db.conn.in_transaction:
        raise RuntimeError("configure() must run outside a transaction")
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA foreign_keys = ON")
    if is_file_backed(db):
        db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")


def migrate(db: sqlite_utils.Database) -> None:
    """Apply pending migrations, holding the write lock so two processes starting at once
    cannot both run the same migration (the second waits, then finds nothing pending)."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        # Inside our transaction each migration runs in a savepoint (sqlite-utils nests atomic()).
        MIGRATIONS.apply(db)
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def _run(db: sqlite_utils.Database, statements: list[str]) -> None:
    for statement in statements:
        db.execute(statement)


def _append_only(table: str) -> list[str]:
    """Triggers that make a table of events append-only: history is evidence."""
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""",
    ]


@MIGRATIONS()
def m001_initial(db: sqlite_utils.Database) -> None:
    _run(
        db,
        [
            # --- checklist versions: every import that changed something is a new version,
            # and old versions stay so that old events keep pointing at what was signed.
            """CREATE TABLE checklist_versions (
                version INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL,          -- of the source document
                content_sha256 TEXT NOT NULL,  -- of the items and decisions as stored
                title TEXT NOT NULL DEFAULT '',
                imported_at TEXT NOT NULL,
                source TEXT NOT NULL
            )""",
            """CREATE TABLE items (
                version INTEGER NOT NULL REFERENCES checklist_versions(version),
                id TEXT NOT NULL,
                position INTEGER NOT NULL,
                section TEXT NOT NULL,
                path TEXT NOT NULL,            -- JSON array of headings
                text TEXT NOT NULL,
                kind TEXT NOT NULL,
                line INTEGER NOT NULL,
                checked INTEGER NOT NULL DEFAULT 0,
                claimed INTEGER NOT NULL DEFAULT 0,
                parent_id TEXT,
                decision_id TEXT,
                condition TEXT,
                details TEXT NOT NULL DEFAULT '[]',
                checks TEXT NOT NULL DEFAULT '[]',
                -- first version of the unbroken run of versions holding this id with this text:
                -- only sign-offs made since then count.
                since_version INTEGER NOT NULL REFERENCES checklist_versions(version),
                PRIMARY KEY (version, id)
            )""",
            """CREATE TABLE decisions (
                version INTEGER NOT NULL REFERENCES checklist_versions(version),
                id TEXT NOT NULL,
                position INTEGER NOT NULL,
                topic TEXT NOT NULL,
                question TEXT NOT NULL,
                item_id TEXT,
                aliases TEXT NOT NULL DEFAULT '[]',
                PRIMARY KEY (version, id)
            )""",
            """CREATE TABLE decision_options (
                version INTEGER NOT NULL,
                decision_id TEXT NOT NULL,
                id TEXT NOT NULL,
                position INTEGER NOT NULL,
                label TEXT NOT NULL,
                aliases TEXT NOT NULL DEFAULT '[]',
                PRIMARY KEY (version, decision_id, id),
                FOREIGN KEY (version, decision_id) REFERENCES decisions(version, id)
            )""",
            # --- append-only events; current state is derived by queries.
            """CREATE TABLE signoff_events (
                id INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                item_id TEXT NOT NULL,
                user TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('signoff', 'unsign')),
                at TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                na_reason TEXT,
                source TEXT NOT NULL,
                request_key TEXT,
                FOREIGN KEY (version, item_id) REFERENCES items(version, id)
            )""",
            "CREATE INDEX signoff_events_item_user ON signoff_events(item_id, user, id)",
            # Each (item, user)'s latest event, kept by the database itself, so that reading the
            # standing sign-offs costs what the team is, not how long its history is. Derived:
            # rebuildable with SELECT item_id, user, MAX(id) ... GROUP BY item_id, user.
            """CREATE TABLE signoff_latest (
                item_id TEXT NOT NULL,
                user TEXT NOT NULL,
                event_id INTEGER NOT NULL REFERENCES signoff_events(id),
                PRIMARY KEY (item_id, user)
            )""",
            """CREATE TRIGGER signoff_latest_track AFTER INSERT ON signoff_events
            BEGIN
                INSERT OR REPLACE INTO signoff_latest (item_id, user, event_id)
                VALUES (NEW.item_id, NEW.user, NEW.id);
            END""",
            """CREATE INDEX signoff_events_request ON signoff_events(request_key)
                WHERE request_key IS NOT NULL""",
            """CREATE TABLE vote_events (
                id INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                decision_id TEXT NOT NULL,
                option_id TEXT NOT NULL,
                user TEXT NOT NULL,
                at TEXT NOT NULL,
                source TEXT NOT NULL,
                request_key TEXT,
                FOREIGN KEY (version, decision_id, option_id)
                    REFERENCES decision_options(version, decision_id, id)
            )""",
            "CREATE INDEX vote_events_decision_user ON vote_events(decision_id, user, id)",
            """CREATE INDEX vote_events_request ON vote_events(request_key)
                WHERE request_key IS NOT NULL""",
            """CREATE TABLE decision_events (
                id INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                decision_id TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('close', 'reopen')),
                option_id TEXT,
                user TEXT NOT NULL,
                at TEXT NOT NULL,
                rationale TEXT NOT NULL DEFAULT '',  -- the reason, for a reopen
                source TEXT NOT NULL,
                request_key TEXT,
                FOREIGN KEY (version, decision_id) REFERENCES decisions(version, id),
                CHECK ((action = 'close') = (option_id IS NOT NULL))
            )""",
            "CREATE INDEX decision_events_decision ON decision_events(decision_id, id)",
            """CREATE INDEX decision_events_request ON decision_events(request_key)
                WHERE request_key IS NOT NULL""",
            # --- check results: full history, plus the newest per check so that reading the
            # current state never scans the history.
            """CREATE TABLE check_results (
                id INTEGER PRIMARY KEY,
                check_id TEXT NOT NULL,
                status TEXT NOT NULL,
                observed_at TEXT NOT NULL DEFAULT '',  -- '' when the result has none
                saved_at TEXT NOT NULL,
                result TEXT NOT NULL                   -- JSON of Result.to_dict()
            )""",
            "CREATE INDEX check_results_check ON check_results(check_id, observed_at, id)",
            """CREATE TABLE latest_results (
                check_id TEXT PRIMARY KEY,
                observed_at TEXT NOT NULL,
                result TEXT NOT NULL
            )""",
            # --- runbook runs: the run row is written at start and once at its end; what
            # happens in between is events.
            """CREATE TABLE runbook_runs (
                id INTEGER PRIMARY KEY,
                runbook_id TEXT NOT NULL,
                started_by TEXT NOT NULL,
                started_at TEXT NOT NULL,
                channel TEXT,
                thread_ts TEXT,
                source TEXT NOT NULL,
                ended_at TEXT,
                ended_by TEXT,
                request_key TEXT
            )""",
            "CREATE INDEX runbook_runs_active ON runbook_runs(channel) WHERE ended_at IS NULL",
            """CREATE INDEX runbook_runs_request ON runbook_runs(request_key)
                WHERE request_key IS NOT NULL""",
            """CREATE TABLE runbook_step_events (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runbook_runs(id),
                step INTEGER NOT NULL CHECK (step >= 0),
                action TEXT NOT NULL CHECK (action IN ('done', 'skip', 'note', 'undo')),
                user TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                at TEXT NOT NULL,
                request_key TEXT
            )""",
            "CREATE INDEX runbook_step_events_run ON runbook_step_events(run_id, id)",
            """CREATE INDEX runbook_step_events_request ON runbook_step_events(request_key)
                WHERE request_key IS NOT NULL""",
            # --- digests
            """CREATE TABLE digest_subscriptions (
                id INTEGER PRIMARY KEY,
                channel TEXT NOT NULL,
                user TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('subscribe', 'unsubscribe')),
                schedule TEXT,
                at TEXT NOT NULL
            )""",
            "CREATE INDEX digest_subscriptions_channel ON digest_subscriptions(channel, id)",
            """CREATE TABLE digest_snapshots (
                id INTEGER PRIMARY KEY,
                channel TEXT NOT NULL,
                at TEXT NOT NULL,
                snapshot TEXT NOT NULL  -- JSON
            )""",
            "CREATE INDEX digest_snapshots_channel ON digest_snapshots(channel, id)",
            # --- audit and request de-duplication
            """CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL DEFAULT '',
                detail TEXT NOT NULL DEFAULT '',
                allowed INTEGER NOT NULL,
                source TEXT NOT NULL
            )""",
            # scope: "request" for claim_request(); the write's name ("signoff", "vote", ...)
            # for a write's request_key, so the middleware claiming a trigger_id does not stop
            # the handler's write that carries the same key.
            """CREATE TABLE processed_requests (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                claimed_at TEXT NOT NULL,
                PRIMARY KEY (scope, key)
            )""",
            *_append_only("signoff_events"),
            *_append_only("vote_events"),
            *_append_only("decision_events"),
            *_append_only("runbook_step_events"),
            *_append_only("digest_subscriptions"),
            *_append_only("audit_log"),
        ],
    )


@MIGRATIONS()
def m002_assignments(db: sqlite_utils.Database) -> None:
    _run(
        db,
        [
            # assignee NULL: the item's assignment was cleared.
            """CREATE TABLE assignment_events (
                id INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                item_id TEXT NOT NULL,
                assignee TEXT,
                assigned_by TEXT NOT NULL,
                at TEXT NOT NULL,
                source TEXT NOT NULL,
                FOREIGN KEY (version, item_id) REFERENCES items(version, id)
            )""",
            "CREATE INDEX assignment_events_item ON assignment_events(item_id, id)",
            *_append_only("assignment_events"),
        ],
    )


@MIGRATIONS()
def m003_checklist_source(db: sqlite_utils.Database) -> None:
    """The store holds the current checklist itself, so every process agrees on it."""
    _run(
        db,
        [
            # The document as imported (credentials masked), re-parsed on load.
            "ALTER TABLE checklist_versions ADD COLUMN source_text TEXT",
            # Where it came from (a path, "bundled"), who imported it, and the check bindings
            # (JSON: check id -> item ids) that were applied to it.
            "ALTER TABLE checklist_versions ADD COLUMN origin TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE checklist_versions ADD COLUMN imported_by TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE checklist_versions ADD COLUMN bindings TEXT NOT NULL DEFAULT '{}'",
            "ALTER TABLE checklist_versions ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'",
            # An item removed and later re-added finds its last row here (archive look-up).
            "CREATE INDEX items_id_version ON items(id, version)",
        ],
    )


# Named m004 so that it sorts after a concurrent m003; migrations apply in file order and each
# stands alone, so either order of the two is fine.
@MIGRATIONS()
def m004_acceptances_overrides(db: sqlite_utils.Database) -> None:
    _run(
        db,
        [
            # A WARN accepted for one item: the result it was (status and fingerprint) is
            # kept, so a different later result is not covered by it.
            """CREATE TABLE acceptance_events (
                id INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                item_id TEXT NOT NULL,
                check_id TEXT NOT NULL,
                status TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                summary TEXT NOT NULL DEFAULT '',
                user TEXT NOT NULL,
                reason TEXT NOT NULL,
                at TEXT NOT NULL,
                source TEXT NOT NULL,
                request_key TEXT,
                FOREIGN KEY (version, item_id) REFERENCES items(version, id)
            )""",
            "CREATE INDEX acceptance_events_item ON acceptance_events(item_id, id)",
            """CREATE INDEX acceptance_events_request ON acceptance_events(request_key)
                WHERE request_key IS NOT NULL""",
            # An override makes an item done whatever its checks say; it stands while its
            # author's sign-off of the item stands (readiness joins the two).
            """CREATE TABLE override_events (
                id INTEGER PRIMARY KEY,
                version INTEGER NOT NULL,
                item_id TEXT NOT NULL,
                user TEXT NOT NULL,
                reason TEXT NOT NULL,
                at TEXT NOT NULL,
                source TEXT NOT NULL,
                request_key TEXT,
                FOREIGN KEY (version, item_id) REFERENCES items(version, id)
            )""",
            "CREATE INDEX override_events_item ON override_events(item_id, id)",
            """CREATE INDEX override_events_request ON override_events(request_key)
                WHERE request_key IS NOT NULL""",
            *_append_only("acceptance_events"),
            *_append_only("override_events"),
        ],
    )


@MIGRATIONS()
def m006_decision_polls_digest_slots(db: sqlite_utils.Database) -> None:
    _run(
        db,
        [
            # Where each decision's poll message is, per channel (the latest row counts).
            """CREATE TABLE decision_polls (
                id INTEGER PRIMARY KEY,
                decision_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                ts TEXT NOT NULL,
                at TEXT NOT NULL
            )""",
            "CREATE INDEX decision_polls_decision ON decision_polls(decision_id, channel, id)",
            # One row per subscription (channel) and scheduled time, inserted before posting:
            # the unique key is what makes a slot post once across restarts and processes.
            """CREATE TABLE digest_slots (
                channel TEXT NOT NULL,
                slot TEXT NOT NULL,
                claimed_at TEXT NOT NULL,
                outcome TEXT,
                PRIMARY KEY (channel, slot)
            )""",
        ],
    )


@MIGRATIONS()
def m007_parsed_checklists(db: sqlite_utils.Database) -> None:
    _run(
        db,
        [
            # The parsed form of recent checklist documents (JSON), by a hash of the text and the
            # parser, so a start does not parse the same document again. A cache, not history:
            # rows are replaced and dropped, and losing one costs a parse.
            """CREATE TABLE parsed_checklists (
                key TEXT PRIMARY KEY,
                data TEXT NOT NULL,
                saved_at TEXT NOT NULL
            )""",
        ],
    )
