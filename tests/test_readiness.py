"""The readiness rules: what makes an item done, and when the gate opens. Fail-closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import Checklist, Decision, Item, ItemKind, Option
from bot.readiness import Gate, ItemStatus, compute
from bot.services import Services
from bot.settings import Settings
from checks.base import Result, Status

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class S:  # a standing sign-off
    user: str
    at: datetime = NOW
    note: str = ""
    na_reason: str | None = None


@dataclass(frozen=True)
class D:  # a decision state
    status: str
    chosen: str | None = None


def result(check_id: str, status: Status, age_s: int = 0, max_age_s: int = 3600) -> Result:
    at = NOW - timedelta(seconds=age_s)
    return Result(
        status, f"{check_id} says {status}", check_id=check_id, observed_at=at, max_age_s=max_age_s
    )


AUTO = Item(
    "ops/tls",
    "OPS",
    ("OPS", "Ops"),
    "TLS valid",
    ItemKind.AUTOMATED,
    3,
    checks=("tls_certificate",),
)
MANUAL = Item("ops/runbook", "OPS", ("OPS", "Ops"), "Runbook written", ItemKind.MANUAL, 4)
DECIDE = Item(
    "ops/email",
    "OPS",
    ("OPS", "Ops"),
    "**Decision needed**: Email",
    ItemKind.DECISION,
    5,
    decision_id="email",
)
CHECKLIST = Checklist(
    "t",
    ("OPS",),
    (AUTO, MANUAL, DECIDE),
    decisions=(Decision("email", "Email", "Email?", (Option("ses", "AWS SES"),), "ops/email"),),
)


@pytest.mark.parametrize(
    ("signoffs", "results", "expected"),
    [
        ([], [result("tls_certificate", Status.PASS)], ItemStatus.DONE),
        ([], [result("tls_certificate", Status.WARN)], ItemStatus.DONE),
        ([S("alice")], [result("tls_certificate", Status.FAIL)], ItemStatus.FAILING),
        ([S("alice")], [result("tls_certificate", Status.ERROR)], ItemStatus.FAILING),
        ([S("alice")], [result("tls_certificate", Status.UNKNOWN)], ItemStatus.FAILING),
        ([S("alice")], [result("tls_certificate", Status.PASS, age_s=7200)], ItemStatus.STALE),
        ([], [result("tls_certificate", Status.SKIPPED)], ItemStatus.OPEN),
        ([S("alice")], [result("tls_certificate", Status.SKIPPED)], ItemStatus.DONE),
        ([S("alice")], [], ItemStatus.DONE),
        ([], [], ItemStatus.OPEN),
        (
            [S("bob", na_reason="no TLS here")],
            [result("tls_certificate", Status.FAIL)],
            ItemStatus.NOT_APPLICABLE,
        ),
    ],
)
def test_automated_item_rules(
    signoffs: list[S], results: list[Result], expected: ItemStatus
) -> None:
    r = compute(CHECKLIST, {"ops/tls": signoffs}, {x.check_id: x for x in results}, {}, now=NOW)
    assert r.state("ops/tls").status is expected  # type: ignore[union-attr]


def test_claimed_items_are_not_done() -> None:
    claimed = Item(
        "a/b", "OPS", ("OPS",), "Deployed ✅", ItemKind.MANUAL, 1, claimed=True, checked=True
    )
    r = compute(Checklist("t", ("OPS",), (claimed,)), {}, {}, {}, now=NOW)
    assert r.state("a/b").status is ItemStatus.OPEN  # type: ignore[union-attr]
    assert "claimed" in r.state("a/b").reason  # type: ignore[union-attr]


def test_decision_items_close_with_their_decision() -> None:
    open_ = compute(CHECKLIST, {}, {}, {"email": D("open")}, now=NOW)
    assert open_.state("ops/email").status is ItemStatus.OPEN  # type: ignore[union-attr]
    closed = compute(CHECKLIST, {}, {}, {"email": D("accepted", "ses")}, now=NOW)
    assert closed.state("ops/email").done  # type: ignore[union-attr]
    assert closed.decisions_closed == ("email",) and closed.decisions_open == ()


def test_gate_opens_only_when_every_applicable_item_is_done() -> None:
    signoffs = {"ops/runbook": [S("alice")]}
    results = {"tls_certificate": result("tls_certificate", Status.PASS)}
    blocked = compute(CHECKLIST, signoffs, results, {"email": D("open")}, now=NOW)
    assert blocked.gate is Gate.BLOCKED and [b.item.id for b in blocked.blockers] == ["ops/email"]
    ready = compute(CHECKLIST, signoffs, results, {"email": D("accepted", "ses")}, now=NOW)
    assert ready.gate is Gate.READY and ready.percent == 100
    stale = {"tls_certificate": result("tls_certificate", Status.PASS, age_s=99999)}
    assert (
        compute(CHECKLIST, signoffs, stale, {"email": D("accepted")}, now=NOW).gate is Gate.BLOCKED
    )


def test_blockers_put_failing_checks_first() -> None:
    results = {"tls_certificate": result("tls_certificate", Status.FAIL)}
    r = compute(CHECKLIST, {}, results, {}, now=NOW)
    assert [b.item.id for b in r.blockers] == ["ops/tls", "ops/email", "ops/runbook"]
    assert r.to_dict()["blockers"][0]["status"] == "failing"


def test_runbook_files_join_the_checklists_runbooks(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "db-failover.md").write_text(
        "# Database failover\n\n1. Promote replica\n2. Repoint\n"
    )
    settings = Settings(preflight_db=":memory:", preflight_runbooks_dir=folder)
    services = Services.from_settings(settings, env={})
    runbook = services.find_runbook("db-failover")
    assert runbook.title == "Database failover" and len(runbook.steps) == 2
    assert len(services.checklist.runbooks) == 6
