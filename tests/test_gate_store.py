"""Accepted warnings and overrides in the store: append-only events, idempotent per request,
current only while the item's text is unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import Store, UnknownItem
from tests.support.store_helpers import checklist, item


@pytest.fixture(params=["memory", "file"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store = Store.open(":memory:" if request.param == "memory" else tmp_path / "p.db")
    store.import_checklist(checklist())
    return store


def test_acceptances_keep_what_was_accepted_by_whom_and_why(loaded: Store) -> None:
    a = loaded.accept_result(
        "tls", "tls_certificate", "WARN", "abc123", "alice", "partner needs TLS 1.0",
        summary="TLS 1.0 accepted", source="slack",
    )  # fmt: skip
    (stored,) = loaded.acceptances()
    assert stored == a
    assert (stored.item_id, stored.check_id, stored.status, stored.fingerprint) == (
        "tls", "tls_certificate", "WARN", "abc123",
    )  # fmt: skip
    assert (stored.user, stored.reason, stored.source) == (
        "alice",
        "partner needs TLS 1.0",
        "slack",
    )
    assert stored.at.tzinfo is not None


def test_a_repeated_request_is_applied_once(loaded: Store) -> None:
    for _ in range(2):
        loaded.accept_result("tls", "c", "WARN", "f", "alice", "ok", request_key="view:V1:h")
        loaded.override("backups", "carol", "vendor outage", request_key="view:V2:h")
    assert len(loaded.acceptances()) == 1
    assert len(loaded.overrides()["backups"]) == 1
    assert [s.user for s in loaded.signoffs()["backups"]] == ["carol"]


def test_an_override_is_a_signoff_too_and_both_need_a_current_item(loaded: Store) -> None:
    o = loaded.override("backups", "carol", "vendor outage")
    assert loaded.overrides() == {"backups": [o]}
    assert loaded.signoffs()["backups"][0].note == "override: vendor outage"
    with pytest.raises(UnknownItem):
        loaded.override("nope", "carol", "x")
    with pytest.raises(UnknownItem):
        loaded.accept_result("nope", "c", "WARN", "f", "alice", "x")
    assert len(loaded.acceptances()) == 0


def test_a_changed_item_text_retires_its_acceptances_and_overrides(loaded: Store) -> None:
    loaded.accept_result("tls", "c", "WARN", "f", "alice", "ok")
    loaded.override("tls", "carol", "outage")
    loaded.import_checklist(checklist(item("tls", "TLS certificate installed"), item("x")))
    assert len(loaded.acceptances()) == 1 and "tls" in loaded.overrides()  # same text: kept
    loaded.import_checklist(checklist(item("tls", "TLS 1.3 only"), item("x")))
    assert loaded.acceptances() == [] and loaded.overrides() == {}


@pytest.mark.parametrize("table", ["acceptance_events", "override_events"])
def test_the_events_are_append_only(loaded: Store, table: str) -> None:
    loaded.accept_result("tls", "c", "WARN", "f", "alice", "ok")
    loaded.override("tls", "carol", "outage")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        loaded.db.execute(f"UPDATE {table} SET user = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        loaded.db.execute(f"DELETE FROM {table}")
