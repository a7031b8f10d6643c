"""Persistence: the only package with SQL. SQLite via sqlite-utils; events in, state derived."""

from store.db import open_database
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
    Assignment,
    AuditEntry,
    ChecklistVersion,
    DecisionState,
    ImportReport,
    RunbookRun,
    Signoff,
    StepEvent,
    Subscription,
    Vote,
)
from store.sqlite import Store

__all__ = [
    "Assignment",
    "AuditEntry",
    "ChecklistVersion",
    "DecisionClosed",
    "DecisionNotClosed",
    "DecisionState",
    "DuplicateItem",
    "ImportReport",
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
