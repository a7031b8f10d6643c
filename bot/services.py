"""The domain services every edge shares: the CLI, Slack handlers and the scheduler all call these.

Nothing here knows about Slack or terminals; lookups turn what a person typed into checklist
objects and raise `bot.errors` with messages fit to show.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import difflib
import functools
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import readiness as readiness_mod
from bot.bindings import BindingsError, apply_bindings, load_bindings, unknown_checks
from bot.checklist import (
    MAX_CHECKLIST_BYTES,
    ChecklistError,
    _read_text,
    find_decision,
    find_option,
    load_runbook_files,
    mask_credentials,
    parse_checklist,
    slugify,
)
from bot.errors import (
    AmbiguousRef,
    InputTooLong,
    InvalidInput,
    NoActiveRun,
    NotAuthorized,
    NothingToAccept,
    PreflightError,
    RunAlreadyActive,
    StaleStep,
    UnknownCheck,
    UnknownItemRef,
    UnknownOptionRef,
    UnknownRunbook,
    UnknownTopic,
)
from bot.model import Checklist, Decision, ImportNote, Item, Option, Runbook
from bot.parsed_cache import ParsedCache, cache_key
from bot.readiness import ItemState, ItemStatus, Readiness, fingerprint
from bot.settings import Settings
from checks import registry
from checks.base import Check, CheckContext, Result, Status, utcnow
from checks.redact import Redactor
from checks.runner import run_checks
from store import Acceptance, ChecklistVersion, ImportReport, RunbookRun, Signoff, Store
from store.records import ChangeMarks

MAX_REF_LEN = 200  # longer than any item id, topic or option; refuse early rather than search
_SHOWN_CANDIDATES = 5


BUNDLED_ORIGIN = "bundled"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class NotAChecklist(ChecklistError):
    """The file holds no checklist item."""


@dataclass(frozen=True)
class OverrideNote:
    """An override as the Markdown export writes it: beside the sign-offs, marked as such."""

    user: str
    at: datetime
    note: str
    na_reason: str | None = None
    override: bool = True
    override_reason: str = ""


@dataclass(frozen=True)
class Prepared:
    """A checklist read, masked, parsed and bound, ready to become the current one."""

    checklist: Checklist
    origin: str
    bindings: dict[str, list[str]]
    missing_bindings: list[str]
    notes: tuple[ImportNote, ...]


def bundled_text() -> str:
    from importlib import resources

    return resources.files("bot").joinpath("content", "checklist.md").read_text("utf-8")


def read_checklist_text(path: Path) -> str:
    """A checklist file's text, refused (ChecklistError, one line) when it is not readable Markdown
    or holds no checklist item. Touches no store."""
    text = _read_text(Path(path), MAX_CHECKLIST_BYTES, "checklist file")
    if not _parsed(text, str(path)).items:
        raise NotAChecklist(f"no checklist items found in {path}")
    return text


@functools.lru_cache(maxsize=2)
def _parsed(text: str, origin: str) -> Checklist:
    """parse_checklist, remembered for the next ask in this process: an import reads the
    file once to refuse a non-checklist and again to import it (perf, issue 11)."""
    return parse_checklist(text, source=origin)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Services:
    settings: Settings
    store: Store
    checklist: Checklist
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    missing_bindings: list[str] = field(default_factory=list)
    version: ChecklistVersion | None = None  # the stored version self.checklist was built from
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Bounds concurrent check runs (each fans out one thread per check); set from settings.
    _check_runs: threading.BoundedSemaphore | None = field(default=None, repr=False)
    _scan_copy: str | None = field(default=None, repr=False)
    # The last readiness and what it was computed from (perf, issue 11).
    _readiness_cache: _ReadinessCache | None = field(default=None, repr=False)
    _readiness_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Standing sign-offs as of (checklist version, newest sign-off event id), kept up to date
    # by the changed items only.
    _signoffs_state: tuple[int, int, dict[str, list[Signoff]]] | None = field(
        default=None, repr=False
    )

    # ---- what Slack handlers read (they reach the store only through these) ---------------

    def latest_results(self) -> dict[str, Result]:
        return self.store.latest_results()

    def signoffs(self) -> dict[str, list[Any]]:
        return self.store.signoffs()

    def decision_states(self) -> dict[str, Any]:
        return self.store.decision_states()

    def decision_state(self, decision_id: str) -> Any:
        return self.store.decision_state(decision_id)

    def votes(self, decision_id: str) -> dict[str, str]:
        return self.store.votes(decision_id)

    def active_runs(self, channel: str | None = None) -> list[RunbookRun]:
        return self.store.active_runs(channel)

    def run(self, run_id: int) -> RunbookRun:
        return self.store.run(run_id)

    def set_run_message(self, run_id: int, channel: str, ts: str) -> None:
        """Where a runbook run's message (and so its thread) is in Slack."""
        self.store.set_run_message(run_id, channel, ts)

    def refused(self, user: str, action: str, target: str, *, source: str = "slack") -> None:
        """Audit an attempt that was not allowed (the caller answers the person)."""
        self.store.audit(user, action, target, allowed=False, source=source)

    # ---- construction -------------------------------------------------------------------

    def _record(self, text: str) -> str:
        """A note or reason as it is stored: cleaned, and any configured secret a person pasted
        into it masked (it is shown in Slack and exported later)."""
        return Redactor.from_env(self.env).text(clean_text(text))

    def _record_reason(self, reason: str, what: str) -> str:
        return Redactor.from_env(self.env).text(require_reason(reason, what))

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        env: Mapping[str, str] | None = None,
        store: Store | None = None,
        *,
        bootstrap: bool = True,
    ) -> Services:
        """Open the store and take its current checklist. PREFLIGHT_CHECKLIST is imported first
        when its content differs from the current version; a fresh store with neither gets the
        bundled checklist (unless bootstrap is False: `preflight import` brings its own)."""
        opened = store or Store.open(settings.preflight_db)
        services = cls(
            settings=settings,
            store=opened,
            checklist=Checklist(title="", sections=(), items=()),
            env=dict(os.environ if env is None else env),
        )
        services.start(bootstrap=bootstrap)
        return services

    def start(self, *, bootstrap: bool = True) -> None:
        current = self.store.current_checklist()
        wanted: Prepared | None = None
        if self.settings.preflight_checklist:
            wanted = self.prepare_file(Path(self.settings.preflight_checklist))
        elif (current is None or current.source_text is None) and not bootstrap:
            return
        elif current is None or current.source_text is None:
            wanted = self.prepare_text(bundled_text(), BUNDLED_ORIGIN)
        elif self.settings.preflight_bindings:
            # Same document, the bindings file of the environment.
            wanted = self.prepare_text(current.source_text, current.origin)
        if wanted is not None:
            self.commit(wanted, imported_by="preflight (start)", source="startup")
        else:
            self.refresh(force=True)

    # The import path: prepare (read, mask, parse, bind, validate: no writes), then commit.

    def prepare_file(self, path: Path) -> Prepared:
        """Read a checklist file for import; ChecklistError/BindingsError (one line) when it is
        not one. Nothing is written."""
        # prepare_text refuses a file with no item, with read_checklist_text's words; reading
        # the text alone lets a start with PREFLIGHT_CHECKLIST take the parse from the cache.
        text = _read_text(Path(path), MAX_CHECKLIST_BYTES, "checklist file")
        return self.prepare_text(text, str(path), display=str(path))

    def prepare_text(self, text: str, origin: str, *, display: str | None = None) -> Prepared:
        masked, credential_notes = mask_credentials(
            text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        )
        parsed = self._parse(masked, origin)
        if not parsed.items:
            raise NotAChecklist(f"no checklist items found in {display or origin}")
        bindings = self._bindings_for(masked, origin, {i.id for i in parsed.items})
        unknown = unknown_checks(parsed, bindings, registry.all_checks())
        if unknown:
            raise BindingsError(
                f"unknown check id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                "(see `preflight check --list`)"
            )
        bound, missing = apply_bindings(parsed, {k: tuple(v) for k, v in bindings.items()})
        if self.settings.preflight_runbooks_dir:
            extra = tuple(load_runbook_files(self.settings.preflight_runbooks_dir))
            known = {r.id for r in bound.runbooks}
            bound = dataclasses.replace(
                bound, runbooks=bound.runbooks + tuple(r for r in extra if r.id not in known)
            )
        notes = tuple(sorted((*parsed.notes, *credential_notes), key=lambda n: n.line))
        return Prepared(bound, origin, bindings, missing, notes)

    def _bindings_for(self, masked: str, origin: str, ids: set[str]) -> dict[str, list[str]]:
        """PREFLIGHT_BINDINGS when set; else the bundled bindings for the bundled checklist;
        else the current version's bindings of the items that stay (an edited document keeps
        its bindings; another team's document gets none). Annotations bind in every case."""
        if self.settings.preflight_bindings:
            return {k: list(v) for k, v in load_bindings(self.settings.preflight_bindings).items()}
        if origin == BUNDLED_ORIGIN or _sha(masked) == _sha(mask_credentials(bundled_text())[0]):
            return {k: list(v) for k, v in load_bindings().items()}
        current = self.store.current_checklist()
        if current is None:
            return {}
        kept = {k: [i for i in v if i in ids] for k, v in current.bindings.items()}
        return {k: v for k, v in kept.items() if v}

    def commit(
        self, prepared: Prepared, *, imported_by: str = "", source: str = "cli"
    ) -> ImportReport:
        """Store a prepared checklist as the current version (none if nothing changed)."""
        with self._lock:
            report = self.store.import_checklist(
                prepared.checklist,
                source=source,
                origin=prepared.origin,
                imported_by=imported_by,
                bindings=prepared.bindings,
                notes=[{"line": n.line, "kind": n.kind, "text": n.text} for n in prepared.notes],
            )
        self.refresh(force=True)
        if report.new_version:
            self.missing_bindings = prepared.missing_bindings
        return report

    def import_file(self, path: Path, *, imported_by: str = "") -> ImportReport:
        return self.commit(self.prepare_file(path), imported_by=imported_by)

    def load(self, checklist: Checklist) -> ImportReport:
        """Make an already parsed checklist current (tests, tools): its own text is kept."""
        text = checklist.source_text
        if not text:
            raise ChecklistError("a checklist without its Markdown text cannot be stored")
        prepared = self.prepare_text(text, "checklist")
        # Keep the bindings the caller gave its items, beside those the text itself carries.
        bindings = {k: list(v) for k, v in prepared.bindings.items()}
        for item in checklist.items:
            for check_id in item.checks:
                if item.id not in bindings.setdefault(check_id, []):
                    bindings[check_id].append(item.id)
        bound, missing = apply_bindings(
            prepared.checklist, {k: tuple(v) for k, v in bindings.items()}
        )
        prepared = dataclasses.replace(
            prepared, checklist=bound, bindings=bindings, missing_bindings=missing
        )
        return self.commit(prepared, imported_by="preflight")

    def refresh(self, *, force: bool = False, marks: ChangeMarks | None = None) -> bool:
        """Rebuild self.checklist from the store when another process imported a new version
        (one indexed query when nothing changed; none when the caller just read `marks`).
        True if it changed."""
        if (
            not force
            and self.version is not None
            # change_marks: one cheap read on this thread's own connection; asked per request
            and (marks or self.store.change_marks()).version == self.version.version
        ):
            return False
        current = self.store.current_checklist()
        if current is None or current.source_text is None:
            return False
        parsed = self._parse(current.source_text, current.origin)
        bindings = {k: tuple(v) for k, v in current.bindings.items()}
        bound, missing = apply_bindings(parsed, bindings)
        if self.settings.preflight_runbooks_dir:
            try:
                extra = tuple(load_runbook_files(self.settings.preflight_runbooks_dir))
            except ChecklistError:
                extra = ()
            known = {r.id for r in bound.runbooks}
            bound = dataclasses.replace(
                bound, runbooks=bound.runbooks + tuple(r for r in extra if r.id not in known)
            )
        with self._lock:
            self.checklist = bound
            self.version = current
            self.missing_bindings = missing
            self._scan_copy = None
        return True

    def _parse(self, text: str, origin: str) -> Checklist:
        """parse_checklist(text), from the parsed-checklist cache in the store when this text
        was parsed before (every start re-read the same document; perf, issue 11)."""
        cache = ParsedCache(self.store)
        key = cache_key(text, origin)
        parsed = cache.get(key)
        if parsed is None:
            parsed = _parsed(text, origin)
            cache.put(key, parsed)
        return parsed

    def checklist_history(self) -> list[ChecklistVersion]:
        return self.store.checklist_history()

    def checklist_info(self) -> dict[str, object]:
        """What `status` says about the current checklist."""
        v = self.version
        if v is None:
            return {}
        return {
            "title": self.checklist.title,
            "source": v.origin,
            "version": v.version,
            "imported_at": v.imported_at.isoformat(),
            "imported_by": v.imported_by,
            "items": len(self.checklist.items),
            "claims": sum(1 for i in self.checklist.items if i.claimed),
        }

    def accept_claims(self, user: str, note: str, *, source: str = "cli") -> list[Item]:
        """Sign off every claimed item (a tick or ✅ in the source) after review: one audited
        sign-off each, with the reviewer's note. Items already signed off by user are skipped."""
        self.refresh()
        standing = self.store.signoffs()
        accepted: list[Item] = []
        for item in self.checklist.items:
            if not item.claimed or any(s.user == user for s in standing.get(item.id, ())):
                continue
            self.store.add_signoff(item.id, user, note=note, source=source)
            self.store.audit(user, "signoff_claim", item.id, note, source=source)
            accepted.append(item)
        return accepted

    def export_markdown(self, names: Callable[[str], str] | None = None) -> str:
        """The current checklist's document with every item's state written in; people by
        `names` (display names in Slack) where given."""
        from bot.export import ItemExport, render_source

        readiness = self.readiness()
        return render_source(
            self.checklist,
            {
                s.item.id: ItemExport(
                    s.done,
                    (
                        *s.signoffs,
                        *(
                            OverrideNote(o.user, o.at, o.reason, override_reason=o.reason)
                            for o in s.overrides
                        ),
                    ),
                )
                for s in readiness.items
            },
            **({"names": names} if names else {}),
        )

    def export_json(self, names: Callable[[str], str] | None = None) -> dict[str, object]:
        """Items with status, reason, sign-offs, claims and bound checks; decisions with votes,
        outcome and record; acceptances (when the store records them); people's names by
        `names` where given."""
        from bot.decisions import option_label, record_markdown
        from bot.export import export_data

        readiness = self.readiness()
        states = self.store.decision_states()
        decisions = []
        for d in self.checklist.decisions:
            st = states.get(d.id)
            votes = self.store.votes(d.id)
            decisions.append(
                {
                    "id": d.id,
                    "topic": d.topic,
                    "question": d.question,
                    "item_id": d.item_id,
                    "options": [o.label for o in d.options],
                    "votes": {u: option_label(d, o) for u, o in votes.items()},
                    "outcome": {
                        "status": st.status if st else "open",
                        "chosen": option_label(d, st.chosen) if st else None,
                        "closed_by": st.closed_by if st else None,
                        "closed_at": st.closed_at.isoformat() if st and st.closed_at else None,
                        "rationale": st.rationale if st else "",
                    },
                    "record": record_markdown(d, st, votes) if st and not st.is_open else None,
                }
            )
        # Hook for the gate's acceptances (issue 8, item 5): exported when the store has them.
        acceptances_of = getattr(self.store, "acceptances", None)
        acceptances = (
            [a if isinstance(a, dict) else dataclasses.asdict(a) for a in (acceptances_of() or [])]
            if callable(acceptances_of)
            else []
        )
        return export_data(
            self.checklist,
            readiness.items,
            decisions,
            version=self.checklist_info(),
            acceptances=acceptances,
            **({"names": names} if names else {}),
        )

    def _checklist_path(self) -> str | None:
        """The current checklist's document for checks that read it (secrets_plaintext): its
        file when it still exists, else a private copy of the stored text; never the bundled
        file unless the bundled checklist is current."""
        v = self.version
        if v is None:
            return None
        if v.origin == BUNDLED_ORIGIN:
            return str(Path(__file__).resolve().parent / "content" / "checklist.md")
        if Path(v.origin).is_file():
            return v.origin
        if self._scan_copy is None:
            fd, name = tempfile.mkstemp(prefix="preflight-checklist-", suffix=".md")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(v.source_text or self.checklist.source_text)
            self._scan_copy = name
            atexit.register(_remove_quietly, name)
        return self._scan_copy

    def bound_checks(self) -> list[Check]:
        """The checks bound to items of the current checklist, in registry order."""
        bound = {c for item in self.checklist.items for c in item.checks}
        return [c for cid, c in registry.all_checks().items() if cid in bound]

    # ---- readiness and checks -----------------------------------------------------------

    def check_context(self, *, allow_active: bool = False) -> CheckContext:
        return CheckContext(
            env=self.env,
            timeout_s=self.settings.preflight_check_timeout,
            allow_active=allow_active,
            targets=self.checklist.targets,
            env_templates=self.checklist.env_templates,
            checklist_path=self._checklist_path(),
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
        self.refresh()
        selected = list(checks) if checks is not None else self.bound_checks()
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
        """Readiness from stored state: cheap, no checks run. Computed once per change of
        what it derives from (the checklist, sign-offs, results, votes and decisions,
        acceptances, overrides, the registered checks) or when a result it trusted goes stale;
        every other request gets the same (immutable) answer."""
        marks = self.store.change_marks()
        self.refresh(marks=marks)
        checklist = self.checklist
        meta = registry.all_checks()
        key = (marks, _meta_token(meta))
        cached = self._readiness_cache
        if cached is not None and cached.valid(checklist, key, utcnow()):
            return cached.readiness
        # One computation per change, however many requests arrive at once: the others wait
        # for it rather than each reading and computing the same thing.
        with self._readiness_lock:
            cached = self._readiness_cache
            now = utcnow()
            if cached is not None and cached.valid(checklist, key, now):
                return cached.readiness
            # Marks first, state after: the state read is at least as new as the marks, so
            # a write racing this read costs one more computation, never a stale answer.
            acceptances: dict[str, list[Acceptance]] = {}
            for a in self.store.acceptances():
                acceptances.setdefault(a.item_id, []).append(a)
            results = self.store.latest_results()
            readiness = readiness_mod.compute(
                checklist,
                self._standing_signoffs(marks.version),
                results,
                self.store.decision_states(),
                now,
                acceptances=acceptances,
                overrides=self.store.overrides(),
                meta=meta,
            )
            self._readiness_cache = _ReadinessCache(
                checklist, key, readiness, _fresh_until(results, now)
            )
            return readiness

    def _standing_signoffs(self, version: int) -> Mapping[str, Sequence[Signoff]]:
        """store.signoffs(), re-reading only the items with a sign-off event since the last
        call (all of them after a new checklist version). Under _readiness_lock."""
        state = self._signoffs_state
        delta = getattr(self.store, "signoffs_delta", None)
        if delta is None:  # a store without the incremental read
            return self.store.signoffs()
        incremental = state is not None and state[0] == version
        now, newest, found = delta(state[1] if state and incremental else 0, full=not incremental)
        if now != version:  # another version became current in between: read it all afresh
            incremental = False
            version, (now, newest, found) = now, delta(0, full=True)
        if state is not None and incremental:
            standing = {**state[2], **found}
            for item_id in [k for k, v in found.items() if not v]:
                del standing[item_id]
        else:
            standing = found
        self._signoffs_state = (version, newest, standing)
        return standing

    def item_state(self, item_id: str) -> ItemState:
        """One item's state now (after a sign-off, to say whether it still blocks)."""
        state = self.readiness().state(item_id)
        if state is None:
            raise UnknownItemRef(f"The item “{item_id}” is no longer in the checklist.")
        return state

    # ---- items and sign-offs ------------------------------------------------------------

    def find_item(self, ref: str) -> Item:
        """An item by its full id; else, from what was typed (at least 3 characters): the
        last part of an id, a prefix of an id or of the item's text, or whole words of its
        text or id. Unique or it raises: a fragment like `ctl` or `%` matches nothing."""
        key = _check_ref(ref, "an item id")
        self.refresh()
        items = self.checklist.items
        exact = [i for i in items if i.id == key]
        if exact:
            return exact[0]
        lowered = key.lower()
        words = _words(key)
        long_enough = len(lowered) >= MIN_REF_LEN
        phrase = f" {' '.join(words)} "
        for matcher in (
            lambda i: i.id.lower() == lowered,
            lambda i: long_enough and i.id.lower().rpartition("/")[2] == lowered,
            lambda i: (
                long_enough
                and (
                    i.id.lower().startswith(lowered)
                    or i.id.lower().rpartition("/")[2].startswith(lowered)
                    or _norm(i.text).startswith(_norm(key))
                )
            ),
            lambda i: (
                long_enough
                and bool(words)
                and (
                    phrase in f" {' '.join(_words(i.text))} "
                    or phrase in f" {' '.join(_words(i.id))} "
                )
            ),
        ):
            found = [i for i in items if matcher(i)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise AmbiguousRef(
                    f"“{key}” matches {len(found)} items; use one of the ids below.",
                    [i.id for i in found[:_SHOWN_CANDIDATES]],
                )
        hint = (
            f" Give at least {MIN_REF_LEN} characters of an id or whole words of the item."
            if not long_enough or not words
            else ""
        )
        raise UnknownItemRef(f"No checklist item matches “{key}”.{hint}")

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
        user = check_user(user)
        note = self._record(note)
        na_reason = self._record(na_reason) if na_reason is not None else None
        if na_reason is not None and not na_reason:
            raise InvalidInput("Say why the item is not applicable: --na REASON.")
        item = self.find_item(ref)
        with self.store.transaction():  # the sign-off and its audit entry: both or neither
            self.store.add_signoff(
                item.id, user, note=note, na_reason=na_reason, source=source,
                request_key=request_key,
            )  # fmt: skip
            self.store.audit(user, "signoff", item.id, note, source=source)
        return item

    def override(
        self,
        ref: str,
        user: str,
        reason: str,
        *,
        authorized: bool,
        source: str = "cli",
        request_key: str | None = None,
    ) -> Item:
        """Sign an item off and make it done whatever its checks say (admins; the terminal
        is trusted). Shown as "overridden" everywhere; `unsign` withdraws it."""
        user = check_user(user)
        reason = self._record_reason(reason, "an override")
        item = self.find_item(ref)
        if not authorized:
            self.store.audit(user, "override", item.id, reason, allowed=False, source=source)
            raise NotAuthorized(
                "Only Preflight admins can override a check. Your attempt was logged."
            )
        with self.store.transaction():
            self.store.override(item.id, user, reason, source=source, request_key=request_key)
            self.store.audit(user, "override", item.id, reason, source=source)
        return item

    def accept(
        self,
        ref: str,
        user: str,
        reason: str,
        *,
        authorized: bool,
        source: str = "cli",
        request_key: str | None = None,
        expected: str | None = None,
        owner: Callable[[Item], bool] | None = None,
    ) -> list[Acceptance]:
        """Accept the current WARN result(s) holding an item, or, given a check id, every
        item that check's current WARN holds. Only that result is accepted: a different
        later result blocks again. From Slack: admins, or the owners (`owner`) of every item it
        covers; the terminal is trusted.
        `expected`: the fingerprint of the result the person saw (Slack's button); a result
        that changed since is not accepted."""
        user = check_user(user)
        reason = self._record_reason(reason, "an acceptance")
        readiness = self.readiness()
        states, target, only = self._accept_states(ref, readiness)
        if not authorized and owner is not None:
            authorized = bool(states) and all(owner(s.item) for s in states)
        if not authorized:
            self.store.audit(user, "accept", target, reason, allowed=False, source=source)
            raise NotAuthorized(
                "Only Preflight admins and the item's owners can accept a warning. "
                "Your attempt was logged."
            )
        pending = [
            (s, r) for s in states for r in _unaccepted_warnings(s) if only in (None, r.check_id)
        ]
        if expected is not None and pending:
            pending = [(s, r) for s, r in pending if fingerprint(r) == expected]
            if not pending:
                raise NothingToAccept(
                    "The check's result changed since you saw it; nothing was accepted. "
                    "Look at the new result first."
                )
        if not pending:
            state = states[0] if len(states) == 1 else None
            now = f" Its state: {state.status.value} — {state.reason}." if state else ""
            raise NothingToAccept(f"No warning to accept on {target}.{now}")
        accepted = []
        for s, r in pending:
            accepted.append(
                self.store.accept_result(
                    s.item.id,
                    r.check_id,
                    r.status.value,
                    fingerprint(r),
                    user,
                    reason,
                    summary=r.summary,
                    source=source,
                    request_key=request_key,
                )
            )
            self.store.audit(
                user, "accept", s.item.id, f"{r.check_id} WARN: {reason}", source=source
            )
        return accepted

    def _accept_states(
        self, ref: str, readiness: Readiness
    ) -> tuple[list[ItemState], str, str | None]:
        """What an acceptance of ref covers: the items a check id holds, or one item."""
        key = _check_ref(ref, "an item id or a check id").lower()
        check = registry.get(key)
        if check is not None and any(check.id in i.checks for i in self.checklist.items):
            return [s for s in readiness.items if check.id in s.item.checks], check.id, check.id
        item = self.find_item(ref)
        found = readiness.state(item.id)
        return ([found] if found is not None else []), item.id, None

    def may_accept(
        self, user: str, ref: str, groups: Callable[[str], set[str]] | None = None
    ) -> bool:
        """Whether user may accept ref's warning from Slack: an admin, or an owner of every
        item it covers (PREFLIGHT_OWNERS)."""
        if self.is_admin(user, groups):
            return True
        try:
            states, _, _ = self._accept_states(ref, self.readiness())
        except PreflightError:
            return False
        return bool(states) and all(self.is_owner(user, s.item, groups) for s in states)

    def unsign(
        self, ref: str, user: str, *, source: str = "cli", request_key: str | None = None
    ) -> tuple[Item, bool]:
        user = check_user(user)
        item = self.find_item(ref)
        with self.store.transaction():
            removed = self.store.remove_signoff(
                item.id, user, source=source, request_key=request_key
            )
            self.store.audit(
                user, "unsign", item.id, "" if removed else "no standing sign-off", source=source
            )
        return item, removed

    # ---- decisions ----------------------------------------------------------------------

    def find_decision(self, ref: str) -> Decision:
        key = _check_ref(ref, "a decision topic")
        self.refresh()
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
        user = check_user(user)
        decision = self.find_decision(topic)
        option = self.find_option(decision, option_ref)
        with self.store.transaction():  # one commit for the vote and its audit entry
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
        user = check_user(user)
        rationale = self._record(rationale)
        decision = self.find_decision(topic)
        option = self.find_option(decision, option_ref)
        if not authorized:
            self.store.audit(
                user, "close_decision", decision.id, option.id, allowed=False, source=source
            )
            raise NotAuthorized("Only deciders can close a decision; your attempt was logged.")
        with self.store.transaction():
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
        user = check_user(user)
        reason = self._record(reason)
        decision = self.find_decision(topic)
        if not authorized:
            self.store.audit(user, "reopen_decision", decision.id, allowed=False, source=source)
            raise NotAuthorized("Only deciders can reopen a decision; your attempt was logged.")
        with self.store.transaction():
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
        close = difflib.get_close_matches(slugify(key), [r.id for r in runbooks], n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
        known = ", ".join(f"`{r.id}`" for r in runbooks) or "none"
        raise UnknownRunbook(f"No runbook called “{ref}”.{hint} Runbooks: {known}.")

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
        user = check_user(user)
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
        """Mark a step done/skip (the current one unless given) or add a note to it.

        A given step (a button in a message) must still be the current one of a run that has not
        ended: a late or second click changes nothing and says why, so the timeline never
        credits a step twice."""
        user = check_user(user)
        note = self._record(note)
        run = self.store.run(run_id)
        runbook = self.runbook(run.runbook_id)
        current = next_step(runbook, run)
        if step is not None:
            _refuse_stale_step(runbook, run, step, current)
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
        by = check_user(by)
        assignee = check_user(assignee)
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


def _refuse_stale_step(runbook: Runbook, run: RunbookRun, step: int, current: int | None) -> None:
    if run.ended_at is not None:
        raise StaleStep(f"Run {run.id} has ended; nothing changed.")
    if step == current:
        return
    settled = run.step_states().get(step)
    now = f" The current step is {current + 1}." if current is not None else ""
    if settled is not None:
        verb = "done" if settled.action == "done" else "skipped"
        raise StaleStep(
            f"Step {step + 1} was already {verb} by {settled.user} at {settled.at:%H:%M} UTC; "
            f"nothing changed.{now}"
        )
    raise StaleStep(f"Step {step + 1} is not the current step; nothing changed.{now}")


@dataclass(frozen=True)
class _ReadinessCache:
    checklist: Checklist  # compared by identity: refresh() makes a new one on every change
    key: tuple[object, ...]
    readiness: Readiness
    fresh_until: datetime  # when a result it counted as fresh goes stale

    def valid(self, checklist: Checklist, key: tuple[object, ...], now: datetime) -> bool:
        return self.checklist is checklist and self.key == key and now < self.fresh_until


def _meta_token(meta: Mapping[str, Check]) -> tuple[tuple[str, bool, str], ...]:
    """What readiness reads of the registered checks (tests and plugins register more)."""
    return tuple((cid, c.blocking, c.severity) for cid, c in meta.items())


_NEVER = datetime.max.replace(tzinfo=UTC)


def _fresh_until(results: Mapping[str, Result], now: datetime) -> datetime:
    """The first moment a result that is fresh now goes stale (readiness changes then even
    though nothing is written)."""
    ends = [
        r.observed_at + timedelta(seconds=r.max_age_s)
        for r in results.values()
        if r.observed_at is not None and r.is_fresh(now)
    ]
    return min(ends, default=_NEVER)


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


MIN_REF_LEN = 3  # shorter than any word worth matching: `%`, `a`, `db` would match too much

# ANSI escape sequences (CSI, OSC, two-byte), then any other control or bidi-override
# character: notes and reasons are shown in terminals and Slack, where they could rewrite
# what a reader sees. Linear: each alternative starts with ESC and its classes are disjoint.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\^_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """A note or reason as it may be recorded and shown: ANSI escapes and control characters
    removed (newlines and tabs kept), surrounding blanks trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", _ANSI.sub("", text)).strip()


def check_user(user: str) -> str:
    """Who is recorded as doing something: a non-empty name without control characters."""
    name = user.strip()
    if not name:
        raise InvalidInput("Say who you are: --as NAME (it is recorded with what you do).")
    if clean_text(name) != name or len(name) > MAX_REF_LEN:
        raise InvalidInput("That is not a user name: use letters, digits and punctuation.")
    return name


def require_reason(reason: str, what: str) -> str:
    cleaned = clean_text(reason)
    if not cleaned:
        raise InvalidInput(f'Give a reason for {what}: --reason "…" (it is recorded).')
    return cleaned


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _unaccepted_warnings(state: ItemState) -> list[Result]:
    """The WARN results of blocking checks that hold the item and nobody accepted."""
    if state.status is not ItemStatus.WARNING:
        return []
    accepted = {(a.check_id, a.fingerprint) for a in state.acceptances}
    found = []
    for r in state.results:
        check = registry.get(r.check_id)
        blocking = check is None or check.blocking
        if r.status is Status.WARN and blocking and (r.check_id, fingerprint(r)) not in accepted:
            found.append(r)
    return found
