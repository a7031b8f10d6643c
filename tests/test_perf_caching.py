"""Readiness is cached per change of what it derives from, and store reads use their own
connections (issue 11): unrelated writes keep the cache, relevant ones (from any process)
renew it, and a reader never waits for a writer holding the write lock."""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.readiness import ItemStatus
from bot.services import Services
from bot.settings import Settings
from checks.base import Result, Status
from store import Store


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return Services.from_settings(Settings(preflight_db=str(tmp_path / "p.db")), env={})


def _manual(services: Services) -> str:
    return next(i.id for i in services.checklist.items if not i.checks and i.decision_id is None)


def test_unrelated_writes_keep_the_computed_readiness(services: Services) -> None:
    first = services.readiness()
    services.store.claim_request("seen:cmd:T1")  # the dedupe guard, on every request
    services.store.audit("U1", "looked", "status", source="slack")
    services.store.assign(_manual(services), "U2", "U1")
    assert services.readiness() is first


@pytest.mark.parametrize("change", ["signoff", "result", "vote", "override", "unsign"])
def test_each_kind_of_change_renews_it(services: Services, change: str) -> None:
    item_id = _manual(services)
    services.store.add_signoff(item_id, "U9")
    before = services.readiness()
    if change == "signoff":
        services.store.add_signoff(item_id, "U1", note="checked")
    elif change == "unsign":
        services.store.remove_signoff(item_id, "U9")
    elif change == "result":
        services.store.save_result(
            Result(Status.PASS, "1 host probed", check_id="tls_certificate", observations=1)
        )
    elif change == "vote":
        decision = services.checklist.decisions[0]
        services.store.vote(decision.id, decision.options[0].id, "U1")
    else:
        services.store.override(item_id, "U1", "accepted risk")
    after = services.readiness()
    assert after is not before
    assert services.readiness() is after
    if change == "unsign":
        assert after.state(item_id).status is ItemStatus.OPEN  # type: ignore[union-attr]


def test_a_write_by_another_process_is_seen(services: Services, tmp_path: Path) -> None:
    item_id = _manual(services)
    assert services.readiness().state(item_id).status is ItemStatus.OPEN  # type: ignore[union-attr]
    with Store.open(tmp_path / "p.db") as other:  # the CLI beside the bot
        other.add_signoff(item_id, "U7")
    assert services.readiness().state(item_id).status is ItemStatus.DONE  # type: ignore[union-attr]
    assert [s.user for s in services.store.signoffs()[item_id]] == ["U7"]


def test_a_result_going_stale_renews_it_without_any_write(services: Services) -> None:
    check_id = "tls_certificate"
    item = next(i for i in services.checklist.items if check_id in i.checks)
    observed = datetime.now(UTC) - timedelta(seconds=3600 - 1)  # stale within a second
    services.store.save_result(
        Result(
            Status.PASS,
            "1 host probed",
            check_id=check_id,
            observed_at=observed,
            max_age_s=3600,
            observations=1,
        )
    )
    first = services.readiness()
    threading.Event().wait(1.5)
    later = services.readiness()
    assert later is not first
    assert later.state(item.id).status is not first.state(item.id).status  # type: ignore[union-attr]


def test_reads_do_not_wait_for_the_writer(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "p.db")
    services = Services.from_settings(Settings(preflight_db=str(tmp_path / "p.db")), store=store)
    item_id = _manual(services)
    got: list[int] = []
    with store._write():  # a writer holds the lock and an open write transaction
        reader = threading.Thread(target=lambda: got.append(len(store.signoffs())))
        reader.start()
        reader.join(5)
        assert not reader.is_alive() and got == [0]
        store._db.execute(
            "INSERT INTO audit_log (at, actor, action, allowed, source) "
            "VALUES ('x', 'U', 'a', 1, 'cli')"
        )
    store.add_signoff(item_id, "U1")
    assert list(store.signoffs()) == [item_id]
    store.close()


def test_closing_the_store_closes_every_reader(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "p.db")
    threads = [threading.Thread(target=store.current_version) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.current_version()
    assert len(store._readers) == 4
    store.close()
    assert store._readers == []


OPS = st.lists(
    st.tuples(
        st.sampled_from(["signoff", "na", "unsign", "override", "result", "reimport"]),
        st.integers(0, 5),
        st.sampled_from(["U1", "U2", "U3"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_incremental_readiness_equals_a_fresh_one(ops: list[tuple[str, int, str]]) -> None:
    from bot.readiness import compute

    with tempfile.TemporaryDirectory() as tmp:
        services = Services.from_settings(Settings(preflight_db=f"{tmp}/p.db"), env={})
        store = services.store
        ids = [i.id for i in services.checklist.items[:6]]
        for op, n, user in ops:
            item_id = ids[n]
            if op == "signoff":
                store.add_signoff(item_id, user, note="ok")
            elif op == "na":
                store.add_signoff(item_id, user, na_reason="not here")
            elif op == "unsign":
                store.remove_signoff(item_id, user)
            elif op == "override":
                store.override(item_id, user, "risk accepted")
            elif op == "result":
                store.save_result(
                    Result(Status.PASS, "1 probed", check_id="tls_certificate", observations=1)
                )
            else:  # a new version in which this item's text changed: its sign-offs lapse
                text = services.checklist.source_text
                item = services.checklist.items[n]
                services.load(
                    dataclasses.replace(
                        services.checklist,
                        source_text=text.replace(item.text, item.text + " (v2)", 1),
                    )
                )
                ids = [i.id for i in services.checklist.items[:6]]
            got = services.readiness()
            assert dict(services._standing_signoffs(store.change_marks().version)) == (
                store.signoffs()
            )
            fresh = compute(
                services.checklist,
                store.signoffs(),
                store.latest_results(),
                store.decision_states(),
                got.computed_at,
                acceptances={},
                overrides=store.overrides(),
            )
            assert got.items == fresh.items and got.sections == fresh.sections
        store.close()
