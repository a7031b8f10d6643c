"""The checklist model: what a Markdown checklist becomes once imported.

Everything here is immutable data; state that changes (sign-offs, votes, check results,
runbook runs) lives in the store as events and is merged in by the readiness service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ItemKind(StrEnum):
    AUTOMATED = "automated"  # bound to one or more checks
    MANUAL = "manual"  # needs a human sign-off
    DECISION = "decision"  # satisfied when its decision is closed


@dataclass(frozen=True)
class VerifyBlock:
    """A fenced code block under a subsection, kept as that subsection's "how to verify"."""

    label: str  # the bold line before it, e.g. "Verification Command", "SSL Test"
    language: str  # the fence's info string, e.g. "bash"
    code: str
    section_path: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Item:
    id: str  # stable: explicit `<!-- id: x -->` or slug of nearest heading + text
    section: str  # the `##` heading it is under
    path: tuple[str, ...]  # headings from the `##` section down to the item's own subsection
    text: str  # the item's Markdown text, continuation lines joined, ✅ kept as written
    kind: ItemKind
    line: int  # 1-based line of the checkbox in the source
    checked: bool = False  # written `[x]` in the document (a claim, like ✅)
    claimed: bool = False  # the text carries ✅: shown as claimed, never counted as done
    parent_id: str | None = None  # for nested items
    decision_id: str | None = None  # for kind == DECISION
    condition: str | None = None  # e.g. "if using Docker": from the item or an enclosing heading
    details: tuple[str, ...] = ()  # non-checkbox sub-bullets, e.g. "Host: `...`"
    checks: tuple[str, ...] = ()  # ids of the checks bound to it (annotation or bindings file)
    table: bool = False  # a table row whose first cell is the checkbox
    end_line: int = 0  # 1-based last line of the item's own text (its first paragraph)

    @property
    def subsection(self) -> str:
        return self.path[-1] if self.path else self.section


@dataclass(frozen=True)
class Option:
    id: str  # slug of the label
    label: str  # the longest, most descriptive label seen, e.g. "AWS SES", "EC2 instances"
    aliases: tuple[str, ...] = ()  # lower-case short names that find it: "ses", "aws ses", "ec2"


@dataclass(frozen=True)
class Decision:
    id: str  # short slug of the topic, e.g. "email-service"
    topic: str  # human title, e.g. "Email Service"
    question: str  # the "Decision needed" text, or the topic when only numbered
    options: tuple[Option, ...]
    item_id: str | None = None  # the "Decision needed" item that this decision satisfies
    aliases: tuple[str, ...] = ()  # lower-case words that find the topic: "email", "ci", "cicd"
    quorum: int | None = None  # `<!-- quorum: 3 -->`: votes needed to close; None: the setting


@dataclass(frozen=True)
class StepPart:
    """A paragraph, list or code block under a runbook step, in document order."""

    kind: str  # "text" (Markdown source) or "code"
    text: str  # the Markdown, or the code itself
    language: str = ""  # a code block's fence info, e.g. "bash"
    label: str = ""  # a code block's bold label, e.g. "Manual Backup Command"
    derived: str = ""  # "" when written under the step; else where it was taken from


@dataclass(frozen=True)
class StepDetail:
    """Everything under a runbook step besides its title, and the actions it offers."""

    parts: tuple[StepPart, ...] = ()
    checks: tuple[str, ...] = ()  # `<!-- check: a, b -->`: a *Run checks* button
    notify: tuple[str, ...] = ()  # `<!-- notify: #ops -->`: a *Notify* button per channel

    @property
    def commands(self) -> tuple[StepPart, ...]:
        return tuple(p for p in self.parts if p.kind == "code")

    @property
    def written(self) -> tuple[StepPart, ...]:
        """The parts written under the step itself (not derived from elsewhere)."""
        return tuple(p for p in self.parts if not p.derived)

    def __bool__(self) -> bool:
        return bool(self.parts or self.checks or self.notify)


@dataclass(frozen=True)
class Runbook:
    id: str  # slug, e.g. "deployment-fails", "production-issues", "final-preparation"
    title: str  # e.g. "If Deployment Fails"
    steps: tuple[str, ...]  # the steps' titles (their first paragraph)
    source: str = "checklist"  # or the runbook file's path
    section: str = ""  # the `##` section it came from, e.g. "EMERGENCY PROCEDURES"; "" for files
    details: tuple[StepDetail, ...] = ()  # per step, in step order; shorter (or ()) = none

    def detail(self, step: int) -> StepDetail:
        """What is under step `step` (0-based); empty when nothing is."""
        return self.details[step] if 0 <= step < len(self.details) else StepDetail()


@dataclass(frozen=True)
class Targets:
    """Thresholds the document states; None where it does not say."""

    rto_minutes: int | None = None
    rpo_minutes: int | None = None
    p95_ms: int | None = None
    error_rate_percent: float | None = None
    backup_retention_days: int | None = None


@dataclass(frozen=True)
class ImportNote:
    """Something the importer saw but did not read as an item, or read in a way worth saying."""

    line: int
    kind: str  # "html_checkbox", "empty_item", "before_heading", "decision_unread", "credential"
    text: str


@dataclass(frozen=True)
class Checklist:
    title: str
    sections: tuple[str, ...]  # `##` sections that hold items, in document order
    items: tuple[Item, ...]
    decisions: tuple[Decision, ...] = ()
    runbooks: tuple[Runbook, ...] = ()
    verify_blocks: tuple[VerifyBlock, ...] = ()
    env_templates: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "backend": names
    targets: Targets = field(default_factory=Targets)
    source_sha256: str = ""
    source_text: str = ""  # the (credential-masked) Markdown it was parsed from; kept by exports
    notes: tuple[ImportNote, ...] = ()

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)
