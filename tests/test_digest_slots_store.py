"""The store's digest slot claims and decision poll messages (migration m006)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from store import Store

SLOT = datetime(2026, 3, 8, 13, 0, tzinfo=UTC)


def test_a_slot_is_claimed_once(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        assert store.claim_digest_slot("C1", SLOT) is True
        assert store.claim_digest_slot("C1", SLOT) is False
        assert store.claim_digest_slot("C2", SLOT) is True
        assert store.claim_digest_slot("C1", SLOT + timedelta(days=1)) is True
        assert store.claim_digest_slots([("C1", SLOT), ("C3", SLOT), ("C3", SLOT)]) == ["C3"]
        store.finish_digest_slots([("C1", SLOT, "posted")])
        assert store.digest_slots("C1")[0] == (SLOT, "posted")


def test_many_processes_claiming_at_once_win_each_slot_once(tmp_path: Path) -> None:
    stores = [Store.open(tmp_path / "s.db") for _ in range(4)]
    won: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(stores))
    claims = [(f"C{n:02d}", SLOT) for n in range(40)]

    def claim(store: Store) -> None:
        start.wait()
        got = store.claim_digest_slots(claims)
        with lock:
            won.extend(got)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for s in stores:
        s.close()
    assert sorted(won) == sorted(c for c, _ in claims)


def test_poll_messages_keep_the_latest_per_channel(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.save_poll("email-service", "C1", "1.000")
        store.save_poll("email-service", "C2", "2.000")
        store.save_poll("email-service", "C1", "3.000")
        store.save_poll("ci-cd", "C1", "4.000")
        assert [(p.channel, p.ts) for p in store.polls("email-service")] == [
            ("C2", "2.000"), ("C1", "3.000"),
        ]  # fmt: skip
        assert store.poll("ci-cd", "C1").ts == "4.000"  # type: ignore[union-attr]
        assert store.poll("ci-cd", "C2") is None


def test_digest_history_has_one_point_per_round(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        for n, done in enumerate((1, 2, 4)):
            snap = {"done": done, "applicable": 4, "gate": "BLOCKED",
                    "computed_at": f"2026-03-0{n + 1}T09:00:00+00:00"}  # fmt: skip
            store.save_digest_snapshots({"C1": snap, "C2": snap})
        store.save_digest_snapshot("C3", {"unexpected": "shape"})
        points = store.digest_history()
        assert [(p.done, p.applicable) for p in points] == [(1, 4), (2, 4), (4, 4)]
        assert store.last_digest_snapshots(["C1", "C9"])["C1"]["done"] == 4
