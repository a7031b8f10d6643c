"""Readiness at scale computes exactly what the former per-section, per-item algorithm did.

The reference below is the algorithm as it stood before issue 11 (one scan of every item per
section, item states built field by field), kept verbatim so the fast path and the one-pass
section progress are checked against it on random checklists and random state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.model import Checklist, Decision, Item, ItemKind, Option
from bot.readiness import (
    _STATE_FIELDS,
    FAILING,
    PASSING,
    AcceptanceLike,
    DecisionStateLike,
    ItemState,
    ItemStatus,
    OverrideLike,
    SectionProgress,
    SignoffLike,
    _accepted,
    compute,
    fingerprint,
    severity_rank,
)
from checks.base import Check, CheckContext, Result, Status

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CHECK_IDS = ("c_block", "c_block2", "c_advisory", "c_unknown_to_registry")


def _never_run(ctx: CheckContext) -> Result:
    raise AssertionError("readiness never runs a check")


META = {
    "c_block": Check("c_block", "b", "S", _never_run, severity="critical"),
    "c_block2": Check("c_block2", "b2", "S", _never_run, severity="low"),
    "c_advisory": Check("c_advisory", "a", "S", _never_run, blocking=False),
}
USERS = ("alice", "bob", "carol")


@dataclass(frozen=True)
class Signoff:
    user: str
    at: datetime = NOW
    note: str = ""
    na_reason: str | None = None


@dataclass(frozen=True)
class DecisionState:
    status: str
    chosen: str | None = None


@dataclass(frozen=True)
class Acceptance:
    check_id: str
    fingerprint: str
    user: str
    reason: str = "ok"


def reference_item_state(
    item: Item,
    signoffs: Sequence[SignoffLike],
    results: Sequence[Result],
    decision: DecisionStateLike | None,
    now: datetime,
    *,
    acceptances: Sequence[AcceptanceLike] = (),
    overrides: Sequence[OverrideLike] = (),
    meta: Mapping[str, Check] | None = None,
) -> ItemState:
    """The state of one item; see the module docstring for the rules."""
    standing = tuple(signoffs)
    meta = meta or {}

    def blocking(check_id: str) -> bool:
        check = meta.get(check_id)
        return check.blocking if check is not None else True

    def severity(r: Result) -> int:
        check = meta.get(r.check_id)
        return severity_rank(check.severity if check is not None else None)

    results = tuple(results)
    held = sorted((r for r in results if blocking(r.check_id)), key=severity)
    advisories = tuple(r for r in results if not blocking(r.check_id) and r.status not in PASSING)
    signers = {s.user for s in standing}
    # An override stands while its author's sign-off does: `unsign` withdraws both.
    standing_overrides = tuple(o for o in overrides if o.user in signers)
    in_force = tuple(a for r in held if r.status is Status.WARN for a in _accepted(r, acceptances))

    def state(status: ItemStatus, reason: str, cause: Result | None = None) -> ItemState:
        return ItemState(
            item,
            status,
            reason,
            standing,
            results,
            cause=cause,
            acceptances=in_force,
            overrides=standing_overrides,
            advisories=advisories,
        )

    na = next((s for s in standing if s.na_reason), None)
    if na is not None:
        return state(ItemStatus.NOT_APPLICABLE, f"not applicable: {na.na_reason}")
    if item.checks:
        failing = [r for r in held if r.status in FAILING]
        warning = [r for r in held if r.status is Status.WARN and not _accepted(r, acceptances)]
        stale = [
            r
            for r in held
            if r.status in (Status.PASS, Status.WARN) and r not in warning and not r.is_fresh(now)
        ]
        holding = (
            (failing[0], ItemStatus.FAILING, f"{failing[0].status.value}: {failing[0].summary}")
            if failing
            else (warning[0], ItemStatus.WARNING, f"WARN not accepted: {warning[0].summary}")
            if warning
            else (stale[0], ItemStatus.STALE, "result is stale")
            if stale
            else None
        )
        if holding is not None:
            cause, status, what = holding
            if standing_overrides:
                o = standing_overrides[-1]
                return state(
                    ItemStatus.OVERRIDDEN,
                    f"overridden by {o.user}: {o.reason} ({cause.check_id} {cause.status.value})",
                    cause,
                )
            return state(status, f"{cause.check_id} {what}", cause)
        good = {
            r.check_id
            for r in results
            if r.status in PASSING or (r.status is Status.WARN and blocking(r.check_id))
        }
        wanted = {c for c in item.checks if blocking(c)} or set(item.checks)
        if good >= wanted:
            accepted = f" (WARN accepted by {', '.join(a.user for a in in_force)})"
            return state(ItemStatus.DONE, "checks pass" + (accepted if in_force else ""))
    if item.kind is ItemKind.DECISION:
        if decision is not None and decision.status == "accepted":
            return state(ItemStatus.DONE, f"decided: {decision.chosen}")
        if not standing:
            return state(ItemStatus.OPEN, "decision open")
    if standing:
        who = ", ".join(s.user for s in standing)
        return state(ItemStatus.DONE, f"signed off by {who}")
    if item.checks:
        good = {r.check_id for r in results if r.status in PASSING}
        missing = [c for c in item.checks if c not in good]
        by_id = {r.check_id: r for r in results}
        # Only a blocking check that could not speak is the cause; an advisory check's
        # verdict leaves the item waiting on a person, like a manual one.
        silent = next((by_id[c] for c in missing if c in by_id and blocking(c)), None)
        return state(
            ItemStatus.OPEN,
            f"needs a sign-off or a passing {', '.join(missing)}",
            silent,
        )
    claim = " (claimed ✅, not signed off)" if item.claimed else ""
    return state(ItemStatus.OPEN, f"needs a sign-off{claim}")


@dataclass(frozen=True)
class Override:
    user: str
    reason: str = "because"
    at: datetime = NOW


def reference_sections(checklist: Checklist, states: Sequence[ItemState]) -> list[SectionProgress]:
    sections = []
    for title in checklist.sections:
        in_section = [s for s in states if s.item.section == title]
        applicable = [s for s in in_section if s.applicable]
        sections.append(
            SectionProgress(
                title, len(in_section), len(applicable), sum(1 for s in applicable if s.done)
            )
        )
    return sections


def reference(
    checklist: Checklist,
    signoffs: Mapping[str, Sequence[Any]],
    results: Mapping[str, Result],
    decisions: Mapping[str, Any],
    acceptances: Mapping[str, Sequence[Any]],
    overrides: Mapping[str, Sequence[Any]],
) -> tuple[list[ItemState], list[SectionProgress]]:
    states = [
        reference_item_state(
            item,
            signoffs.get(item.id, ()),
            [results[c] for c in item.checks if c in results],
            decisions.get(item.decision_id) if item.decision_id else None,
            NOW,
            acceptances=acceptances.get(item.id, ()),
            overrides=overrides.get(item.id, ()),
            meta=META,
        )
        for item in checklist.items
    ]
    return states, reference_sections(checklist, states)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Any, ...]:
    sections = [f"S{n}" for n in range(draw(st.integers(1, 6)))]
    items = []
    for n in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(list(ItemKind)))
        checks = tuple(draw(st.lists(st.sampled_from(CHECK_IDS), max_size=3, unique=True)))
        items.append(
            Item(
                f"i{n}",
                draw(st.sampled_from([*sections, "Nowhere"])),
                ("x",),
                f"item {n}",
                kind,
                n,
                claimed=draw(st.booleans()),
                checks=checks,
                decision_id=f"d{n % 3}" if kind is ItemKind.DECISION else None,
            )
        )
    decisions = tuple(
        Decision(f"d{n}", f"topic {n}", "?", (Option("a", "A"),), None) for n in range(3)
    )
    checklist = Checklist("t", tuple(sections), tuple(items), decisions=decisions)
    results = {}
    for cid in draw(st.lists(st.sampled_from(CHECK_IDS), unique=True)):
        status = draw(st.sampled_from(list(Status)))
        age = draw(st.sampled_from([0, 100, 7200]))
        results[cid] = Result(
            status,
            f"{cid} {draw(st.sampled_from(['x', 'y']))}",
            check_id=cid,
            observed_at=NOW - timedelta(seconds=age),
            max_age_s=3600,
        )
    ids = [i.id for i in items] or ["none"]
    signoffs: dict[str, list[Signoff]] = {}
    acceptances: dict[str, list[Acceptance]] = {}
    overrides: dict[str, list[Override]] = {}
    for item_id in draw(st.lists(st.sampled_from(ids), max_size=20)):
        signoffs.setdefault(item_id, []).append(
            Signoff(draw(st.sampled_from(USERS)), na_reason=draw(st.sampled_from([None, "n/a"])))
        )
    for item_id in draw(st.lists(st.sampled_from(ids), max_size=8)):
        overrides.setdefault(item_id, []).append(Override(draw(st.sampled_from(USERS))))
    for item_id in draw(st.lists(st.sampled_from(ids), max_size=8)):
        cid = draw(st.sampled_from(CHECK_IDS))
        fp = fingerprint(results[cid]) if cid in results and draw(st.booleans()) else "stale-fp"
        acceptances.setdefault(item_id, []).append(Acceptance(cid, fp, "alice"))
    states = {
        f"d{n}": DecisionState(draw(st.sampled_from(["open", "accepted"])), "a") for n in range(3)
    }
    return checklist, signoffs, results, states, acceptances, overrides


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_readiness_equals_the_former_algorithm(scenario: tuple[Any, ...]) -> None:
    checklist, signoffs, results, decisions, acceptances, overrides = scenario
    got = compute(
        checklist,
        signoffs,
        results,
        decisions,
        NOW,
        acceptances=acceptances,
        overrides=overrides,
        meta=META,
    )
    want_states, want_sections = reference(
        checklist, signoffs, results, decisions, acceptances, overrides
    )
    assert list(got.items) == want_states
    assert list(got.sections) == want_sections
    for s in want_states:
        assert got.state(s.item.id) == next(w for w in want_states if w.item.id == s.item.id)
    assert got.state("no-such-item") is None
    assert got.done == sum(1 for s in want_states if s.applicable and s.done)
    assert got.applicable == sum(1 for s in want_states if s.applicable)


def test_severity_rank_is_unchanged() -> None:
    assert severity_rank("critical") < severity_rank(None) < severity_rank("low")


def test_fast_constructor_fills_every_field() -> None:
    assert tuple(f.name for f in dataclasses.fields(ItemState)) == _STATE_FIELDS
