"""WAL checkpoints off the request path (store/base.py, checkpoint_in_background): a serving
store's commits never checkpoint, a thread of its own does, and closing the store stops it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from store import Store
from tests.support.slack_app import SlackApp
from tests.support.store_helpers import checklist, item

THREAD = "preflight-store-checkpoint"


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _wal_bytes(path: Path) -> int:
    return path.with_name(path.name + "-wal").stat().st_size


def _unchecked_wal_bytes(tmp_path: Path, commits: int) -> int:
    """How big the log grows over `commits` claims when nothing checkpoints it."""
    with Store.open(tmp_path / "unchecked.db") as control:
        control.db.execute("PRAGMA wal_autocheckpoint = 0")
        for n in range(commits):
            control.claim_request(f"cmd:{n}")
        return _wal_bytes(tmp_path / "unchecked.db")


def test_commits_leave_checkpoints_to_a_thread_of_their_own(tmp_path: Path) -> None:
    """The log starts over after each round of the thread, so it stays a fraction of what the
    same commits grow with no checkpoint at all."""
    unchecked = _unchecked_wal_bytes(tmp_path, 3000)
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.checkpoint_in_background(every=100)
        # The writer's own checkpoint is only a backstop, far past a round's worth of log.
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
        assert len(_checkpoint_threads()) == 1
        checkpointer = store._checkpointer
        assert checkpointer is not None
        for batch in range(6):
            rounds = checkpointer.checkpoints
            for n in range(500):
                assert store.claim_request(f"cmd:{batch}:{n}")
            assert _wait_for(lambda r=rounds: checkpointer.checkpoints > r)
        assert _wal_bytes(path) < unchecked / 3
        assert all(store.claim_request(f"cmd:{b}:{n}") is False for b in range(6) for n in (0, 499))


def test_without_the_thread_the_log_is_the_writers_to_checkpoint(tmp_path: Path) -> None:
    """The default (CLI, tests): SQLite checkpoints in the commit, as it always did."""
    with Store.open(tmp_path / "s.db") as store:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert _checkpoint_threads() == []


def test_closing_the_store_stops_the_thread_and_keeps_every_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store.open(path)
    store.import_checklist(checklist(*(item(f"i-{n}") for n in range(5))))
    store.checkpoint_in_background(every=1000)  # never reached: close takes the last one
    for n in range(300):
        store.add_signoff(f"i-{n % 5}", f"U{n}")
    store.close()
    assert _checkpoint_threads() == []
    # The last connection to close checkpoints and removes the log: none was left open.
    assert not path.with_name("s.db-wal").exists()
    with Store.open(path) as again:
        assert again.signoff_count() == 300
        assert again.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("target", [None, ":memory:"])
def test_a_store_in_memory_has_no_log_to_checkpoint(target: str | None) -> None:
    with Store.open(target) as store:
        store.checkpoint_in_background()
        assert store._checkpointer is None and _checkpoint_threads() == []


def test_asking_twice_starts_one_thread(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.checkpoint_in_background()
        store.checkpoint_in_background()
        assert len(_checkpoint_threads()) == 1


def test_the_log_starts_over_while_commits_never_pause(tmp_path: Path) -> None:
    """A round's first passes run beside the writer, which keeps appending; only the last, under
    the store's lock, leaves the log complete so that the next write starts it over."""
    unchecked = _unchecked_wal_bytes(tmp_path, 6000)
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.checkpoint_in_background(every=100)
        for n in range(6000):
            store.claim_request(f"cmd:{n}")
        assert store._checkpointer is not None and store._checkpointer.checkpoints >= 2
        assert _wal_bytes(path) < unchecked / 3
    assert _checkpoint_threads() == []  # closing did not wait out a round's lock


def test_the_app_a_server_runs_checkpoints_in_the_background(slack: SlackApp) -> None:
    """build_app turns it on: HTTP mode and Socket Mode both commit on every request."""
    assert slack.store._checkpointer is not None
    assert slack.store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
