"""What the store refuses, by name; the edges (handlers, CLI) word it for people."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class StoreUnavailable(StoreError):
    """The database file cannot be opened or created (path, permissions, not a database)."""


class StoreDamaged(StoreUnavailable):
    """The store file failed SQLite's integrity check; nothing is written into it."""


class UnknownItem(StoreError):
    """No item with this id in the current checklist version."""


class UnknownDecision(StoreError):
    """No decision with this id in the current checklist version."""


class UnknownOption(StoreError):
    """The decision has no option with this id."""


class DecisionClosed(StoreError):
    """The decision is closed: reopen it before voting or closing it again."""


class DecisionNotClosed(StoreError):
    """The decision is not closed, so it cannot be reopened."""


class UnknownRun(StoreError):
    """No runbook run with this id."""


class RunEnded(StoreError):
    """The runbook run has ended and takes no more steps."""


class UnknownAction(StoreError, ValueError):
    """Not a runbook step action (done, skip, note, undo)."""


class DuplicateItem(StoreError, ValueError):
    """The checklist holds two items (or decisions, or options) with one id."""


class DuplicateRequest(Exception):
    """A Slack request whose id was already claimed (a retry or a replay): nothing it asks for
    is applied again. Deliberately not a StoreError: it is answered with an empty 200, never
    worded to the person."""
