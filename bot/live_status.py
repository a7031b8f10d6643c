"""The live `/preflight status` message: posted once, then updated as check results arrive.

Runs after the ack, in the work pool. Check results are global, not per request, so status
requests that arrive while a run is in flight join it instead of starting another ("single
flight"): ten people typing `/preflight status` at launch time cost one run of the checks, and
the work pool stays free for everything else. Each message is updated at most once a second
(Slack's chat.update allows about that) and its last update carries the final verdict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import messages as m
from bot import views
from bot.errors import UnknownCheck
from bot.readiness import Readiness
from bot.services import Services
from checks import registry
from checks.base import Check, Result

log = logging.getLogger("preflight.status")
UPDATE_INTERVAL_S = 1.0
# A run that finished this recently answers new status requests without probing the targets
# again (the "Re-run checks" button always runs afresh).
RECENT_S = 10.0
# A request that joins a run already in flight posts its message once the run ends, or with the
# progress so far if it is still running this long after: a quick run then costs its channel one
# post instead of a post and an update (the ack has already said the checks are running).
FIRST_POST_S = 1.0
# A claim (see StatusRuns.claim) whose run() never came, because the process was stopping,
# stops blocking its channel after this long.
CLAIM_S = 60.0


def checks_for_section(services: Services, section: str | None) -> list[Check]:
    """All checks, or those bound to items of the checklist sections matching `section`."""
    checks = registry.all_checks()
    if not section:
        return services.bound_checks()  # only what verifies an item of the current checklist
    needle = section.strip().lower()
    # The section named exactly, else every section whose title contains what was typed.
    titles = [t for t in services.checklist.sections if t.lower() == needle] or [
        t for t in services.checklist.sections if needle in t.lower()
    ]
    if not titles:
        raise UnknownCheck(
            f"No section matches “{m.echo(section)}”. Sections: "
            + ", ".join(t.title() for t in services.checklist.sections)
        )
    ids = {c for i in services.checklist.items if i.section in titles for c in i.checks}
    return [checks[c] for c in sorted(ids) if c in checks]


@dataclass
class _Watcher:
    """One status message following a run."""

    client: WebClient
    channel: str
    section: str | None
    respond: Callable[..., Any]
    ts: str | None = None
    last_update: float = 0.0
    hint: str = ""  # said with the private answer when the channel post failed
    joined_at: float | None = None  # set while a joiner's message is not posted yet
    posting: bool = False  # its first post is on its way (the final pass leaves it alone)


@dataclass
class _Run:
    check_ids: frozenset[str]
    total: int
    before: Readiness
    results: list[Result] = field(default_factory=list)
    watchers: list[_Watcher] = field(default_factory=list)
    final: tuple[Readiness, list[Result]] | None = None
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Final blocks per section filter: rendered once however many messages watch the run.
    rendered: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    checklist_line: str = ""  # which checklist (source, version, imported when, by whom)

    def final_blocks(self, section: str | None) -> list[dict[str, Any]]:
        assert self.final is not None
        with self.lock:
            blocks = self.rendered.get(section)
        if blocks is None:
            blocks = views.status_final(*self.final, section)
            if self.checklist_line and len(blocks) < views.MAX_MESSAGE_BLOCKS:
                blocks = [*blocks, views.to_dicts([views.context(self.checklist_line)])[0]]
            with self.lock:
                self.rendered[section] = blocks
        return blocks


class StatusRuns:
    """At most one run of a given set of checks in flight; later requests watch it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: list[_Run] = []  # in flight, and finished within RECENT_S
        # (channel, section, checks) -> when claimed: its run() has not added its watcher yet.
        self._claims: dict[tuple[str, str | None, frozenset[str]], float] = {}

    def _prune(self) -> None:
        now = time.monotonic()
        self._current = [
            r for r in self._current if r.finished_at is None or now - r.finished_at < RECENT_S
        ]
        for key, at in list(self._claims.items()):
            if now - at >= CLAIM_S:
                del self._claims[key]

    def claim(self, channel: str, section: str | None, checks: list[Check]) -> str | None:
        """ "running" or "recent" when a run of these checks already has a message for this
        channel and section, or one on its way (a new one would add nothing but noise); else
        None, and the message is this caller's to show: it must call run() (or release()).

        Asking and claiming are one step: two people typing `/preflight status` in one channel
        at once get one message. When the answer came from the watchers alone, a request
        arriving before the first request's run() had added its watcher got a message of its
        own (at c=10, 53 messages went to 40 channels)."""
        wanted = frozenset(c.id for c in checks)
        key = (channel, section, wanted)
        now = time.monotonic()
        with self._lock:
            self._prune()
            if now - self._claims.get(key, -CLAIM_S) < CLAIM_S:
                return "running"
            for run in reversed([r for r in self._current if wanted <= r.check_ids]):
                with run.lock:
                    if any(w.channel == channel and w.section == section for w in run.watchers):
                        return "running" if run.finished_at is None else "recent"
            self._claims[key] = now
        return None

    def release(self, channel: str, section: str | None, checks: list[Check]) -> None:
        """Give up a claim whose run() will not come (its request failed after claiming)."""
        with self._lock:
            self._claims.pop((channel, section, frozenset(c.id for c in checks)), None)

    def _joinable(self, wanted: frozenset[str], fresh: bool) -> _Run | None:
        """The latest run covering `wanted` (one still in flight when `fresh`), if any.
        The caller holds the lock."""
        self._prune()
        candidates = [r for r in self._current if wanted <= r.check_ids]
        if fresh:
            candidates = [r for r in candidates if r.finished_at is None]
        return candidates[-1] if candidates else None

    def run(
        self,
        client: WebClient,
        services: Services,
        channel: str,
        section: str | None,
        checks: list[Check],
        respond: Callable[..., Any],
        *,
        fresh: bool = False,
        claimed: bool = False,
    ) -> None:
        """Show a status message in channel, following a run of checks (or a recent one).
        `claimed`: the caller holds the channel's claim (see claim()), given up at the end."""
        try:
            wanted = frozenset(c.id for c in checks)
            with self._lock:
                shared = self._joinable(wanted, fresh)
            owner = shared is None
            if shared is None:
                # The stored verdict before the run: milliseconds on a long history, so not under
                # the lock that every status ack takes (claim()) to see what is running.
                before = services.readiness()
                with self._lock:
                    shared = self._joinable(wanted, fresh)  # started meanwhile by another request
                    owner = shared is None
                    if shared is None:
                        shared = _Run(wanted, len(checks), before)
                        self._current.append(shared)
            watcher = _Watcher(client, channel, section, respond)
            if not owner:
                with shared.lock:
                    final = shared.final
                    if final is None:  # posted by the run: at its end, or at FIRST_POST_S
                        watcher.joined_at = time.monotonic()
                        shared.watchers.append(watcher)
                if final is not None:
                    _post_final(watcher, shared)
                    with shared.lock:
                        shared.watchers.append(watcher)
                return
            try:
                _post_first(watcher, shared)
                with shared.lock:
                    final = shared.final
                    if final is None:
                        shared.watchers.append(watcher)
                if final is not None:  # the run ended while this message was being posted
                    _finish(watcher, shared)
                if owner:
                    self._execute(services, checks, shared)
            finally:
                if owner:
                    with self._lock:
                        shared.finished_at = time.monotonic()
                        if shared.final is None or not shared.final[1]:
                            self._current.remove(shared)  # a failed run is not worth reusing
        finally:
            if claimed:  # its watcher is in place now, or the run failed
                self.release(channel, section, checks)

    def _execute(self, services: Services, checks: list[Check], shared: _Run) -> None:
        def on_result(result: Result) -> None:
            now = time.monotonic()
            due, first = [], []
            with shared.lock:
                shared.results.append(result)
                snapshot = list(shared.results)
                for w in shared.watchers:
                    if w.joined_at is not None:
                        if not w.posting and now - w.joined_at >= FIRST_POST_S:
                            w.posting = True
                            first.append(w)
                    elif w.ts is not None and now - w.last_update >= UPDATE_INTERVAL_S:
                        w.last_update = now
                        due.append(w)
            for w in first:  # joiners still waiting after FIRST_POST_S: show the progress
                _post_first(w, shared)
                with shared.lock:
                    w.joined_at, w.posting = None, False
                    ended = shared.final is not None
                if ended:
                    _finish(w, shared)
            for w in due:
                _update(
                    w,
                    f"Checking {shared.total} checks… {len(snapshot)} done",
                    views.status_progress(shared.total, snapshot, shared.before),
                )

        try:
            results = services.run_checks(checks, on_result=on_result)
        except Exception:
            # Watchers must not wait for an update that will never come.
            with shared.lock:
                watchers, shared.final = list(shared.watchers), (shared.before, [])
            for w in watchers:
                w.respond(
                    response_type="ephemeral",
                    replace_original=False,
                    text="The checks could not run; see the bot's log.",
                )
            raise
        readiness = services.readiness()
        with shared.lock:
            shared.checklist_line = checklist_line(services.checklist_info())
            shared.final = (readiness, results)
            watchers = [w for w in shared.watchers if not w.posting]
        for w in watchers:
            if w.joined_at is not None:
                _post_final(w, shared)  # never posted: one message, with the verdict
            else:
                _finish(w, shared)


def checklist_line(info: dict[str, Any]) -> str:
    """ "Checklist: Team Launch — launch.md, version 3, imported 2026-11-27 10:00 UTC by alice"."""
    if not info:
        return ""
    by = f" by {m.escape(str(info['imported_by']))}" if info.get("imported_by") else ""
    when = str(info["imported_at"])[:16].replace("T", " ")
    title = m.escape(str(info["title"] or "(untitled)"))
    return (
        f"Checklist: {title} — {m.escape(str(info['source']))}, version {info['version']}, "
        f"imported {when} UTC{by}"
    )


def _post_first(w: _Watcher, shared: _Run) -> None:
    with shared.lock:
        snapshot = list(shared.results)
    progress = views.status_progress(shared.total, snapshot, shared.before)
    try:
        posted = w.client.chat_postMessage(
            channel=w.channel,
            text=f"Checking {shared.total} checks…",
            blocks=progress,
        )
        w.ts, w.channel = posted["ts"], posted["channel"]
        w.last_update = time.monotonic()
    except SlackApiError as exc:
        # Not in the channel, or Slack kept failing: answer privately at the end instead.
        log.info("cannot post status in %s: %s", w.channel, exc.response.get("error"))
        w.hint = _hint(exc)


def _post_final(w: _Watcher, shared: _Run) -> None:
    """A new message straight with the final verdict of a run that has already finished."""
    assert shared.final is not None
    blocks = shared.final_blocks(w.section)
    text = m.headline(shared.final[0])
    try:
        posted = w.client.chat_postMessage(channel=w.channel, text=text, blocks=blocks)
        w.ts, w.channel = posted["ts"], posted["channel"]
    except SlackApiError as exc:
        log.info("cannot post status in %s: %s", w.channel, exc.response.get("error"))
        w.hint = _hint(exc)
        w.respond(
            response_type="ephemeral", text=text, blocks=_hinted(w, blocks), replace_original=False
        )


def _hinted(w: _Watcher, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The private answer's blocks, led by the /invite hint when there is one (the
    notification text stays the verdict)."""
    if not w.hint:
        return blocks
    return [*views.plain(w.hint), *blocks][: views.MAX_MESSAGE_BLOCKS]


def _hint(exc: SlackApiError) -> str:
    if exc.response.get("error") in ("not_in_channel", "channel_not_found"):
        return m.not_in_channel("post the status here")
    return ""


def _finish(w: _Watcher, shared: _Run) -> None:
    assert shared.final is not None
    blocks = shared.final_blocks(w.section)
    text = m.headline(shared.final[0])
    if w.ts is None or not _update(w, text, blocks):
        w.respond(
            response_type="ephemeral", text=text, blocks=_hinted(w, blocks), replace_original=False
        )


def _update(w: _Watcher, text: str, blocks: list[dict[str, Any]]) -> bool:
    """chat.update with text and blocks together; False when Slack would not take it."""
    assert w.ts is not None
    try:
        w.client.chat_update(channel=w.channel, ts=w.ts, text=text, blocks=blocks)
        return True
    except SlackApiError as exc:
        log.warning("chat.update failed: %s", exc.response.get("error"))
        return False


def rerun_in_place(
    client: WebClient,
    services: Services,
    channel: str,
    ts: str,
    section: str | None,
    checks: list[Check],
    respond: Callable[..., Any],
) -> None:
    """The *Re-run checks* button: run afresh and show progress and verdict in the message the
    button is on (chat.update), not in a new one."""
    watcher = _Watcher(client, channel, section, respond, ts=ts, last_update=time.monotonic())
    before = services.readiness()
    results: list[Result] = []
    lock = threading.Lock()
    _update(
        watcher,
        f"Checking {len(checks)} checks…",
        views.status_progress(len(checks), [], before),
    )

    def on_result(result: Result) -> None:
        with lock:
            results.append(result)
            snapshot = list(results)
            due = time.monotonic() - watcher.last_update >= UPDATE_INTERVAL_S
            if due:
                watcher.last_update = time.monotonic()
        if due:
            _update(
                watcher,
                f"Checking {len(checks)} checks… {len(snapshot)} done",
                views.status_progress(len(checks), snapshot, before),
            )

    final = services.run_checks(checks, on_result=on_result)
    readiness = services.readiness()
    blocks = views.status_final(readiness, final, section)
    line = checklist_line(services.checklist_info())
    if line and len(blocks) < views.MAX_MESSAGE_BLOCKS:
        blocks = [*blocks, views.to_dicts([views.context(line)])[0]]
    text = m.headline(readiness)
    if not _update(watcher, text, blocks):
        respond(response_type="ephemeral", text=text, blocks=blocks, replace_original=False)
