"""The domain services every edge shares: the CLI, Slack handlers and the scheduler all call these.

Nothing here knows about Slack or terminals; lookups turn what a person typed into checklist
objects and raise `bot.errors` with messages fit to show.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot import readiness as readiness_mod
from bot.bindings import apply_bindings, load_bindings
from bot.checklist import (
    find_decision,
    find_option,
    load_bundled,
    load_runbook_files,
    read_checklist_file,
    slugify,
)
from bot.errors import (
    AmbiguousRef,
    InputTooLong,
    NoActiveRun,
    NotAuthorized,
    RunAlreadyActive,
    UnknownCheck,
    UnknownItemRef,
    UnknownOptionRef,
    UnknownRunbook,
    UnknownTopic,
)
from bot.model import Checklist, Decision, Item, Option, Runbook
from bot.readiness import ItemState, Readiness
from bot.settings import Settings
from checks import registry
from checks.base import Check, CheckContext, Result
from checks.runner import run_checks
from store import ImportReport, RunbookRun, Store

MAX_REF_LEN = 200  # longer than any item id, topic or option; refuse early rather than search
_SHOWN_CANDIDATES = 5


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class Services:
    settings: Settings
    store: Store
    checklist: Checklist
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    missing_bindings: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Bounds concurrent check runs (each fans out one thread per check); set from settings.
    _check_runs: threading.BoundedSemaphore | None = field(default=None, repr=False)

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: Settings, env: Mapping[str, str] | None = None, store: Store | None = None
    ) -> Services:
        """Open the store, load the checklist (bundled unless PREFLIGHT_CHECKLIST), bind checks,
        and record the checklist version in the store."""
        checklist = (
            read_checklist_file(settings.preflight_checklist)
            if settings.preflight_checklist
            else load_bundled()
        )
        services = cls(
            settings=settings,
            store=store or Store.open(settings.preflight_db),
            checklist=checklist,
            env=dict(os.environ if env is None else env),
        )
        services.load(checklist)
        return services

    def load(self, checklist: Checklist) -> ImportReport:
        """Make checklist the current one: bind checks, add runbook files, store the version."""
        bound, missing = apply_bindings(checklist, load_bindings())
        if self.settings.preflight_runbooks_dir:
            extra = tuple(load_runbook_files(self.settings.preflight_runbooks_dir))
            known = {r.id for r in bound.runbooks}
            bound = dataclasses.replace(
                bound, runbooks=bound.runbooks + tuple(r for r in extra if r.id not in known)
            )
        with self._lock:
            report = self.store.import_checklist(bound)
            self.checklist = bound
            self.missing_bindings = missing
        return report

    def import_file(self, path: Path) -> ImportReport:
        return self.load(read_checklist_file(path))

    # ---- readiness and checks -----------------------------------------------------------

    def check_context(self, *, allow_active: bool = False) -> CheckContext:
        return CheckContext(
            env=self.env,
            timeout_s=self.settings.preflight_check_timeout,
            allow_active=allow_active,
            targets=self.checklist.targets,
            env_templates=self.checklist.env_templates,
            checklist_path=str(self.settings.preflight_checklist)
            if self.settings.preflight_checklist
            else None,
        )

    def checks_for(self, ref: str | None = None) -> list[Check]:
        """All checks, one by id, or those of a section (`all` means all)."""
        checks = registry.all_checks()
        if ref is None or ref.strip().lower() in ("", "all"):
            return list(checks.values())
        key = ref.strip().lower()
        if key in checks:
            return [checks[key]]
        by_section = registry.select(section=key)
        if by_section:
            return by_section
        item_checks = self._item_checks(key)
        if item_checks:
            return [checks[c] for c in item_checks if c in checks]
        raise UnknownCheck(f"No check or section called “{ref}”. Try `check all`.")

    def _item_checks(self, ref: str) -> tuple[str, ...]:
        try:
            return self.find_item(ref).checks
        except (UnknownItemRef, AmbiguousRef):
            return ()

    def run_checks(
        self,
        checks: Sequence[Check] | None = None,
        *,
        on_result: Callable[[Result], None] | None = None,
        allow_active: bool = False,
    ) -> list[Result]:
        selected = list(checks) if checks is not None else list(registry.all_checks().values())
        if self._check_runs is None:
            self._check_runs = threading.BoundedSemaphore(
                max(1, self.settings.preflight_checks_workers)
            )
        with self._check_runs:
            return run_checks(
                selected,
                self.check_context(allow_active=allow_active),
                on_result=on_result,
                store=self.store,
            )

    def readiness(self) -> Readiness:
        """Readiness from stored state: cheap, no checks run."""
        return readiness_mod.compute(
            self.checklist,
            self.store.signoffs(),
            self.store.latest_results(),
            self.store.decision_states(),
        )

    # ---- items and sign-offs ------------------------------------------------------------

    def find_item(self, ref: str) -> Item:
        """An item by id, id suffix, or words of its text; unique or it raises."""
        key = _check_ref(ref, "an item id")
        items = self.checklist.items
        exact = [i for i in items if i.id == key]
        if exact:
            return exact[0]
        lowered = key.lower()
        for matcher in (
            lambda i: i.id.lower() == lowered,
            lambda i: i.id.lower().endswith("/" + lowered),
            lambda i: i.id.lower().startswith(lowered),
            lambda i: slugify(key) != "" and slugify(key) in i.id,
            lambda i: _norm(key) in _norm(i.text),
        ):
            found = [i for i in items if matcher(i)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise AmbiguousRef(
                    f"“{key}” matches {len(found)} items; use one of the ids below.",
                    [i.id for i in found[:_SHOWN_CANDIDATES]],
                )
        raise UnknownItemRef(f"No checklist item matches “{key}”.")

    def signoff(
        self,
        ref: str,
        user: str,
        *,
        note: str = "",
        na_reason: str | None = None,
        source: str = "cli",
        request_key: str | None = None,
    ) -> Item:
        item = self.find_item(ref)
        self.store.add_signoff(
            item.id, user, note=note, na_reason=na_reason, source=source, request_key=request_key
        )
        self.store.audit(user, "signoff", item.id, note, source=source)
        return item

    def unsign(
        self, ref: str, user: str, *, source: str = "cli", request_key: str | None = None
    ) -> tuple[Item, bool]:
        item = self.find_item(ref)
        removed = self.store.remove_signoff(item.id, user, source=source, request_key=request_key)
        self.store.audit(
            user, "unsign", item.id, "" if removed else "no standing sign-off", source=source
        )
        return item, removed

    # ---- decisions ----------------------------------------------------------------------

    def find_decision(self, ref: str) -> Decision:
        key = _check_ref(ref, "a decision topic")
        found = find_decision(self.checklist, key)
        if not found:
            raise UnknownTopic(f"No open question matches “{key}”.")
        if len(found) > 1:
            raise AmbiguousRef(
                f"“{key}” matches {len(found)} decisions; be more specific.",
                [d.id for d in found[:_SHOWN_CANDIDATES]],
            )
        return found[0]

    def find_option(self, decision: Decision, ref: str) -> Option:
        key = _check_ref(ref, "an option")
        option = find_option(decision, key)
        if option is None:
            labels = ", ".join(o.label for o in decision.options)
            raise UnknownOptionRef(f"“{key}” is not an option of {decision.topic}: {labels}.")
        return option

    def vote(
        self,
        topic: str,
        option_ref: str,
        user: str,
        *,
        source: str = "cli",
        request_key: str | None = None,
    ) -> tuple[Decision, Option]:
        decision = self.find_decision(topic)
        option = self.find_option(decision, option_ref)
        self.store.vote(decision.id, option.id, user, source=source, request_key=request_key)
        self.store.audit(user, "vote", decision.id, option.id, source=source)
        return decision, option

    def is_decider(self, user: str, groups: Callable[[str], set[str]] | None = None) -> bool:
        """Whether user may close decisions: listed, or in a listed user group."""
        deciders = set(self.settings.preflight_deciders)
        if user in deciders:
            return True
        if groups is None:
            return False
        return any(user in groups(g) for g in deciders if g.startswith("S"))

    def close_decision(
        self,
        topic: str,
        option_ref: str,
        user: str,
        rationale: str = "",
        *,
        authorized: bool,
        source: str = "cli",
        request_key: str | None = None,
    ) -> tuple[Decision, Option]:
        decision = self.find_decision(topic)
        option = self.find_option(decision, option_ref)
        if not authorized:
            self.store.audit(
                user, "close_decision", decision.id, option.id, allowed=False, source=source
            )
            raise NotAuthorized("Only deciders can close a decision; your attempt was logged.")
        self.store.close_decision(
            decision.id, option.id, user, rationale, source=source, request_key=request_key
        )
        self.store.audit(user, "close_decision", decision.id, option.id, source=source)
        return decision, option

    def reopen_decision(
        self,
        topic: str,
        user: str,
        reason: str = "",
        *,
        authorized: bool,
        source: str = "cli",
        request_key: str | None = None,
    ) -> Decision:
        decision = self.find_decision(topic)
        if not authorized:
            self.store.audit(user, "reopen_decision", decision.id, allowed=False, source=source)
            raise NotAuthorized("Only deciders can reopen a decision; your attempt was logged.")
        self.store.reopen_decision(
            decision.id, user, reason, source=source, request_key=request_key
        )
        self.store.audit(user, "reopen_decision", decision.id, reason, source=source)
        return decision

    # ---- runbooks -----------------------------------------------------------------------

    def find_runbook(self, ref: str) -> Runbook:
        key = _check_ref(ref, "a runbook name").lower()
        runbooks = self.checklist.runbooks
        for matcher in (
            lambda r: r.id == key,
            lambda r: r.id.startswith(key) or slugify(key) == r.id,
            lambda r: slugify(key) in r.id or _norm(key) in _norm(r.title),
        ):
            found = [r for r in runbooks if matcher(r)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise AmbiguousRef(f"“{ref}” matches {len(found)} runbooks.", [r.id for r in found])
        raise UnknownRunbook(f"No runbook called “{ref}”.")

    def runbook(self, runbook_id: str) -> Runbook:
        found = next((r for r in self.checklist.runbooks if r.id == runbook_id), None)
        if found is None:
            raise UnknownRunbook(f"The runbook “{runbook_id}” is no longer in the checklist.")
        return found

    def start_run(
        self,
        ref: str,
        user: str,
        *,
        channel: str | None = None,
        thread_ts: str | None = None,
        source: str = "cli",
    ) -> tuple[Runbook, RunbookRun]:
        runbook = self.find_runbook(ref)
        active = self.store.active_runs(channel) if channel is not None else []
        if active:
            raise RunAlreadyActive(
                "A runbook run is already active in this channel: `/runbook status` shows it, "
                "`/runbook end` finishes it.",
                active[-1],
            )
        run = self.store.start_run(
            runbook.id, user, channel=channel, thread_ts=thread_ts, source=source
        )
        self.store.audit(user, "runbook_start", f"{runbook.id}#{run.id}", source=source)
        return runbook, run

    def active_run(self, channel: str | None) -> tuple[Runbook, RunbookRun]:
        runs = self.store.active_runs(channel)
        if not runs:
            raise NoActiveRun("No runbook run is active here. Start one with `/runbook NAME`.")
        run = runs[-1]
        return self.runbook(run.runbook_id), run

    def step(
        self,
        run_id: int,
        action: str,
        user: str,
        note: str = "",
        *,
        step: int | None = None,
        source: str = "cli",
        request_key: str | None = None,
    ) -> tuple[Runbook, RunbookRun]:
        """Mark a step done/skip (the current one unless given) or add a note to it."""
        run = self.store.run(run_id)
        runbook = self.runbook(run.runbook_id)
        current = next_step(runbook, run)
        target = current if step is None else step
        if target is None:
            raise NoActiveRun("Every step is done: `/runbook end` finishes the run.")
        if not 0 <= target < len(runbook.steps):
            raise NoActiveRun(f"This runbook has steps 1 to {len(runbook.steps)}.")
        self.store.step_event(run_id, target, action, user, note, request_key=request_key)
        self.store.audit(
            user, f"runbook_{action}", f"{runbook.id}#{run_id}:{target + 1}", source=source
        )
        return runbook, self.store.run(run_id)

    def end_run(
        self,
        run_id: int,
        user: str,
        *,
        source: str = "cli",
        groups: Callable[[str], set[str]] | None = None,
        trusted: bool = True,
    ) -> tuple[Runbook, RunbookRun]:
        """End a run: whoever started it or an admin (the terminal is trusted)."""
        run = self.store.run(run_id)
        if not trusted and user != run.started_by and not self.is_admin(user, groups):
            self.store.audit(
                user, "runbook_end", f"{run.runbook_id}#{run_id}", allowed=False, source=source
            )
            raise NotAuthorized(
                "Only the person who started this run, or a Preflight admin, can end it. "
                "Your attempt was logged."
            )
        run = self.store.end_run(run_id, user)
        self.store.audit(user, "runbook_end", f"{run.runbook_id}#{run_id}", source=source)
        return self.runbook(run.runbook_id), run

    # ---- roles and assignment -----------------------------------------------------------

    def is_admin(self, user: str, groups: Callable[[str], set[str]] | None = None) -> bool:
        """Admins run active checks and manage digests; deciders count as admins."""
        allowed = set(self.settings.preflight_admins) | set(self.settings.preflight_deciders)
        if user in allowed:
            return True
        return groups is not None and any(user in groups(g) for g in allowed if g.startswith("S"))

    def is_owner(
        self, user: str, item: Item, groups: Callable[[str], set[str]] | None = None
    ) -> bool:
        """Whether user owns one of the headings item sits under (PREFLIGHT_OWNERS)."""
        owners = self.settings.preflight_owners
        headings = {slugify(h) for h in (item.section, *item.path)}
        allowed = {who for h in headings for who in owners.get(h, ())}
        if user in allowed:
            return True
        return groups is not None and any(user in groups(g) for g in allowed if g.startswith("S"))

    def assign(
        self,
        ref: str,
        assignee: str,
        by: str,
        *,
        source: str = "cli",
        groups: Callable[[str], set[str]] | None = None,
        trusted: bool = True,
    ) -> Item:
        """Say who should sign an item off: admins and the section's owners (terminal: trusted)."""
        item = self.find_item(ref)
        if not trusted and not (self.is_admin(by, groups) or self.is_owner(by, item, groups)):
            self.store.audit(by, "assign", item.id, assignee, allowed=False, source=source)
            raise NotAuthorized(
                "Only Preflight admins and this section's owners can assign its items. "
                "Your attempt was logged."
            )
        self.store.assign(item.id, assignee, by, source=source)
        self.store.audit(by, "assign", item.id, assignee, source=source)
        return item

    def waiting_on(self, user: str) -> list[ItemState]:
        """Open items assigned to user, in the order the readiness lists blockers."""
        mine = {i for i, who in self.store.assignments().items() if who == user}
        return [s for s in self.readiness().blockers if s.item.id in mine]


def next_step(runbook: Runbook, run: RunbookRun) -> int | None:
    """The first step not yet done or skipped, or None when all are."""
    settled = run.step_states()
    return next((i for i in range(len(runbook.steps)) if i not in settled), None)


def _check_ref(ref: str, what: str) -> str:
    key = ref.strip()
    if not key:
        raise UnknownItemRef(f"Give {what}.")
    if len(key) > MAX_REF_LEN:
        raise InputTooLong(f"That is too long for {what} ({len(key)} characters).")
    if re.search(r"[\x00-\x08\x0b-\x1f]", key):
        raise UnknownItemRef(f"That is not {what}.")
    return key
