"""Errors the edges (CLI, Slack handlers) turn into one clear line for a person."""

from __future__ import annotations

from typing import Any

# The store's errors carry messages fit to show too; the edges (Slack handlers, the CLI) catch
# them by this name without reaching into the store layer.
from store.errors import StoreError as StoreError


class PreflightError(Exception):
    """Base for errors whose message is safe and meant to be shown to the user."""


class UnknownItemRef(PreflightError):
    """No checklist item matches what was typed."""


class AmbiguousRef(PreflightError):
    """What was typed matches several things; the message lists some of them."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class UnknownTopic(PreflightError):
    """No decision matches what was typed."""


class UnknownOptionRef(PreflightError):
    """The decision has no option matching what was typed."""


class UnknownRunbook(PreflightError):
    """No runbook matches what was typed."""


class UnknownCheck(PreflightError):
    """No registered check matches what was typed."""


class NotAuthorized(PreflightError):
    """The user may not do this (the attempt is audited)."""


class InputTooLong(PreflightError):
    """The text is longer than any valid command could be."""


class StaleStep(PreflightError):
    """A runbook button for a step that is no longer current, or on a run that has ended."""


class NoActiveRun(PreflightError):
    """There is no runbook run here, or it has no step left to act on."""


class RunAlreadyActive(PreflightError):
    """A channel runs one runbook at a time."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run  # the active store.RunbookRun, so the answer can say what became of it


class InvalidInput(PreflightError):
    """A user name, reason or note that cannot be recorded as given (empty, control text)."""


class NothingToAccept(PreflightError):
    """Only a blocking check's WARN result can be accepted, and the item has none."""
