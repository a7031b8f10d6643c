"""The store: every public method, on SQLite (in memory and on a file) and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlite_utils

from bot.model import ItemKind
from checks.base import Result, Status
from store import (
    DecisionClosed,
    DecisionNotClosed,
    DuplicateItem,
    RunEnded,
    Store,
    StoreError,
    UnknownAction,
    UnknownDecision,
    UnknownItem,
    UnknownOption,
    UnknownRun,
    open_database,
)
from store.db import MIGRATIONS
from tests.support.store_helpers import StoreFactory, checklist, email_decision, item

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()


@pytest.fixture
def loaded(store: Store) -> Store:
    store.import_checklist(checklist())
    return store


class Clock:
    """A clock the test moves by hand, one minute per reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


# --- opening and migrations ---------------------------------------------------------------------


def _pragma(db: sqlite_utils.Database, name: str) -> object:
    return db.execute(f"PRAGMA {name}").fetchone()[0]


def test_file_database_uses_wal_and_safe_pragmas(tmp_path: Path) -> None:
    db = open_database(tmp_path / "sub" / "dir" / "p.db")  # parent folders are created
    assert _pragma(db, "journal_mode") == "wal"
    assert _pragma(db, "foreign_keys") == 1
    assert _pragma(db, "synchronous") == 1  # NORMAL
    assert _pragma(db, "busy_timeout") == 5000
    db.close()


@pytest.mark.parametrize("path", [None, ":memory:"])
def test_memory_database(path: str | None) -> None:
    db = open_database(path)
    assert db.memory or _pragma(db, "journal_mode") == "memory"
    assert _pragma(db, "foreign_keys") == 1
    db.close()


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    Store.open(path).close()
    s = Store.open(path)
    applied = s.db.execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert applied == [
        ("m001_initial",),
        ("m002_assignments",),
        ("m003_checklist_source",),
        ("m004_acceptances_overrides",),
        ("m006_decision_polls_digest_slots",),
        ("m007_parsed_checklists",),
    ]
    expected = {
        "checklist_versions", "items", "decisions", "decision_options", "signoff_events",
        "vote_events", "decision_events", "check_results", "latest_results", "runbook_runs",
        "runbook_step_events", "digest_subscriptions", "digest_snapshots", "audit_log",
        "processed_requests", "signoff_latest", "assignment_events", "decision_polls",
        "digest_slots", "parsed_checklists",
    }  # fmt: skip
    assert expected <= set(s.db.table_names())
    s.close()


def test_an_older_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = open_database(tmp_path / "p.db")
    MIGRATIONS.apply(db, stop_before="m002_assignments")  # as the first release left it
    assert "assignment_events" not in db.table_names()
    db.close()
    s = Store.open(tmp_path / "p.db")
    s.import_checklist(checklist())
    s.assign("tls", "U_BOB", "U_ALICE")
    assert s.assignments() == {"tls": "U_BOB"}
    s.close()


def test_store_accepts_a_plain_sqlite_utils_database(tmp_path: Path) -> None:
    s = Store(sqlite_utils.Database(tmp_path / "plain.db"))
    assert _pragma(s.db, "journal_mode") == "wal"
    assert _pragma(s.db, "foreign_keys") == 1
    s.import_checklist(checklist())
    assert s.current_version() == 1
    s.close()


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with Store.open(path) as s:
        s.import_checklist(checklist())
        s.add_signoff("tls", "alice")
        s.claim_request("trigger-1")
    with Store.open(path) as s:
        assert [x.user for x in s.signoffs()["tls"]] == ["alice"]
        assert s.claim_request("trigger-1") is False


@pytest.mark.parametrize(
    "table",
    [
        "signoff_events", "vote_events", "decision_events", "runbook_step_events",
        "digest_subscriptions", "assignment_events", "audit_log",
    ],
)  # fmt: skip
def test_event_tables_are_append_only(loaded: Store, table: str) -> None:
    loaded.add_signoff("tls", "alice")
    loaded.vote("email-service", "ses", "bob")
    loaded.close_decision("email-service", "ses", "carol")
    loaded.step_event(loaded.start_run("deployment-fails", "dave").id, 1, "done", "dave")
    loaded.subscribe("C1", "erin")
    loaded.assign("tls", "frank", "erin")
    loaded.audit("alice", "signoff", "tls")
    refused = (sqlite3.IntegrityError, psycopg.errors.RaiseException)  # the backend's trigger
    with pytest.raises(refused, match="append-only"):
        loaded.db.execute(f"UPDATE {table} SET {_col(table)} = 'mallory'")
    with pytest.raises(refused, match="append-only"):
        loaded.db.execute(f"DELETE FROM {table}")


def _col(table: str) -> str:
    return {"audit_log": "actor", "assignment_events": "assignee"}.get(table, "user")


# --- checklist versions -------------------------------------------------------------------------


def test_nothing_imported_yet(store: Store) -> None:
    assert store.current_version() is None
    assert store.current_item_ids() == set()
    assert store.signoffs() == {}
    assert store.decision_states() == {}


def test_first_import(store: Store) -> None:
    report = store.import_checklist(checklist(sha="abc"))
    assert report.version == 1
    assert report.first_import and report.new_version
    assert report.added == ["tls", "backups", "runbook", "email-decision"]
    assert (report.changed, report.removed, report.unchanged, report.decisions) == ([], [], 0, 1)
    assert store.current_version() == 1
    assert store.current_item_ids() == {"tls", "backups", "runbook", "email-decision"}


def test_same_document_makes_no_new_version(store: Store) -> None:
    store.import_checklist(checklist(sha="abc"))
    report = store.import_checklist(checklist(sha="abc"))
    assert (report.version, report.new_version, report.first_import) == (1, False, False)
    assert (report.added, report.changed, report.removed, report.unchanged) == ([], [], [], 4)
    assert store.current_version() == 1


def test_same_document_with_new_check_bindings_is_a_new_version(store: Store) -> None:
    store.import_checklist(checklist(item("tls"), sha="abc"))
    report = store.import_checklist(
        checklist(item("tls", kind=ItemKind.AUTOMATED, checks=("tls_certificate",)), sha="abc")
    )
    assert (report.version, report.changed) == (2, ["tls"])


def test_import_of_an_edited_checklist(store: Store) -> None:
    store.import_checklist(
        checklist(
            item("tls", "TLS certificate installed"),
            item("backups", "Automated backups enabled"),
            item("runbook", "Runbook reviewed"),
            item("moved", "Alerts route to on-call", section="Monitoring"),
            item("gone", "Old step"),
            sha="v1",
        )
    )
    for item_id in ("tls", "backups", "runbook", "moved", "gone"):
        store.add_signoff(item_id, "alice")

    report = store.import_checklist(
        checklist(
            item("tls", "TLS certificate installed", line=40),  # only its line moved
            item("backups", "Automated backups enabled, tested monthly"),  # reworded
            item("runbook", "Runbook reviewed", kind=ItemKind.AUTOMATED, checks=("runbook",)),
            item("moved", "Alerts route to on-call", section="Ops", path=("Ops", "Alerts")),
            item("fresh", "A new requirement"),
            sha="v2",
        )
    )
    assert report.version == 2 and not report.first_import
    assert report.added == ["fresh"]
    assert report.changed == ["backups", "runbook", "moved"]
    assert report.removed == ["gone"]
    assert report.unchanged == 1
    assert store.current_item_ids() == {"tls", "backups", "runbook", "moved", "fresh"}

    # What was signed is still what is asked, except where the words changed.
    standing = store.signoffs()
    assert set(standing) == {"tls", "runbook", "moved"}
    # The removed item's and the reworded item's sign-offs stay in history.
    assert [e["action"] for e in store.signoff_history("gone")] == ["signoff"]
    assert [e["version"] for e in store.signoff_history("backups")] == [1]
    with pytest.raises(UnknownItem):
        store.add_signoff("gone", "alice")


def test_removed_then_restored_item_comes_back_with_its_signoffs(store: Store) -> None:
    # Issue 8: switching checklists archives removed items; re-added (same text), they come
    # back with their history. With other text, only new sign-offs count.
    store.import_checklist(checklist(item("a"), item("b"), sha="1"))
    store.add_signoff("a", "alice")
    store.import_checklist(checklist(item("b"), sha="2"))
    assert "a" not in store.signoffs()
    report = store.import_checklist(checklist(item("a"), item("b"), sha="3"))
    assert report.added == ["a"]
    assert [s.user for s in store.signoffs()["a"]] == ["alice"]
    store.import_checklist(checklist(item("b"), sha="4"))
    store.import_checklist(checklist(item("a", "Do it differently"), item("b"), sha="5"))
    assert "a" not in store.signoffs()
    assert store.remove_signoff("a", "alice") is False
    store.add_signoff("a", "alice")
    assert [s.user for s in store.signoffs()["a"]] == ["alice"]


def test_checklist_without_source_sha_is_versioned_by_content(store: Store) -> None:
    store.import_checklist(checklist(item("a")))
    assert store.import_checklist(checklist(item("a"))).new_version is False
    assert store.import_checklist(checklist(item("a", "Do it differently"))).version == 2


@pytest.mark.parametrize(
    "bad",
    [
        checklist(item("a"), item("a")),
        checklist(item("a"), decisions=(email_decision("ses"), email_decision("ses"))),
        checklist(item("a"), decisions=(email_decision("ses", "ses"),)),
    ],
)
def test_duplicate_ids_are_refused(store: Store, bad: object) -> None:
    with pytest.raises(DuplicateItem):
        store.import_checklist(bad)  # type: ignore[arg-type]
    assert store.current_version() is None


# --- sign-offs ----------------------------------------------------------------------------------


def test_signoff_and_derived_state(loaded: Store) -> None:
    s = loaded.add_signoff("tls", "alice", note="cert valid until 2027", source="slack")
    assert (s.item_id, s.user, s.note, s.source, s.na_reason) == (
        "tls", "alice", "cert valid until 2027", "slack", None,
    )  # fmt: skip
    assert s.at.tzinfo is not None and s.at.utcoffset() == timedelta(0)
    loaded.add_signoff("tls", "bob")
    loaded.add_signoff("backups", "bob", na_reason="no database yet")
    standing = loaded.signoffs()
    assert [x.user for x in standing["tls"]] == ["alice", "bob"]
    assert standing["tls"][0] == s
    assert standing["backups"][0].not_applicable
    assert standing["backups"][0].na_reason == "no database yet"
    assert loaded.signoff_count() == 3


def test_signoff_unsign_signoff(loaded: Store) -> None:
    loaded.add_signoff("tls", "alice", note="first")
    assert loaded.remove_signoff("tls", "alice") is True
    assert "tls" not in loaded.signoffs()
    loaded.add_signoff("tls", "alice", note="again")
    assert [x.note for x in loaded.signoffs()["tls"]] == ["again"]
    history = loaded.signoff_history("tls")
    assert [(e["user"], e["action"]) for e in history] == [
        ("alice", "signoff"), ("alice", "unsign"), ("alice", "signoff"),
    ]  # fmt: skip
    assert all(isinstance(e["at"], datetime) for e in history)
    assert loaded.signoff_count() == 3


def test_unsign_without_standing_signoff_writes_nothing(loaded: Store) -> None:
    assert loaded.remove_signoff("tls", "alice") is False
    assert loaded.remove_signoff("not-an-item", "alice") is False
    loaded.add_signoff("tls", "bob")
    assert loaded.remove_signoff("tls", "alice") is False
    assert loaded.signoff_count() == 1


def test_signoff_again_replaces_the_note(loaded: Store) -> None:
    loaded.add_signoff("tls", "alice", note="old")
    loaded.add_signoff("tls", "alice", note="new evidence")
    assert [(x.user, x.note) for x in loaded.signoffs()["tls"]] == [("alice", "new evidence")]


def test_signoff_on_unknown_item(store: Store) -> None:
    with pytest.raises(UnknownItem):
        store.add_signoff("tls", "alice")  # nothing imported yet
    store.import_checklist(checklist())
    with pytest.raises(UnknownItem, match="nope"):
        store.add_signoff("nope", "alice")
    assert store.signoff_count() == 0


def test_signoff_times_come_from_the_clock(store_factory: StoreFactory) -> None:
    s = store_factory(clock=Clock())
    s.import_checklist(checklist())
    s.add_signoff("tls", "alice")
    assert s.signoffs()["tls"][0].at == T0 + timedelta(minutes=2)


# --- request keys -------------------------------------------------------------------------------


def test_signoff_request_key_applies_once(loaded: Store) -> None:
    first = loaded.add_signoff("tls", "alice", note="n", request_key="a-ts-1")
    again = loaded.add_signoff("tls", "alice", note="n", request_key="a-ts-1")
    assert again == first
    assert loaded.signoff_count() == 1


def test_unsign_request_key_applies_once(loaded: Store) -> None:
    loaded.add_signoff("tls", "alice")
    assert loaded.remove_signoff("tls", "alice", request_key="k") is True
    loaded.add_signoff("tls", "alice")
    # A Slack retry of the removal must not remove the newer sign-off.
    assert loaded.remove_signoff("tls", "alice", request_key="k") is True
    assert [x.user for x in loaded.signoffs()["tls"]] == ["alice"]
    assert loaded.remove_signoff("runbook", "alice", request_key="k2") is False
    assert loaded.remove_signoff("runbook", "alice", request_key="k2") is False


def test_failed_write_does_not_use_up_its_key(loaded: Store) -> None:
    with pytest.raises(UnknownItem):
        loaded.add_signoff("nope", "alice", request_key="k")
    assert loaded.add_signoff("tls", "alice", request_key="k").item_id == "tls"


def test_claimed_request_does_not_block_the_write_with_the_same_key(loaded: Store) -> None:
    # The middleware claims a trigger_id; the handler's write may carry the same key.
    assert loaded.claim_request("trigger-9") is True
    loaded.add_signoff("tls", "alice", request_key="trigger-9")
    assert loaded.signoff_count() == 1


def test_claim_request(store: Store) -> None:
    assert store.claim_request("x") is True
    assert store.claim_request("x") is False
    assert store.claim_request("y") is True


# --- decisions ----------------------------------------------------------------------------------


def test_vote_change_of_mind(loaded: Store) -> None:
    v = loaded.vote("email-service", "ses", "alice", source="slack")
    assert (v.decision_id, v.option_id, v.user, v.source) == (
        "email-service",
        "ses",
        "alice",
        "slack",
    )
    loaded.vote("email-service", "sendgrid", "bob")
    loaded.vote("email-service", "mailgun", "alice")
    assert loaded.votes("email-service") == {"bob": "sendgrid", "alice": "mailgun"}
    history = loaded.vote_history("email-service")
    assert [(x.user, x.option_id) for x in history] == [
        ("alice", "ses"), ("bob", "sendgrid"), ("alice", "mailgun"),
    ]  # fmt: skip
    assert history[0] == v


def test_vote_request_key_applies_once(loaded: Store) -> None:
    first = loaded.vote("email-service", "ses", "alice", request_key="k")
    assert loaded.vote("email-service", "mailgun", "alice", request_key="k") == first
    assert loaded.votes("email-service") == {"alice": "ses"}
    assert len(loaded.vote_history("email-service")) == 1


def test_a_transaction_commits_its_writes_together_or_not_at_all(loaded: Store) -> None:
    with loaded.transaction():
        loaded.vote("email-service", "ses", "alice", request_key="t1")
        loaded.audit("alice", "vote", "email-service", "ses")
    assert loaded.votes("email-service") == {"alice": "ses"}
    assert [e.action for e in loaded.audit_log()] == ["vote"]

    class Boom(Exception):
        pass

    with pytest.raises(Boom), loaded.transaction():
        loaded.vote("email-service", "sendgrid", "bob", request_key="t2")
        loaded.audit("bob", "vote", "email-service", "sendgrid")
        raise Boom
    # Neither the vote nor its audit entry, and the request key is not used up.
    assert loaded.votes("email-service") == {"alice": "ses"}
    assert [e.action for e in loaded.audit_log()] == ["vote"]
    loaded.vote("email-service", "sendgrid", "bob", request_key="t2")
    assert loaded.votes("email-service") == {"alice": "ses", "bob": "sendgrid"}
    # A refused write inside one rolls the whole transaction back too.
    loaded.close_decision("email-service", "ses", "carol")
    with pytest.raises(DecisionClosed), loaded.transaction():
        loaded.audit("dave", "vote", "email-service", "ses")
        loaded.vote("email-service", "ses", "dave")
    assert [e.actor for e in loaded.audit_log()] == ["alice"]


@pytest.mark.parametrize(
    ("decision", "option", "error"),
    [("nope", "ses", UnknownDecision), ("email-service", "postmark", UnknownOption)],
)
def test_vote_on_unknown(loaded: Store, decision: str, option: str, error: type) -> None:
    with pytest.raises(error):
        loaded.vote(decision, option, "alice")
    with pytest.raises(error):
        loaded.close_decision(decision, option, "carol")


def test_unknown_decision_reads(loaded: Store) -> None:
    for read in (loaded.votes, loaded.decision_state):
        with pytest.raises(UnknownDecision):
            read("nope")
    with pytest.raises(UnknownDecision):
        loaded.reopen_decision("nope", "carol")
    assert loaded.vote_history("nope") == []


def test_close_and_reopen(loaded: Store) -> None:
    state = loaded.decision_state("email-service")
    assert (state.status, state.chosen, state.deciders, state.voters) == ("open", None, [], [])
    loaded.vote("email-service", "ses", "alice")
    loaded.vote("email-service", "sendgrid", "bob")

    closed = loaded.close_decision("email-service", "ses", "carol", "cheapest at our volume")
    assert closed.status == "accepted" and not closed.is_open
    assert (closed.chosen, closed.closed_by, closed.rationale) == (
        "ses", "carol", "cheapest at our volume",
    )  # fmt: skip
    assert closed.closed_at is not None and closed.closed_at.tzinfo is not None
    assert (closed.supersedes, closed.deciders, closed.voters) == (
        None,
        ["carol"],
        ["alice", "bob"],
    )
    assert loaded.decision_state("email-service") == closed

    with pytest.raises(DecisionClosed):
        loaded.vote("email-service", "sendgrid", "dave")
    with pytest.raises(DecisionClosed):
        loaded.close_decision("email-service", "sendgrid", "carol")

    reopened = loaded.reopen_decision("email-service", "erin", "SES sandbox limits")
    assert (reopened.status, reopened.chosen, reopened.closed_by) == ("open", None, None)
    assert reopened.deciders == ["carol", "erin"]
    with pytest.raises(DecisionNotClosed):
        loaded.reopen_decision("email-service", "erin")

    loaded.vote("email-service", "sendgrid", "alice")
    again = loaded.close_decision("email-service", "sendgrid", "carol", "deliverability")
    assert (again.chosen, again.supersedes) == ("sendgrid", "ses")
    assert again.voters == ["bob", "alice"]
    assert [e["action"] for e in loaded.decision_history("email-service")] == [
        "close", "reopen", "close",
    ]  # fmt: skip
    assert loaded.decision_history("email-service")[1]["rationale"] == "SES sandbox limits"


def test_reclosing_with_the_same_option_supersedes_nothing(loaded: Store) -> None:
    loaded.close_decision("email-service", "ses", "carol")
    loaded.reopen_decision("email-service", "carol")
    assert loaded.close_decision("email-service", "ses", "carol").supersedes is None


def test_decision_request_keys_return_the_earlier_state(loaded: Store) -> None:
    closed = loaded.close_decision("email-service", "ses", "carol", request_key="c1")
    reopened = loaded.reopen_decision("email-service", "carol", request_key="r1")
    loaded.vote("email-service", "mailgun", "alice")
    assert loaded.close_decision("email-service", "ses", "carol", request_key="c1") == closed
    assert loaded.reopen_decision("email-service", "carol", request_key="r1") == reopened
    assert loaded.decision_state("email-service").is_open
    assert len(loaded.decision_history("email-service")) == 2


def test_decision_states_in_document_order(store: Store) -> None:
    ci = email_decision("gha", "gitlab")
    ci = type(ci)(id="ci-cd", topic="CI/CD", question="CI platform", options=ci.options)
    store.import_checklist(checklist(item("a"), decisions=(email_decision("ses"), ci)))
    store.close_decision("ci-cd", "gha", "carol")
    states = store.decision_states()
    assert list(states) == ["email-service", "ci-cd"]
    assert [s.status for s in states.values()] == ["open", "accepted"]


def test_vote_for_an_option_dropped_from_the_document_no_longer_counts(store: Store) -> None:
    store.import_checklist(checklist(sha="1"))
    store.vote("email-service", "mailgun", "alice")
    store.vote("email-service", "ses", "bob")
    store.import_checklist(checklist(decisions=(email_decision("ses", "sendgrid"),), sha="2"))
    assert store.votes("email-service") == {"bob": "ses"}
    assert len(store.vote_history("email-service")) == 2


# --- check results ------------------------------------------------------------------------------


def _result(check_id: str, status: Status, at: datetime, **evidence: object) -> Result:
    return Result(
        status, f"{check_id} is {status}", evidence=dict(evidence), check_id=check_id,
        started_at=at - timedelta(seconds=1), duration_ms=1000, observed_at=at, max_age_s=600,
    )  # fmt: skip


def test_results_latest_and_history(store: Store) -> None:
    assert store.latest_results() == {}
    r1 = _result("tls_certificate", Status.FAIL, T0, days_left=3)
    r2 = _result("tls_certificate", Status.PASS, T0 + timedelta(minutes=5), days_left=90)
    r3 = _result("dns_records", Status.WARN, T0)
    store.save_result(r1)
    store.save_result(r2)
    store.save_result(r3)
    assert store.latest_results() == {"dns_records": r3, "tls_certificate": r2}
    assert store.result_history("tls_certificate") == [r2, r1]
    assert store.result_history("tls_certificate", limit=1) == [r2]
    assert store.result_history("nope") == []


def test_a_late_older_result_does_not_replace_a_newer_one(store: Store) -> None:
    newer = _result("db", Status.PASS, T0 + timedelta(minutes=1))
    older = _result("db", Status.FAIL, T0)
    store.save_result(newer)
    store.save_result(older)
    assert store.latest_results()["db"] == newer
    store.save_results([older, _result("db", Status.ERROR, T0 + timedelta(minutes=2)), older])
    assert store.latest_results()["db"].status is Status.ERROR
    assert len(store.result_history("db", limit=100)) == 5


def test_result_without_check_id_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.save_result(Result(Status.PASS, "ok"))


def test_result_evidence_round_trips(store: Store) -> None:
    r = _result("headers", Status.WARN, T0, missing=["csp", "hsts"], nested={"a": 1}, ok=True)
    store.save_result(r)
    assert store.latest_results()["headers"].evidence == r.evidence


# --- runbook runs -------------------------------------------------------------------------------


def test_runbook_run(store: Store) -> None:
    run = store.start_run("deployment-fails", "alice", channel="C1", source="slack")
    assert (run.runbook_id, run.started_by, run.channel, run.thread_ts) == (
        "deployment-fails", "alice", "C1", None,
    )  # fmt: skip
    assert run.active and run.events == [] and run.source == "slack"
    store.set_run_message(run.id, "C1", "1700000000.0001")
    e1 = store.step_event(run.id, 1, "done", "alice")
    store.step_event(run.id, 2, "skip", "bob", "not on ECS")
    store.step_event(run.id, 3, "note", "bob", "rolled back at 10:02")
    store.step_event(run.id, 1, "undo", "alice")
    store.step_event(run.id, 3, "done", "carol")
    got = store.run(run.id)
    assert got.thread_ts == "1700000000.0001"
    assert got.events[0] == e1
    assert [(e.step, e.action, e.user) for e in got.events] == [
        (1, "done", "alice"), (2, "skip", "bob"), (3, "note", "bob"), (1, "undo", "alice"),
        (3, "done", "carol"),
    ]  # fmt: skip
    assert {k: v.action for k, v in got.step_states().items()} == {2: "skip", 3: "done"}

    ended = store.end_run(run.id, "carol")
    assert not ended.active and ended.ended_by == "carol" and ended.ended_at is not None
    assert len(ended.events) == 5
    with pytest.raises(RunEnded):
        store.step_event(run.id, 4, "done", "alice")
    with pytest.raises(RunEnded):
        store.end_run(run.id, "carol")


def test_active_runs(store: Store) -> None:
    a = store.start_run("deployment-fails", "alice", channel="C1")
    b = store.start_run("production-issues", "bob", channel="C2")
    c = store.start_run("final-preparation", "bob")
    store.step_event(b.id, 1, "done", "bob")
    store.end_run(a.id, "alice")
    assert [r.id for r in store.active_runs()] == [b.id, c.id]
    assert [(r.id, len(r.events)) for r in store.active_runs("C2")] == [(b.id, 1)]
    assert store.active_runs("C1") == []


def test_unknown_run(store: Store) -> None:
    with pytest.raises(UnknownRun):
        store.run(42)
    with pytest.raises(UnknownRun):
        store.step_event(42, 1, "done", "alice")
    with pytest.raises(UnknownRun):
        store.end_run(42, "alice")
    with pytest.raises(UnknownRun):
        store.set_run_message(42, "C1", "1.0")


@pytest.mark.parametrize("action", ["finish", "DONE", ""])
def test_unknown_step_action(store: Store, action: str) -> None:
    run = store.start_run("deployment-fails", "alice")
    with pytest.raises(UnknownAction):
        store.step_event(run.id, 1, action, "alice")
    with pytest.raises(ValueError):  # UnknownAction is a ValueError too
        store.step_event(run.id, 1, action, "alice")
    assert store.run(run.id).events == []


def test_runbook_request_keys(store: Store) -> None:
    run = store.start_run("deployment-fails", "alice", request_key="t1")
    assert store.start_run("deployment-fails", "alice", request_key="t1") == run
    e = store.step_event(run.id, 1, "done", "alice", request_key="a1")
    assert store.step_event(run.id, 1, "done", "alice", request_key="a1") == e
    ended = store.end_run(run.id, "alice", request_key="e1")
    assert store.end_run(run.id, "alice", request_key="e1") == ended
    assert len(store.active_runs()) == 0 and len(store.run(run.id).events) == 1


# --- digests ------------------------------------------------------------------------------------


def test_subscriptions(store: Store) -> None:
    assert store.subscriptions() == []
    sub = store.subscribe("C2", "alice")
    assert (sub.channel, sub.user, sub.schedule) == ("C2", "alice", "daily 09:00")
    store.subscribe("C1", "bob", "weekly mon 08:00")
    store.subscribe("C2", "carol", "daily 17:30")  # replaces the schedule
    assert [(s.channel, s.user, s.schedule) for s in store.subscriptions()] == [
        ("C1", "bob", "weekly mon 08:00"), ("C2", "carol", "daily 17:30"),
    ]  # fmt: skip
    assert store.unsubscribe("C2", "dave") is True
    assert store.unsubscribe("C2", "dave") is False
    assert store.unsubscribe("C9", "dave") is False
    assert [s.channel for s in store.subscriptions()] == ["C1"]
    store.subscribe("C2", "erin")
    assert [s.channel for s in store.subscriptions()] == ["C1", "C2"]


def test_digest_snapshots(store: Store) -> None:
    assert store.last_digest_snapshot("C1") is None
    store.save_digest_snapshot("C1", {"ready": False, "blockers": ["tls"]})
    store.save_digest_snapshot("C1", {"ready": True, "blockers": []})
    store.save_digest_snapshot("C2", {"ready": False})
    assert store.last_digest_snapshot("C1") == {"ready": True, "blockers": []}
    assert store.last_digest_snapshot("C2") == {"ready": False}


# --- audit --------------------------------------------------------------------------------------


def test_audit_log(store: Store) -> None:
    store.audit("alice", "signoff", "tls", "cert ok", source="slack")
    store.audit("mallory", "close_decision", "email-service", "ses", allowed=False)
    store.audit("bob", "vote", "email-service")
    log = store.audit_log()
    assert [(e.actor, e.action, e.allowed) for e in log] == [
        ("bob", "vote", True), ("mallory", "close_decision", False), ("alice", "signoff", True),
    ]  # fmt: skip
    assert (log[2].target, log[2].detail, log[2].source) == ("tls", "cert ok", "slack")
    assert log[0].at.tzinfo is not None
    assert [e.actor for e in store.audit_log(limit=1)] == ["bob"]


def test_store_errors_share_a_base() -> None:
    for error in (UnknownItem, UnknownDecision, UnknownOption, DecisionClosed, DecisionNotClosed,
                  UnknownRun, RunEnded, UnknownAction, DuplicateItem):  # fmt: skip
        assert issubclass(error, StoreError)
        assert error.__doc__


# --- the signoffs() cache -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["file", "postgresql"])
def test_signoffs_see_writes_from_another_connection(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    target = StoreFactory(backend, request, tmp_path).target
    with Store.open(target) as bot, Store.open(target) as cli:
        bot.import_checklist(checklist())
        bot.add_signoff("tls", "alice")
        assert [s.user for s in bot.signoffs()["tls"]] == ["alice"]
        cli.add_signoff("tls", "bob")
        assert [s.user for s in bot.signoffs()["tls"]] == ["alice", "bob"]
        cli.remove_signoff("tls", "alice")
        assert [s.user for s in bot.signoffs()["tls"]] == ["bob"]


def test_signoffs_see_writes_made_through_the_database(loaded: Store) -> None:
    loaded.add_signoff("tls", "alice")
    assert "tls" in loaded.signoffs()
    loaded.db.execute(
        "INSERT INTO signoff_events (version, item_id, user, action, at, source) "
        "VALUES (1, 'tls', 'alice', 'unsign', '2026-01-01T00:00:00.000000+00:00', 'test')"
    )
    assert loaded.signoffs() == {}


def test_changing_the_returned_signoffs_changes_nothing(loaded: Store) -> None:
    loaded.add_signoff("tls", "alice")
    first = loaded.signoffs()
    first["tls"].clear()
    first["backups"] = []
    assert {k: [s.user for s in v] for k, v in loaded.signoffs().items()} == {"tls": ["alice"]}


def test_latest_signoff_table_matches_the_history(loaded: Store) -> None:
    for user in ("alice", "bob", "carol"):
        loaded.add_signoff("tls", user)
        loaded.add_signoff("backups", user)
    loaded.remove_signoff("tls", "bob")
    loaded.add_signoff("tls", "alice", note="again")
    kept = loaded.db.execute("SELECT item_id, user, event_id FROM signoff_latest").fetchall()
    derived = loaded.db.execute(
        "SELECT item_id, user, MAX(id) FROM signoff_events GROUP BY item_id, user"
    ).fetchall()
    assert sorted(kept) == sorted(derived)


# --- with the real parser and the bundled checklist ---------------------------------------------


def test_bundled_checklist_imports_and_edits(store: Store) -> None:
    from bot.checklist import parse_checklist  # here: only this test depends on the parser

    text = (Path(__file__).parents[1] / "bot" / "content" / "checklist.md").read_text()
    first = store.import_checklist(parse_checklist(text))
    assert first.first_import and len(first.added) > 100 and first.decisions > 0
    assert store.import_checklist(parse_checklist(text)).new_version is False
    for decision_id in store.decision_states():
        assert store.decision_state(decision_id).is_open

    # Sign off every item, then add one requirement to the document.
    for item_id in first.added:
        store.add_signoff(item_id, "alice")
    lines = text.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("- [ ] "))
    lines.insert(at + 1, "- [ ] A brand new requirement")
    report = store.import_checklist(parse_checklist("\n".join(lines) + "\n"))
    assert len(report.added) == 1 and "brand-new-requirement" in report.added[0]
    assert (report.changed, report.removed) == ([], [])
    assert report.unchanged == len(first.added)
    assert set(store.signoffs()) == set(first.added)  # every sign-off survived the edit


# --- assignments --------------------------------------------------------------------------------


def test_assignments(loaded: Store) -> None:
    assert loaded.assignments() == {}
    a = loaded.assign("tls", "U_BOB", "U_ALICE", source="slack")
    assert a is not None and (a.item_id, a.assignee, a.assigned_by, a.source) == (
        "tls", "U_BOB", "U_ALICE", "slack",
    )  # fmt: skip
    loaded.assign("backups", "U_BOB", "U_ALICE")
    loaded.assign("tls", "U_CAROL", "U_ALICE")  # reassigned
    assert loaded.assignments() == {"backups": "U_BOB", "tls": "U_CAROL"}
    assert loaded.assign("backups", None, "U_ALICE") is None  # cleared
    assert loaded.assignments() == {"tls": "U_CAROL"}
    with pytest.raises(UnknownItem):
        loaded.assign("nope", "U_BOB", "U_ALICE")


def test_assignment_of_a_removed_item_no_longer_counts(store: Store) -> None:
    store.import_checklist(checklist(item("a"), item("b"), sha="1"))
    store.assign("a", "U_BOB", "U_ALICE")
    store.assign("b", "U_BOB", "U_ALICE")
    store.import_checklist(checklist(item("b"), sha="2"))
    assert store.assignments() == {"b": "U_BOB"}


def test_prune_requests_forgets_only_old_request_ids(store_factory: StoreFactory) -> None:
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    store = store_factory(clock=lambda: now[0])
    assert store.claim_request("old")
    now[0] += timedelta(days=8)
    assert store.claim_request("new")
    assert store.prune_requests(timedelta(days=7)) == 1
    assert store.claim_request("old")  # forgotten, so claimable again
    assert not store.claim_request("new")
