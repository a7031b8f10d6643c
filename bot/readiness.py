"""Merges the checklist, check results, sign-offs and decisions into one readiness verdict.

The gate is fail-closed: READY only when every applicable item is done. An automated item whose
check failed, errored, could not tell, or whose result went stale blocks even if somebody signed
it off; a sign-off stands in only where no check could speak (not configured, never run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.model import Checklist, Item, ItemKind
from checks.base import Result, Status, utcnow

PASSING = frozenset({Status.PASS, Status.WARN})
FAILING = frozenset({Status.FAIL, Status.ERROR, Status.UNKNOWN})


class Gate(StrEnum):
    READY = "READY"
    BLOCKED = "BLOCKED"


class ItemStatus(StrEnum):
    DONE = "done"
    NOT_APPLICABLE = "n/a"
    FAILING = "failing"  # a bound check says no
    STALE = "stale"  # a bound check's result is too old to trust
    OPEN = "open"  # waiting on a sign-off or a decision


class SignoffLike(Protocol):
    @property
    def user(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def note(self) -> str: ...
    @property
    def na_reason(self) -> str | None: ...


class DecisionStateLike(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def chosen(self) -> str | None: ...


@dataclass(frozen=True)
class ItemState:
    item: Item
    status: ItemStatus
    reason: str  # one short phrase: why done, or what it waits on
    signoffs: tuple[Any, ...] = ()
    results: tuple[Result, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in (ItemStatus.DONE, ItemStatus.NOT_APPLICABLE)

    @property
    def applicable(self) -> bool:
        return self.status is not ItemStatus.NOT_APPLICABLE


@dataclass(frozen=True)
class SectionProgress:
    title: str
    total: int
    applicable: int
    done: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.applicable) if self.applicable else 100


@dataclass(frozen=True)
class Readiness:
    items: tuple[ItemState, ...]
    sections: tuple[SectionProgress, ...]
    decisions_open: tuple[str, ...]
    decisions_closed: tuple[str, ...]
    runbooks: int
    checks: Mapping[str, Result]
    computed_at: datetime = field(default_factory=utcnow)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def applicable(self) -> int:
        return sum(1 for s in self.items if s.applicable)

    @property
    def done(self) -> int:
        return sum(1 for s in self.items if s.applicable and s.done)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.applicable) if self.applicable else 100

    @property
    def blockers(self) -> tuple[ItemState, ...]:
        """Items that keep the gate closed, most actionable first: failing checks, stale
        checks, open decisions, then everything waiting on a sign-off (document order)."""
        order = {ItemStatus.FAILING: 0, ItemStatus.STALE: 1, ItemStatus.OPEN: 2}
        waiting = [s for s in self.items if not s.done]
        return tuple(
            sorted(
                waiting,
                key=lambda s: (order[s.status], s.item.kind is not ItemKind.DECISION),
            )
        )

    @property
    def gate(self) -> Gate:
        return Gate.READY if not self.blockers else Gate.BLOCKED

    def state(self, item_id: str) -> ItemState | None:
        return next((s for s in self.items if s.item.id == item_id), None)

    def to_dict(self) -> dict[str, Any]:
        """The shape of `preflight status --json`."""
        return {
            "gate": self.gate.value,
            "items": {
                "total": self.total,
                "applicable": self.applicable,
                "done": self.done,
                "percent": self.percent,
            },
            "sections": [
                {
                    "title": s.title,
                    "total": s.total,
                    "applicable": s.applicable,
                    "done": s.done,
                    "percent": s.percent,
                }
                for s in self.sections
            ],
            "decisions": {
                "open": len(self.decisions_open),
                "closed": len(self.decisions_closed),
                "open_ids": list(self.decisions_open),
            },
            "runbooks": self.runbooks,
            "checks": {cid: r.status.value for cid, r in sorted(self.checks.items())},
            "blockers": [
                {
                    "id": b.item.id,
                    "section": b.item.section,
                    "status": b.status.value,
                    "reason": b.reason,
                    "text": b.item.text,
                }
                for b in self.blockers
            ],
            "computed_at": self.computed_at.isoformat(),
        }


def item_state(
    item: Item,
    signoffs: Sequence[SignoffLike],
    results: Sequence[Result],
    decision: DecisionStateLike | None,
    now: datetime,
) -> ItemState:
    """The state of one item; see the module docstring for the rules."""
    standing = tuple(signoffs)
    na = next((s for s in standing if s.na_reason), None)
    if na is not None:
        return ItemState(
            item,
            ItemStatus.NOT_APPLICABLE,
            f"not applicable: {na.na_reason}",
            standing,
            tuple(results),
        )
    if item.checks:
        failing = [r for r in results if r.status in FAILING]
        if failing:
            worst = failing[0]
            return ItemState(
                item,
                ItemStatus.FAILING,
                f"{worst.check_id} {worst.status.value}: {worst.summary}",
                standing,
                tuple(results),
            )
        stale = [r for r in results if r.status in PASSING and not r.is_fresh(now)]
        if stale:
            return ItemState(
                item,
                ItemStatus.STALE,
                f"{stale[0].check_id} result is stale",
                standing,
                tuple(results),
            )
        ran = {r.check_id for r in results if r.status in PASSING}
        if ran and ran >= set(item.checks):
            return ItemState(item, ItemStatus.DONE, "checks pass", standing, tuple(results))
    if item.kind is ItemKind.DECISION:
        if decision is not None and decision.status == "accepted":
            return ItemState(item, ItemStatus.DONE, f"decided: {decision.chosen}", standing)
        if not standing:
            return ItemState(item, ItemStatus.OPEN, "decision open", standing)
    if standing:
        who = ", ".join(s.user for s in standing)
        return ItemState(item, ItemStatus.DONE, f"signed off by {who}", standing, tuple(results))
    if item.checks:
        missing = sorted(set(item.checks) - {r.check_id for r in results if r.status in PASSING})
        return ItemState(
            item,
            ItemStatus.OPEN,
            f"needs a sign-off or a passing {', '.join(missing)}",
            standing,
            tuple(results),
        )
    claim = " (claimed ✅, not signed off)" if item.claimed else ""
    return ItemState(item, ItemStatus.OPEN, f"needs a sign-off{claim}", standing)


def compute(
    checklist: Checklist,
    signoffs: Mapping[str, Sequence[SignoffLike]],
    results: Mapping[str, Result],
    decisions: Mapping[str, DecisionStateLike],
    now: datetime | None = None,
) -> Readiness:
    """Readiness of a checklist from current state (no I/O: the caller reads the store)."""
    now = now or utcnow()
    states = []
    for item in checklist.items:
        bound = [results[c] for c in item.checks if c in results]
        decision = decisions.get(item.decision_id) if item.decision_id else None
        states.append(item_state(item, signoffs.get(item.id, ()), bound, decision, now))
    sections = []
    for title in checklist.sections:
        in_section = [s for s in states if s.item.section == title]
        applicable = [s for s in in_section if s.applicable]
        sections.append(
            SectionProgress(
                title, len(in_section), len(applicable), sum(1 for s in applicable if s.done)
            )
        )
    closed = tuple(
        d.id
        for d in checklist.decisions
        if (st := decisions.get(d.id)) is not None and st.status == "accepted"
    )
    open_ = tuple(d.id for d in checklist.decisions if d.id not in closed)
    return Readiness(
        items=tuple(states),
        sections=tuple(sections),
        decisions_open=open_,
        decisions_closed=closed,
        runbooks=len(checklist.runbooks),
        checks=dict(results),
        computed_at=now,
    )
