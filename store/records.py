"""What the store hands back: small frozen records, independent of the database behind them.

Kept apart from store/sqlite.py so that another implementation (PostgreSQL) returns the same types.
Every timestamp is a timezone-aware UTC datetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

STEP_ACTIONS = ("done", "skip", "note", "undo")

# A decision is "open" until closed, "accepted" while closed. A reopened decision is "open" again;
# the accepted record it replaced is then "superseded", which decision_history() shows.
DECISION_OPEN = "open"
DECISION_ACCEPTED = "accepted"


@dataclass(frozen=True)
class ImportReport:
    """What importing a checklist changed, item ids in document order."""

    version: int
    added: list[str]
    changed: list[str]  # same id, different text, kind or section path
    removed: list[str]
    unchanged: int
    decisions: int  # decisions in the imported checklist
    first_import: bool
    new_version: bool = True  # False when the document and its content matched the current one


@dataclass(frozen=True)
class ChecklistVersion:
    """One stored version of the checklist: where it came from and what it held."""

    version: int
    sha256: str
    title: str
    origin: str  # a path, or "bundled"
    imported_at: datetime
    imported_by: str
    source: str  # the edge that imported it: "cli", "startup", ...
    items: int
    source_text: str | None = None  # None for versions stored before the store kept the text
    bindings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Signoff:
    """A standing sign-off: the user's latest event for the item is a sign-off."""

    item_id: str
    user: str
    at: datetime
    note: str = ""
    na_reason: str | None = None  # set: signed off as "not applicable", with why
    source: str = "cli"

    @property
    def not_applicable(self) -> bool:
        return self.na_reason is not None


@dataclass(frozen=True)
class Assignment:
    """Who is asked to see an item through (sign it off); the latest assignment stands."""

    item_id: str
    assignee: str
    assigned_by: str
    at: datetime
    source: str = "cli"


@dataclass(frozen=True)
class Vote:
    decision_id: str
    option_id: str
    user: str
    at: datetime
    source: str = "cli"


@dataclass(frozen=True)
class DecisionState:
    """A decision's current state, derived from its close/reopen events and votes."""

    decision_id: str
    status: str  # DECISION_OPEN or DECISION_ACCEPTED
    chosen: str | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    rationale: str = ""
    supersedes: str | None = None  # the earlier accepted option this acceptance replaced
    deciders: list[str] = field(default_factory=list)  # who closed or reopened it, first act first
    voters: list[str] = field(default_factory=list)  # who holds a vote, earliest current vote first

    @property
    def is_open(self) -> bool:
        return self.status == DECISION_OPEN


@dataclass(frozen=True)
class StepEvent:
    id: int
    run_id: int
    step: int
    action: str  # one of STEP_ACTIONS
    user: str
    at: datetime
    note: str = ""


@dataclass(frozen=True)
class RunbookRun:
    id: int
    runbook_id: str
    started_by: str
    started_at: datetime
    channel: str | None
    thread_ts: str | None
    ended_at: datetime | None
    ended_by: str | None
    events: list[StepEvent] = field(default_factory=list)  # oldest first
    source: str = "cli"

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def step_states(self) -> dict[int, StepEvent]:
        """Per step, the "done" or "skip" event that stands; an "undo" clears the step again."""
        states: dict[int, StepEvent] = {}
        for event in self.events:
            if event.action in ("done", "skip"):
                states[event.step] = event
            elif event.action == "undo":
                states.pop(event.step, None)
        return states


@dataclass(frozen=True)
class Subscription:
    channel: str
    user: str  # who subscribed the channel
    schedule: str
    since: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str
    allowed: bool
    source: str


@dataclass(frozen=True)
class Acceptance:
    """Someone accepted one check's WARN result for one item, with a reason. It stands for
    that result only: `fingerprint` names it, and a different later result needs a new one."""

    item_id: str
    check_id: str
    status: str
    fingerprint: str
    user: str
    reason: str
    at: datetime
    source: str = "cli"


@dataclass(frozen=True)
class Override:
    """An admin made an item done although its checks say no, with a reason (audited)."""

    item_id: str
    user: str
    reason: str
    at: datetime
    source: str = "cli"


# --- what the store reads from a parsed checklist ----------------------------------------------
# The parser's classes (bot.model) satisfy these; the store names only the fields it persists,
# so it needs nothing from the layers above it.


class ItemDoc(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def path(self) -> tuple[str, ...]: ...
    @property
    def text(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def line(self) -> int: ...
    @property
    def checked(self) -> bool: ...
    @property
    def claimed(self) -> bool: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def decision_id(self) -> str | None: ...
    @property
    def condition(self) -> str | None: ...
    @property
    def details(self) -> tuple[str, ...]: ...
    @property
    def checks(self) -> tuple[str, ...]: ...


class OptionDoc(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...


class DecisionDoc(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def question(self) -> str: ...
    @property
    def item_id(self) -> str | None: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...

    @property
    def options(self) -> Sequence[OptionDoc]: ...


class ChecklistDoc(Protocol):
    """A parsed checklist (dataclasses: the content fingerprint is taken with asdict)."""

    @property
    def title(self) -> str: ...
    @property
    def source_sha256(self) -> str: ...
    @property
    def source_text(self) -> str: ...

    @property
    def items(self) -> Sequence[ItemDoc]: ...

    @property
    def decisions(self) -> Sequence[DecisionDoc]: ...


@dataclass(frozen=True)
class ChangeMarks:
    """Where the state readiness derives from stands (perf, issue 11): the current checklist
    version and the newest event id per table. Equal marks, equal state."""

    version: int
    signoffs: int
    results: int
    votes: int
    decisions: int
    acceptances: int
    overrides: int
