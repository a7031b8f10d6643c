"""Crash safety: a writer killed by SIGKILL loses nothing it reported and leaves no half writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from store import Store
from tests.support.store_helpers import StoreFactory, checklist, item

REPO = Path(__file__).resolve().parents[1]
ITEMS = [f"item-{n}" for n in range(10)]

# Each child writes forever and prints a line only after the write returned: a printed line is
# a promise that the write is committed.
SIGNOFF_WRITER = """
    for n in range(10**9):
        store.add_signoff(f"item-{n % 10}", f"user-{n}", note="x" * 200)
        print(n, flush=True)
"""
IMPORT_WRITER = """
    from tests.support.store_helpers import StoreFactory, checklist, item
    for n in range(10**9):
        # version n + 1 holds 100 + n items: a torn import would show up as a short version
        report = store.import_checklist(checklist(*(item(f"i-{k}") for k in range(100 + n))))
        print(report.version, flush=True)
"""
RESULTS_WRITER = """
    from datetime import UTC, datetime, timedelta
    from checks.base import Result, Status
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(10**9):
        at = t0 + timedelta(seconds=n)
        store.save_results(
            [Result(Status.PASS, str(n), check_id=f"c{k}", observed_at=at) for k in range(100)]
        )
        print(n, flush=True)
"""


def _run_and_kill(db: str, body: str, tmp_path: Path, kill_after: int) -> list[int]:
    """Run `body` in a child process on the store at `db`; SIGKILL it after `kill_after` lines."""
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys\nfrom store import Store\n"
        "store = Store.open(sys.argv[1])\n" + textwrap.dedent(body)
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(script), db], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    reported: list[int] = []
    try:
        while len(reported) < kill_after:
            line = child.stdout.readline()
            if not line:
                _, err = child.communicate(timeout=10)
                pytest.fail(f"writer stopped early after {len(reported)} lines: {err[-2000:]}")
            reported.append(int(line))
        child.send_signal(signal.SIGKILL)
        # Whatever the child printed before it died also counts as promised. Read through
        # child.stdout, not communicate(): lines already in its buffer would be skipped.
        reported += [int(x) for x in child.stdout.read().split()]
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    return reported


def _integrity(store: Store) -> str:
    if store.backend == "postgresql":  # no page-level check to run: a query answered is all
        return "ok" if not store.integrity_problems() else "; ".join(store.integrity_problems())
    return str(store.db.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.fixture(params=["file", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store the writer is killed on: a SQLite file, or a PostgreSQL database."""
    return StoreFactory(request.param, request, tmp_path).target


def test_killed_signoff_writer_loses_nothing_it_reported(db: str, tmp_path: Path) -> None:
    with Store.open(db) as s:
        s.import_checklist(checklist(*(item(i) for i in ITEMS)))
    reported = _run_and_kill(db, SIGNOFF_WRITER, tmp_path, kill_after=200)

    with Store.open(db) as s:
        assert _integrity(s) == "ok"
        standing = {(x.item_id, x.user) for v in s.signoffs().values() for x in v}
        missing = [n for n in reported if (f"item-{n % 10}", f"user-{n}") not in standing]
        assert missing == []
        # At most the one write in flight when the kill landed went unreported.
        assert len(reported) <= s.signoff_count() <= len(reported) + 1
        s.add_signoff("item-0", "after-the-crash")  # and the store still takes writes


def test_killed_import_leaves_whole_versions_only(db: str, tmp_path: Path) -> None:
    reported = _run_and_kill(db, IMPORT_WRITER, tmp_path, kill_after=40)

    with Store.open(db) as s:
        assert _integrity(s) == "ok"
        counts = dict(
            s.db.execute(
                "SELECT v.version, COUNT(i.id) FROM checklist_versions v "
                "LEFT JOIN items i ON i.version = v.version GROUP BY v.version"
            ).fetchall()
        )
        assert set(reported) <= set(counts)
        assert all(n == 99 + v for v, n in counts.items())
        assert len(s.current_item_ids()) == 99 + max(counts)


def test_killed_results_writer_keeps_batches_whole(db: str, tmp_path: Path) -> None:
    reported = _run_and_kill(db, RESULTS_WRITER, tmp_path, kill_after=100)

    with Store.open(db) as s:
        assert _integrity(s) == "ok"
        total = s.db.execute("SELECT COUNT(*) FROM check_results").fetchone()[0]
        assert total % 100 == 0 and total // 100 in (len(reported), len(reported) + 1)
        latest = s.latest_results()
        assert len(latest) == 100
        # The newest batch is complete: every check's latest is the same batch.
        assert len({r.summary for r in latest.values()}) == 1
        assert int(next(iter(latest.values())).summary) >= max(reported)


def test_killed_writer_checkpointing_in_background_loses_nothing(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A serving store takes its WAL checkpoints on a thread of its own (checkpoint_in_background):
    a kill in the middle of one loses no reported write either."""
    db = StoreFactory("file", request, tmp_path).target
    with Store.open(db) as s:
        s.import_checklist(checklist(*(item(i) for i in ITEMS)))
    body = "store.checkpoint_in_background(every=20)\n" + textwrap.dedent(SIGNOFF_WRITER)
    reported = _run_and_kill(db, body, tmp_path, kill_after=1500)

    with Store.open(db) as s:
        assert _integrity(s) == "ok"
        standing = {(x.item_id, x.user) for v in s.signoffs().values() for x in v}
        assert [n for n in reported if (f"item-{n % 10}", f"user-{n}") not in standing] == []
        assert len(reported) <= s.signoff_count() <= len(reported) + 1
