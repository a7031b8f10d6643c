"""Persistence: the only package with SQL. SQLite via sqlite-utils; events in, state derived."""

from store.db import open_database
from store.errors import (
    DecisionClosed,
    DecisionNotClosed,
    DuplicateItem,
    RunEnded,
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
    "DecisionClosed",
    "DecisionNotClosed",
    "DecisionState",
    "DuplicateItem",
    "ImportReport",
    "Override",
    "RunEnded",
    "RunbookRun",
    "Signoff",
    "StepEvent",
    "Store",
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
