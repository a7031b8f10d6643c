"""`preflight store copy`: SQLite -> PostgreSQL -> SQLite, every row kept, ids and all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from checks.base import Result, Status
from store import Store, StoreError
from store.copy import copy_store, dump, tables
from tests.support.store_helpers import StoreFactory, checklist, item


def _fill(s: Store) -> None:
    s.import_checklist(checklist())
    s.add_signoff("tls", "alice", note="ok", request_key="r1")
    s.add_signoff("backups", "bob", na_reason="no database")
    s.remove_signoff("tls", "alice")
    s.add_signoff("tls", "alice", note="again")
    s.vote("email-service", "ses", "carol", request_key="r2")
    s.close_decision("email-service", "ses", "dave", "cheapest")
    s.reopen_decision("email-service", "dave", "pricing changed")
    run = s.start_run("deployment-fails", "erin", channel="C1")
    s.step_event(run.id, 0, "done", "erin", "rolled back")
    s.end_run(run.id, "erin")
    s.save_result(
        Result(check_id="tls_certificate", status=Status.PASS, summary="1 host", observations=1,
               observed_at=datetime(2026, 3, 1, tzinfo=UTC))
    )  # fmt: skip
    s.accept_result("tls", "tls_certificate", "WARN", "fp", "alice", "known")
    s.override("runbook", "frank", "done by hand")
    s.assign("tls", "U_BOB", "alice")
    s.subscribe("C2", "alice")
    s.save_digest_snapshot("C2", {"ready": 1})
    s.audit("alice", "signoff", "tls", "ünïcode ✅")
    s.claim_request("trigger-1")
    s.import_checklist(checklist(item("tls", "TLS v2"), sha="v2"))


def test_sqlite_to_postgresql_and_back_is_lossless(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sqlite = StoreFactory("file", request, tmp_path)
    pg = StoreFactory("postgresql", request, tmp_path)
    source = sqlite()
    _fill(source)
    target = pg()
    copied = copy_store(source, target)
    assert copied["signoff_events"] == 5 and copied["checklist_versions"] == 2
    assert set(copied) == set(tables(source)) == set(tables(target))
    assert dump(source) == dump(target)
    # Derived state reads the same, and new rows get fresh ids after the copied ones.
    assert target.signoffs() == source.signoffs()
    assert target.decision_history("email-service") == source.decision_history("email-service")
    assert target.start_run("r", "x").id == 2
    back = Store.open(tmp_path / "back.db")
    request.addfinalizer(back.close)
    copy_store(target, back)
    assert dump(back) == dump(target)


def test_copy_refuses_a_target_with_data(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source = StoreFactory("memory", request, tmp_path)()
    _fill(source)
    target = StoreFactory("postgresql", request, tmp_path)()
    target.audit("x", "y")
    with pytest.raises(StoreError, match="not empty"):
        copy_store(source, target)
    assert len(target.audit_log()) == 1


def test_cli_store_copy(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    path = tmp_path / "src.db"
    with Store.open(path) as s:
        _fill(s)
    url = StoreFactory("postgresql", request, tmp_path).target
    result = CliRunner().invoke(app, ["store", "copy", str(path), url])
    assert result.exit_code == 0, result.output
    assert "the exports match" in result.output
    again = CliRunner().invoke(app, ["store", "copy", str(path), url])
    assert again.exit_code == 2 and "not empty" in again.output
    assert "not-a-real-password" not in again.output
    missing = CliRunner().invoke(app, ["store", "copy", str(tmp_path / "nope.db"), url])
    assert missing.exit_code == 2 and "no store at" in missing.output
