"""The store's parsed-checklist cache (migration m007), on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import Store
from store.parsed import KEEP_PARSED
from tests.support.store_helpers import StoreFactory

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _keys(store: Store) -> list[str]:
    with store._read():
        return sorted(r["key"] for r in store._all("SELECT key FROM parsed_checklists"))


def test_a_saved_parse_reads_back(store_factory: StoreFactory) -> None:
    store = store_factory()
    assert store.parsed_checklist("k1") is None
    data = '{"title": "Ünïcode ✅", "items": [["a\\u0000b"]]}'
    store.save_parsed_checklist("k1", data)
    assert store.parsed_checklist("k1") == data
    store.save_parsed_checklist("k1", "[]")  # the same key is replaced, not added
    assert store.parsed_checklist("k1") == "[]" and _keys(store) == ["k1"]


def test_only_the_newest_keys_are_kept(store_factory: StoreFactory) -> None:
    store = store_factory()
    for n in range(KEEP_PARSED + 2):
        store.save_parsed_checklist(f"k{n}", f"[{n}]")
    newest = [f"k{n}" for n in range(2, KEEP_PARSED + 2)]
    assert _keys(store) == newest
    assert store.parsed_checklist("k0") is None and store.parsed_checklist("k1") is None
    store.save_parsed_checklist("k2", "[2]")  # saved again: now the newest, nothing dropped
    assert _keys(store) == newest
    store.save_parsed_checklist("k9", "[9]")
    assert "k3" not in _keys(store) and {"k2", "k9"} <= set(_keys(store))


def test_the_key_just_saved_stays_when_the_clock_stands_still(
    store_factory: StoreFactory,
) -> None:
    store = store_factory(clock=lambda: T0)  # every save at one instant: no order by time
    for n in range(KEEP_PARSED + 3):
        store.save_parsed_checklist(f"k{n}", "[]")
        assert f"k{n}" in _keys(store) and len(_keys(store)) <= KEEP_PARSED


@pytest.mark.parametrize("backend", ["file", "postgresql"])
def test_the_parse_is_shared_by_every_store_on_one_database(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    stores = StoreFactory(backend, request, tmp_path)
    one, two = stores(), stores()
    one.save_parsed_checklist("k", "[1]")
    assert two.parsed_checklist("k") == "[1]"
