"""Persistence: the only package with SQL. SQLite via sqlite-utils; events in, state derived."""

from store.db import open_database
from store.decision_polls import DigestPoint, PollMessage
from store.errors import (
    DecisionClosed,
    DecisionNotClosed,
    DuplicateItem,
    RunEnded,
    StoreDamaged,
    StoreError,
    StoreUnavailable,
    UnknownAction,
    UnknownDecision,
    UnknownItem,
    UnknownOption,
    UnknownRun,
)
from store.records import (
    Acceptance,
    Assignment,
    AuditEntry,
    ChecklistVersion,
    DecisionState,
    ImportReport,
    Override,
    RunbookRun,
    Signoff,
    StepEvent,
    Subscription,
    Vote,
)
from store.sqlite import Store

__all__ = [
    "Acceptance",
    "Assignment",
    "AuditEntry",
    "ChecklistVersion",
    "DecisionClosed",
    "DecisionNotClosed",
    "DecisionState",
    "DigestPoint",
    "DuplicateItem",
    "ImportReport",
    "Override",
    "PollMessage",
    "RunEnded",
    "RunbookRun",
    "Signoff",
    "StepEvent",
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "UnknownAction",
    "UnknownDecision",
    "UnknownItem",
    "UnknownOption",
    "UnknownRun",
    "Vote",
    "open_database",
]
