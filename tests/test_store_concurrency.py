"""Bolt listener threads and the scheduler write at once: nothing lost, nothing "locked"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from store import Store
from tests.support.store_helpers import StoreFactory, checklist, item

THREADS = 8
PER_THREAD = 200
ITEMS = [f"item-{n}" for n in range(20)]


def _hammer(stores: list[Store], errors: list[BaseException]) -> None:
    """THREADS threads, each PER_THREAD sign-offs as its own user, spread over the stores,
    with a reader in every thread so reads and writes interleave too."""
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        store = stores[n % len(stores)]
        try:
            barrier.wait()
            for k in range(PER_THREAD):
                store.add_signoff(ITEMS[k % len(ITEMS)], f"user-{n}", note=f"{n}/{k}")
                if k % 50 == 0:
                    store.signoffs()
        except BaseException as e:  # collected: an exception in a thread would pass silently
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("connections", [1, 2], ids=["one-store", "two-stores-one-file"])
def test_many_threads_sign_off_at_once(tmp_path: Path, connections: int) -> None:
    path = tmp_path / "preflight.db"
    stores = [Store.open(path) for _ in range(connections)]
    stores[0].import_checklist(checklist(*(item(i) for i in ITEMS)))
    errors: list[BaseException] = []
    try:
        _hammer(stores, errors)
    finally:
        for s in stores:
            s.close()
    assert errors == []

    with Store.open(path) as s:
        assert s.signoff_count() == THREADS * PER_THREAD
        standing = s.signoffs()
        assert set(standing) == set(ITEMS)
        assert all(len(v) == THREADS for v in standing.values())
        notes = {e["note"] for i in ITEMS for e in s.signoff_history(i)}
        assert len(notes) == THREADS * PER_THREAD
        assert s.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_request_key_is_applied_once_under_a_race(tmp_path: Path) -> None:
    """Slack's retry racing the original: of many threads with one key, exactly one writes."""
    with Store.open(tmp_path / "p.db") as s:
        s.import_checklist(checklist())
        barrier = threading.Barrier(THREADS)
        results = []

        def worker() -> None:
            barrier.wait()
            results.append(s.add_signoff("tls", "alice", request_key="action-ts-1"))

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(results) == THREADS and len(set(results)) == 1
        assert s.signoff_count() == 1


def test_many_threads_on_two_postgres_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two stores (as two instances would have) on one PostgreSQL database, threads in each."""
    factory = StoreFactory("postgresql", request, tmp_path)
    stores = [factory(), factory()]
    stores[0].import_checklist(checklist(*(item(i) for i in ITEMS)))
    errors: list[BaseException] = []
    _hammer(stores, errors)
    assert errors == []
    s = factory()
    assert s.signoff_count() == THREADS * PER_THREAD
    standing = s.signoffs()
    assert set(standing) == set(ITEMS)
    assert all(len(v) == THREADS for v in standing.values())


@pytest.mark.parametrize("backend", ["file", "postgresql"])
def test_request_key_races_across_two_stores(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """A retry landing on another process or instance: one key, two stores, one write."""
    factory = StoreFactory(backend, request, tmp_path)
    stores = [factory(), factory()]
    stores[0].import_checklist(checklist())
    barrier = threading.Barrier(THREADS)
    results = []

    def worker(n: int) -> None:
        barrier.wait()
        results.append(stores[n % 2].vote("email-service", "ses", "alice", request_key="t-1"))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == THREADS and len(set(results)) == 1
    assert len(stores[1].vote_history("email-service")) == 1
