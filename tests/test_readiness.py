"""The readiness rules: what makes an item done, and when the gate opens. Fail-closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import Checklist, Decision, Item, ItemKind, Option
from bot.readiness import Gate, GroupKind, ItemStatus, compute, fingerprint
from bot.services import Services
from bot.settings import Settings
from checks.base import Check, Result, Status

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
        # a WARN blocks until accepted, and a sign-off does not outvote it
        ([], [result("tls_certificate", Status.WARN)], ItemStatus.WARNING),
        ([S("alice")], [result("tls_certificate", Status.WARN)], ItemStatus.WARNING),
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
    assert r.to_dict()["blocking_items"][0]["id"] == "ops/tls"


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


@dataclass(frozen=True)
class A:  # an acceptance
    check_id: str
    fingerprint: str
    user: str = "alice"
    reason: str = "TLS 1.0 needed by one partner until March"


@dataclass(frozen=True)
class Ov:  # an override
    user: str
    reason: str = "vendor outage, accepted by the CTO"
    at: datetime = NOW


def check(check_id: str, *, severity: str = "high", blocking: bool = True) -> Check:
    return Check(
        id=check_id,
        title=check_id,
        section="OPS",
        run=lambda ctx: Result(Status.PASS, "x"),
        severity=severity,
        blocking=blocking,
    )


META = {"tls_certificate": check("tls_certificate", severity="critical")}


def _auto(item_id: str, *checks: str, section: str = "OPS") -> Item:
    return Item(item_id, section, (section,), item_id, ItemKind.AUTOMATED, 1, checks=checks)


def test_an_accepted_warn_passes_and_a_different_warn_blocks_again() -> None:
    warn = result("tls_certificate", Status.WARN)
    accepted = {"ops/tls": [A("tls_certificate", fingerprint(warn))]}
    r = compute(CHECKLIST, {}, {"tls_certificate": warn}, {}, now=NOW, meta=META)
    assert r.state("ops/tls").status is ItemStatus.WARNING  # type: ignore[union-attr]
    r = compute(
        CHECKLIST, {}, {"tls_certificate": warn}, {}, now=NOW, acceptances=accepted, meta=META
    )
    state = r.state("ops/tls")
    assert state is not None and state.status is ItemStatus.DONE
    assert "WARN accepted by alice" in state.reason
    other = Result(Status.WARN, "TLS 1.1 accepted", check_id="tls_certificate", observed_at=NOW)
    r = compute(
        CHECKLIST, {}, {"tls_certificate": other}, {}, now=NOW, acceptances=accepted, meta=META
    )
    assert r.state("ops/tls").status is ItemStatus.WARNING  # type: ignore[union-attr]
    # an acceptance of one item's result does not accept it for another item
    r = compute(
        CHECKLIST,
        {},
        {"tls_certificate": warn},
        {},
        now=NOW,
        acceptances={"ops/runbook": accepted["ops/tls"]},
        meta=META,
    )
    assert r.state("ops/tls").status is ItemStatus.WARNING  # type: ignore[union-attr]


def test_a_non_blocking_check_is_advisory_and_never_blocks() -> None:
    items = (_auto("a/tls", "tls_certificate", "log_noise"), _auto("a/logs", "log_noise"))
    checklist = Checklist("t", ("OPS",), items)
    meta = {**META, "log_noise": check("log_noise", blocking=False)}
    results = {
        "tls_certificate": result("tls_certificate", Status.PASS),
        "log_noise": result("log_noise", Status.FAIL),
    }
    r = compute(checklist, {"a/logs": [S("bob")]}, results, {}, now=NOW, meta=meta)
    assert r.state("a/tls").status is ItemStatus.DONE  # type: ignore[union-attr]
    # advisory-only evidence that fails is no evidence: a person signs it off, and that counts
    assert r.state("a/logs").status is ItemStatus.DONE  # type: ignore[union-attr]
    assert [a.check_id for a in r.advisories] == ["log_noise"]
    assert r.gate is Gate.READY
    assert r.to_dict()["advisories"][0]["status"] == "FAIL"


def test_an_override_makes_a_failing_item_done_as_overridden_while_its_signoff_stands() -> None:
    results = {"tls_certificate": result("tls_certificate", Status.FAIL)}
    overrides = {"ops/tls": [Ov("carol")]}
    r = compute(
        CHECKLIST, {"ops/tls": [S("carol")]}, results, {}, now=NOW, overrides=overrides, meta=META
    )
    state = r.state("ops/tls")
    assert state is not None and state.status is ItemStatus.OVERRIDDEN and state.done
    assert "overridden by carol" in state.reason and "tls_certificate FAIL" in state.reason
    assert r.to_dict()["overridden"][0]["id"] == "ops/tls"
    # the sign-off withdrawn (unsign): the override no longer stands
    r = compute(CHECKLIST, {}, results, {}, now=NOW, overrides=overrides, meta=META)
    assert r.state("ops/tls").status is ItemStatus.FAILING  # type: ignore[union-attr]


def test_blockers_are_ordered_by_severity() -> None:
    items = (_auto("a/low", "c_low"), _auto("a/crit", "c_crit"), _auto("a/med", "c_med"))
    meta = {
        "c_low": check("c_low", severity="low"),
        "c_crit": check("c_crit", severity="critical"),
        "c_med": check("c_med", severity="medium"),
    }
    results = {c: result(c, Status.FAIL) for c in meta}
    r = compute(Checklist("t", ("OPS",), items), {}, results, {}, now=NOW, meta=meta)
    assert [b.item.id for b in r.blockers] == ["a/crit", "a/med", "a/low"]
    assert [g.check_id for g in r.blocker_groups] == ["c_crit", "c_med", "c_low"]


@pytest.mark.parametrize(
    "checklist",
    [
        Checklist("empty", (), ()),
        Checklist("all n/a", ("OPS",), (MANUAL,)),
    ],
)
def test_nothing_to_verify_is_never_ready(checklist: Checklist) -> None:
    signoffs = {"ops/runbook": [S("bob", na_reason="no ops")]}
    r = compute(checklist, signoffs, {}, {}, now=NOW, meta=META)
    assert r.gate is Gate.BLOCKED and r.nothing_to_verify
    (group,) = r.blocker_groups
    assert group.kind is GroupKind.EMPTY and "nothing to verify" in group.cause
    assert r.to_dict()["nothing_to_verify"] is True


def test_one_failure_bound_to_five_items_is_one_group() -> None:
    items = (*(_auto(f"dns/i{n}", "dns_records") for n in range(5)), MANUAL)
    meta = {"dns_records": check("dns_records")}
    fail = Result(
        Status.FAIL, "api.example.com does not resolve", check_id="dns_records", observed_at=NOW
    )
    r = compute(Checklist("t", ("OPS",), items), {}, {"dns_records": fail}, {}, now=NOW, meta=meta)
    groups = r.blocker_groups
    assert [(g.kind, g.count) for g in groups] == [(GroupKind.CHECK, 5), (GroupKind.SIGNOFF, 1)]
    assert groups[0].cause == "dns_records FAIL: api.example.com does not resolve"
    data = r.to_dict()["blockers"]
    assert data[0]["count"] == 5 and data[0]["check"] == "dns_records"
    assert data[1]["next"].startswith("preflight signoff ops/runbook --as")
