"""Merges the checklist, check results, sign-offs and decisions into one readiness verdict.

The gate is fail-closed: READY only when there is at least one applicable item and every one is
done. An item bound to blocking checks is held by a check that failed, errored, could not tell,
warned (until someone accepts that very result) or whose result went stale, even if somebody
signed it off; only an audited override makes such an item done. A sign-off stands in where no
check could speak (not configured, never run). A check declared `blocking=False` is advisory:
its result is shown, never holds an item.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from bot.model import Checklist, Item, ItemKind
from checks.base import Check, Result, Status, utcnow

PASSING = frozenset({Status.PASS})
FAILING = frozenset({Status.FAIL, Status.ERROR, Status.UNKNOWN})
SEVERITIES = ("critical", "high", "medium", "low")
DEFAULT_SEVERITY = "high"  # a check the registry no longer knows is treated as Check's default


class Gate(StrEnum):
    READY = "READY"
    BLOCKED = "BLOCKED"


class ItemStatus(StrEnum):
    DONE = "done"
    OVERRIDDEN = "overridden"  # done by an audited override although a check says no
    NOT_APPLICABLE = "n/a"
    FAILING = "failing"  # a bound blocking check says no
    WARNING = "warning"  # a bound blocking check warns and nobody accepted that result
    STALE = "stale"  # a bound check's result is too old to trust
    OPEN = "open"  # waiting on a sign-off or a decision


DONE_STATUSES = frozenset({ItemStatus.DONE, ItemStatus.OVERRIDDEN, ItemStatus.NOT_APPLICABLE})


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


class AcceptanceLike(Protocol):
    """Someone accepted one check's WARN result for one item, with a reason."""

    @property
    def check_id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def reason(self) -> str: ...


class OverrideLike(Protocol):
    """An admin made an item done whatever its checks say, with a reason."""

    @property
    def user(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def at(self) -> datetime: ...


def fingerprint(result: Result) -> str:
    """What an acceptance is of: this check, this status, this finding. A different later
    result (another status, or another summary) needs a new acceptance."""
    text = f"{result.check_id}\n{result.status.value}\n{' '.join(result.summary.split())}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def severity_rank(severity: str | None) -> int:
    try:
        return SEVERITIES.index((severity or DEFAULT_SEVERITY).lower())
    except ValueError:
        return SEVERITIES.index(DEFAULT_SEVERITY)


@dataclass(frozen=True)
class ItemState:
    item: Item
    status: ItemStatus
    reason: str  # one short phrase: why done, or what it waits on
    signoffs: tuple[Any, ...] = ()
    results: tuple[Result, ...] = ()
    cause: Result | None = None  # the check result that holds (or was overridden on) the item
    acceptances: tuple[Any, ...] = ()  # acceptances in force for its current results
    overrides: tuple[Any, ...] = ()  # standing overrides
    advisories: tuple[Result, ...] = ()  # non-passing results of advisory (non-blocking) checks

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def applicable(self) -> bool:
        return self.status is not ItemStatus.NOT_APPLICABLE

    @property
    def overridden(self) -> bool:
        return self.status is ItemStatus.OVERRIDDEN


@dataclass(frozen=True)
class SectionProgress:
    title: str
    total: int
    applicable: int
    done: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.applicable) if self.applicable else 100


class GroupKind(StrEnum):
    CHECK = "check"  # a blocking check failed, errored or could not tell
    WARNING = "warning"  # a blocking check warns, not accepted
    STALE = "stale"  # a check result is too old
    UNCONFIGURED = "unconfigured"  # a check could not speak (SKIPPED or never ran)
    DECISION = "decision"  # an open decision
    SIGNOFF = "signoff"  # items waiting on a person, grouped by section
    EMPTY = "empty"  # nothing to verify at all


_GROUP_ORDER = {k: n for n, k in enumerate(GroupKind)}


@dataclass(frozen=True)
class BlockerGroup:
    """One cause that keeps the gate closed, with every item it holds."""

    kind: GroupKind
    cause: str  # one line, e.g. "dns_records FAIL: api.example.com does not resolve"
    items: tuple[ItemState, ...]
    check_id: str | None = None
    check_status: str | None = None
    severity: str | None = None
    fingerprint: str | None = None
    settings: tuple[str, ...] = ()  # what to set, for an unconfigured check
    decision_id: str | None = None
    section: str | None = None
    remediation: str = ""

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(s.item.id for s in self.items)


@dataclass(frozen=True)
class Readiness:
    items: tuple[ItemState, ...]
    sections: tuple[SectionProgress, ...]
    decisions_open: tuple[str, ...]
    decisions_closed: tuple[str, ...]
    runbooks: int
    checks: Mapping[str, Result]
    computed_at: datetime = field(default_factory=utcnow)
    severities: Mapping[str, str] = field(default_factory=dict)  # check id -> severity
    settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # check id -> settings
    decision_topics: Mapping[str, str] = field(default_factory=dict)  # decision id -> topic

    # A Readiness never changes once computed, and a status or digest asks for its counts,
    # blockers and groups many times: each is worked out once (cached_property writes to the
    # instance's __dict__, which a frozen dataclass without slots allows).

    @property
    def total(self) -> int:
        return len(self.items)

    @cached_property
    def applicable(self) -> int:
        return sum(1 for s in self.items if s.applicable)

    @cached_property
    def done(self) -> int:
        return sum(1 for s in self.items if s.applicable and s.done)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.applicable) if self.applicable else 100

    @property
    def nothing_to_verify(self) -> bool:
        """No applicable item: nothing was verified, so nothing can be READY."""
        return self.applicable == 0

    def _severity(self, s: ItemState) -> int:
        return severity_rank(self.severities.get(s.cause.check_id) if s.cause else None)

    @cached_property
    def blockers(self) -> tuple[ItemState, ...]:
        """Items that keep the gate closed, most actionable first: failing checks, warnings,
        stale checks (each by severity, critical first), open decisions, then everything
        waiting on a sign-off (document order)."""
        order = {ItemStatus.FAILING: 0, ItemStatus.WARNING: 1, ItemStatus.STALE: 2}
        waiting = [s for s in self.items if not s.done]
        return tuple(
            sorted(
                waiting,
                key=lambda s: (
                    order.get(s.status, 3),
                    self._severity(s) if s.status in order else 0,
                    s.item.kind is not ItemKind.DECISION,
                ),
            )
        )

    @cached_property
    def overridden(self) -> tuple[ItemState, ...]:
        return tuple(s for s in self.items if s.overridden)

    @cached_property
    def advisories(self) -> tuple[Result, ...]:
        """Non-passing results of advisory checks bound to applicable items: shown, never
        blocking. One per check."""
        seen: dict[str, Result] = {}
        for s in self.items:
            if s.applicable:
                for r in s.advisories:
                    seen.setdefault(r.check_id, r)
        return tuple(seen.values())

    @cached_property
    def blocker_groups(self) -> tuple[BlockerGroup, ...]:
        """The blockers grouped by cause (one check result, one decision, one section's
        sign-offs), worst first; see `group_blockers`."""
        return group_blockers(self)

    @property
    def gate(self) -> Gate:
        return Gate.READY if self.applicable and not self.blockers else Gate.BLOCKED

    @cached_property
    def _by_id(self) -> dict[str, ItemState]:
        found: dict[str, ItemState] = {}
        for s in self.items:
            found.setdefault(s.item.id, s)  # the first, as a scan in document order finds
        return found

    def state(self, item_id: str) -> ItemState | None:
        return self._by_id.get(item_id)

    def to_dict(self) -> dict[str, Any]:
        """The shape of `preflight status --json`."""
        from bot import messages  # the next action is worded there, like every sentence

        return {
            "gate": self.gate.value,
            "nothing_to_verify": self.nothing_to_verify,
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
                    "kind": g.kind.value,
                    "status": g.items[0].status.value if g.items else "blocked",
                    "cause": g.cause,
                    "check": g.check_id,
                    "check_status": g.check_status,
                    "severity": g.severity,
                    "count": g.count,
                    "items": list(g.item_ids),
                    "next": messages.next_action(g),
                }
                for g in self.blocker_groups
            ],
            "blocking_items": [
                {
                    "id": b.item.id,
                    "section": b.item.section,
                    "status": b.status.value,
                    "reason": b.reason,
                    "text": b.item.text,
                }
                for b in self.blockers
            ],
            "overridden": [
                {
                    "id": s.item.id,
                    "reason": s.reason,
                    "overrides": [
                        {"user": o.user, "reason": o.reason, "at": o.at.isoformat()}
                        for o in s.overrides
                    ],
                }
                for s in self.overridden
            ],
            "advisories": [
                {"check": r.check_id, "status": r.status.value, "summary": r.summary}
                for r in self.advisories
            ],
            "computed_at": self.computed_at.isoformat(),
        }


def _accepted(result: Result, acceptances: Sequence[AcceptanceLike]) -> list[AcceptanceLike]:
    fp = fingerprint(result)
    return [a for a in acceptances if a.check_id == result.check_id and a.fingerprint == fp]


_STATE_FIELDS = (
    *("item", "status", "reason", "signoffs", "results", "cause", "acceptances"),
    *("overrides", "advisories"),
)


def _new_state(
    item: Item,
    status: ItemStatus,
    reason: str,
    signoffs: tuple[Any, ...] = (),
    results: tuple[Result, ...] = (),
    cause: Result | None = None,
    acceptances: tuple[Any, ...] = (),
    overrides: tuple[Any, ...] = (),
    advisories: tuple[Result, ...] = (),
) -> ItemState:
    # A frozen dataclass's __init__ sets each field through object.__setattr__; at 20,000
    # items that alone is half the time budget. Filling the instance dict is what it does,
    # minus the per-field calls (tests/test_perf_readiness.py keeps _STATE_FIELDS in step).
    state = object.__new__(ItemState)
    state.__dict__.update(
        item=item,
        status=status,
        reason=reason,
        signoffs=signoffs,
        results=results,
        cause=cause,
        acceptances=acceptances,
        overrides=overrides,
        advisories=advisories,
    )
    return state


def _blocking(meta: Mapping[str, Check], check_id: str) -> bool:
    check = meta.get(check_id)
    return check.blocking if check is not None else True


def _severity_of(meta: Mapping[str, Check], r: Result) -> int:
    check = meta.get(r.check_id)
    return severity_rank(check.severity if check is not None else None)


def _unspoken_state(item: Item, decision: DecisionStateLike | None) -> ItemState:
    """Nobody signed, no check spoke: the common case of a big checklist, decided by the item
    alone (no override or acceptance stands without a sign-off or a result)."""
    if item.kind is ItemKind.DECISION:
        if decision is not None and decision.status == "accepted":
            return _new_state(item, ItemStatus.DONE, f"decided: {decision.chosen}")
        return _new_state(item, ItemStatus.OPEN, "decision open")
    if item.checks:
        return _new_state(
            item, ItemStatus.OPEN, f"needs a sign-off or a passing {', '.join(item.checks)}"
        )
    claim = " (claimed ✅, not signed off)" if item.claimed else ""
    return _new_state(item, ItemStatus.OPEN, f"needs a sign-off{claim}")


def item_state(
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
    if not signoffs and not results:
        return _unspoken_state(item, decision)
    standing = tuple(signoffs)
    meta = meta or {}
    results = tuple(results)
    held = sorted(
        (r for r in results if _blocking(meta, r.check_id)), key=lambda r: _severity_of(meta, r)
    )
    advisories = tuple(
        r for r in results if not _blocking(meta, r.check_id) and r.status not in PASSING
    )
    signers = {s.user for s in standing}
    # An override stands while its author's sign-off does: `unsign` withdraws both.
    standing_overrides = tuple(o for o in overrides if o.user in signers)
    in_force = tuple(a for r in held if r.status is Status.WARN for a in _accepted(r, acceptances))

    def state(status: ItemStatus, reason: str, cause: Result | None = None) -> ItemState:
        return _new_state(
            item,
            status,
            reason,
            standing,
            results,
            cause,
            in_force,
            standing_overrides,
            advisories,
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
            if r.status in PASSING or (r.status is Status.WARN and _blocking(meta, r.check_id))
        }
        wanted = {c for c in item.checks if _blocking(meta, c)} or set(item.checks)
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
        silent = next((by_id[c] for c in missing if c in by_id and _blocking(meta, c)), None)
        return state(
            ItemStatus.OPEN,
            f"needs a sign-off or a passing {', '.join(missing)}",
            silent,
        )
    claim = " (claimed ✅, not signed off)" if item.claimed else ""
    return state(ItemStatus.OPEN, f"needs a sign-off{claim}")


def group_blockers(readiness: Readiness) -> tuple[BlockerGroup, ...]:
    """One group per distinct cause: a check's result (id, status and finding), an open
    decision, or a section's items waiting on a sign-off. Worst first: failing checks,
    warnings, stale results (each by severity, then by how many items they hold), checks that
    could not speak, decisions, sign-offs (document order)."""
    if readiness.nothing_to_verify:
        return (
            BlockerGroup(
                GroupKind.EMPTY, "nothing to verify: the checklist has no applicable items", ()
            ),
        )
    groups: dict[tuple[str, ...], list[ItemState]] = {}
    made: dict[tuple[str, ...], BlockerGroup] = {}
    for s in readiness.blockers:
        r = s.cause
        key: tuple[str, ...]
        if s.status in (ItemStatus.FAILING, ItemStatus.WARNING, ItemStatus.STALE) and r:
            kind = {
                ItemStatus.FAILING: GroupKind.CHECK,
                ItemStatus.WARNING: GroupKind.WARNING,
                ItemStatus.STALE: GroupKind.STALE,
            }[s.status]
            fp = fingerprint(r)
            key = (kind.value, r.check_id, fp)
            cause = (
                f"{r.check_id} result is stale ({r.status.value})"
                if kind is GroupKind.STALE
                else f"{r.check_id} {r.status.value}: {r.summary}"
            )
            made.setdefault(
                key,
                BlockerGroup(
                    kind,
                    cause,
                    (),
                    check_id=r.check_id,
                    check_status=r.status.value,
                    severity=readiness.severities.get(r.check_id, DEFAULT_SEVERITY),
                    fingerprint=fp,
                    remediation=r.remediation,
                ),
            )
        elif s.item.kind is ItemKind.DECISION and s.item.decision_id:
            key = (GroupKind.DECISION.value, s.item.decision_id)
            made.setdefault(
                key,
                BlockerGroup(
                    GroupKind.DECISION,
                    "decision open: "
                    + readiness.decision_topics.get(s.item.decision_id, s.item.decision_id),
                    (),
                    decision_id=s.item.decision_id,
                    section=s.item.section,
                ),
            )
        elif s.item.checks and not s.signoffs and (r is not None or not s.advisories):
            check_id = r.check_id if r else next(iter(s.item.checks))
            # Only a SKIPPED result says what is missing; a check that never ran may just need
            # running.
            settings = tuple(
                (r.evidence.get("missing_settings") or readiness.settings.get(check_id, ()))
                if r is not None and r.status is Status.SKIPPED
                else ()
            )
            status = r.status.value if r else "not run"
            summary = r.summary if r else "has not run"
            key = (GroupKind.UNCONFIGURED.value, check_id, status, summary)
            made.setdefault(
                key,
                BlockerGroup(
                    GroupKind.UNCONFIGURED,
                    f"{check_id} {status}: {summary}" if r else f"{check_id} has not run",
                    (),
                    check_id=check_id,
                    check_status=r.status.value if r else None,
                    severity=readiness.severities.get(check_id, DEFAULT_SEVERITY),
                    settings=tuple(str(x) for x in settings),
                ),
            )
        else:
            key = (GroupKind.SIGNOFF.value, s.item.section)
            made.setdefault(
                key,
                BlockerGroup(
                    GroupKind.SIGNOFF,
                    f"{s.item.section}: waiting on a sign-off",
                    (),
                    section=s.item.section,
                ),
            )
        groups.setdefault(key, []).append(s)
    result = [dataclasses.replace(made[k], items=tuple(v)) for k, v in groups.items()]
    checks_first = (GroupKind.CHECK, GroupKind.WARNING, GroupKind.STALE, GroupKind.UNCONFIGURED)
    return tuple(
        sorted(
            result,
            key=lambda g: (
                _GROUP_ORDER[g.kind],
                severity_rank(g.severity) if g.kind in checks_first else 0,
                -g.count if g.kind in checks_first else 0,
            ),
        )
    )


def section_progress(
    titles: Sequence[str], states: Sequence[ItemState]
) -> tuple[SectionProgress, ...]:
    """Progress of each section, in one pass over the items (not one pass per section)."""
    counts = {title: [0, 0, 0] for title in titles}  # total, applicable, done
    na, done = ItemStatus.NOT_APPLICABLE, DONE_STATUSES
    for s in states:
        c = counts.get(s.item.section)
        if c is None:
            continue
        c[0] += 1
        status = s.status  # ItemState.applicable / .done, inlined: called per item
        if status is not na:
            c[1] += 1
            if status in done:
                c[2] += 1
    return tuple(SectionProgress(title, *counts[title]) for title in titles)


def compute(
    checklist: Checklist,
    signoffs: Mapping[str, Sequence[SignoffLike]],
    results: Mapping[str, Result],
    decisions: Mapping[str, DecisionStateLike],
    now: datetime | None = None,
    *,
    acceptances: Mapping[str, Sequence[AcceptanceLike]] | None = None,
    overrides: Mapping[str, Sequence[OverrideLike]] | None = None,
    meta: Mapping[str, Check] | None = None,
) -> Readiness:
    """Readiness of a checklist from current state (no I/O: the caller reads the store).
    `meta` is the registered checks (their blocking flag and severity); default: the registry."""
    now = now or utcnow()
    if meta is None:
        from checks import registry

        meta = registry.all_checks()
    acceptances = acceptances or {}
    overrides = overrides or {}
    states: list[ItemState] = []
    append = states.append
    for item in checklist.items:
        bound = [results[c] for c in item.checks if c in results] if item.checks else ()
        decision = decisions.get(item.decision_id) if item.decision_id else None
        standing = signoffs.get(item.id, ())
        if not standing and not bound:
            append(_unspoken_state(item, decision))
            continue
        append(
            item_state(
                item,
                standing,
                bound,
                decision,
                now,
                acceptances=acceptances.get(item.id, ()),
                overrides=overrides.get(item.id, ()),
                meta=meta,
            )
        )
    closed = tuple(
        d.id
        for d in checklist.decisions
        if (st := decisions.get(d.id)) is not None and st.status == "accepted"
    )
    closed_ids = set(closed)
    open_ = tuple(d.id for d in checklist.decisions if d.id not in closed_ids)
    return Readiness(
        items=tuple(states),
        sections=section_progress(checklist.sections, states),
        decisions_open=open_,
        decisions_closed=closed,
        runbooks=len(checklist.runbooks),
        checks=dict(results),
        computed_at=now,
        severities={cid: c.severity for cid, c in meta.items()},
        settings={cid: tuple(c.settings) for cid, c in meta.items()},
        decision_topics={d.id: d.topic for d in checklist.decisions},
    )
