"""Readiness digests: a channel subscribes to a daily post of readiness and what changed.

Each digest is compared with a snapshot of the one before it, kept per channel in the store.
The snapshot is saved only after Slack accepted the post, so a failed post never swallows the
changes it would have reported: the next digest reports them instead.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, DividerBlock

from bot import messages as m
from bot import views
from bot.errors import PreflightError
from bot.readiness import FAILING, ItemStatus, Readiness
from bot.services import Services
from checks.base import SEVERITY_ORDER, Check, Status
from store import Subscription

log = logging.getLogger("preflight.digests")

SNAPSHOT_VERSION = 1
MAX_CHANGE_LINES = 15
TOP_BLOCKERS = 5
DEFAULT_TIME = "09:00"

_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_DONE = frozenset({ItemStatus.DONE.value, ItemStatus.NOT_APPLICABLE.value})
_FAILING = frozenset(s.value for s in FAILING)
_DAILY = "daily "  # the store's own default schedule is "daily HH:MM"


class BadSchedule(PreflightError):
    """The digest time is not HH:MM on a 24-hour clock."""


class DigestNotPosted(PreflightError):
    """Slack refused the digest; `error` is Slack's error code (e.g. not_in_channel)."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error


# ---- schedules and subscriptions ---------------------------------------------------------


def parse_time(text: str) -> str:
    """Normalise "9:00" or "09:00" (24-hour, UTC) to "09:00"; anything else raises BadSchedule."""
    match = _TIME.fullmatch(text.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise BadSchedule(m.digest_bad_schedule(text))
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def schedule_time(schedule: str) -> tuple[int, int]:
    """Hour and minute of a stored schedule ("HH:MM", or the store's "daily HH:MM")."""
    text = schedule.strip()
    if text.lower().startswith(_DAILY):
        text = text[len(_DAILY) :]
    hour, minute = parse_time(text).split(":")
    return int(hour), int(minute)


# A running scheduler registers its reload here, so a subscription change takes effect at once
# without bot/digests.py importing bot/scheduler.py (which imports this module).
_reload_hooks: list[Callable[[], None]] = []
_hooks_lock = threading.Lock()


def add_reload_hook(hook: Callable[[], None]) -> None:
    with _hooks_lock:
        _reload_hooks.append(hook)


def remove_reload_hook(hook: Callable[[], None]) -> None:
    with _hooks_lock:
        if hook in _reload_hooks:
            _reload_hooks.remove(hook)


def _subscriptions_changed() -> None:
    with _hooks_lock:
        hooks = list(_reload_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception:
            # The change is stored; the scheduler's periodic sync will pick it up.
            log.warning("scheduler reload failed after a subscription change", exc_info=True)


def subscribe(
    services: Services, channel: str, user: str, at: str = DEFAULT_TIME, *, source: str = "slack"
) -> Subscription:
    """Subscribe channel to a daily digest at `at` (HH:MM UTC); again replaces the time."""
    schedule = parse_time(at)  # raises before anything is stored
    subscription = services.store.subscribe(channel, user, schedule=schedule)
    services.store.audit(user, "digest_subscribe", channel, schedule, source=source)
    _subscriptions_changed()
    return subscription


def unsubscribe(services: Services, channel: str, user: str, *, source: str = "slack") -> bool:
    """Stop channel's digests; False if it had none."""
    removed = services.store.unsubscribe(channel, user)
    services.store.audit(
        user, "digest_unsubscribe", channel, "" if removed else "no subscription", source=source
    )
    if removed:
        _subscriptions_changed()
    return removed


# ---- what changed ------------------------------------------------------------------------


def snapshot(readiness: Readiness) -> dict[str, Any]:
    """The least the next digest needs to say what changed (stored as JSON)."""
    return {
        "version": SNAPSHOT_VERSION,
        "gate": readiness.gate.value,
        "done": readiness.done,
        "applicable": readiness.applicable,
        "items": {s.item.id: s.status.value for s in readiness.items},
        "checks": {cid: r.status.value for cid, r in sorted(readiness.checks.items())},
        "decisions_open": list(readiness.decisions_open),
        "decisions_closed": list(readiness.decisions_closed),
        "computed_at": readiness.computed_at.isoformat(),
    }


def changes(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    limit: int = MAX_CHANGE_LINES,
) -> list[str]:
    """Lines saying what changed from previous to current, most important first, at most
    `limit` of them plus a "… and N more" line. Empty when nothing changed (or no previous)."""
    if not previous:
        return []
    # Buckets in the order a reader needs them; truncation drops from the end.
    gate: list[str] = []
    worse: list[str] = []
    decided: list[str] = []
    better: list[str] = []
    checks_worse: list[str] = []
    checks_better: list[str] = []
    other: list[str] = []

    if previous.get("gate") != current["gate"]:
        gate.append(m.digest_gate_changed(str(previous.get("gate", "?")), current["gate"]))
    if (previous.get("done"), previous.get("applicable")) != (
        current["done"],
        current["applicable"],
    ):
        gate.append(
            m.digest_progress_changed(
                _int(previous.get("done")),
                _int(previous.get("applicable")),
                current["done"],
                current["applicable"],
            )
        )

    before_items: Mapping[str, str] = previous.get("items") or {}
    for item_id, new in current["items"].items():
        old = before_items.get(item_id)
        if old is None or old == new:
            continue
        line = m.digest_item_changed(item_id, old, new)
        if new in _DONE:
            better.append(line)
        elif old in _DONE or new in (ItemStatus.FAILING.value, ItemStatus.STALE.value):
            worse.append(line)
        else:
            other.append(line)
    added = sum(1 for i in current["items"] if i not in before_items)
    removed = sum(1 for i in before_items if i not in current["items"])
    if before_items and (added or removed):
        other.append(m.digest_checklist_changed(added, removed))

    before_checks: Mapping[str, str] = previous.get("checks") or {}
    for check_id, new in current["checks"].items():
        old = before_checks.get(check_id)
        if old == new:
            continue
        line = m.digest_check_changed(check_id, old, new)
        (checks_worse if _got_worse(old, new) else checks_better).append(line)

    was_open = set(previous.get("decisions_open") or ())
    was_closed = set(previous.get("decisions_closed") or ())
    decided += [m.digest_decision_closed(d) for d in current["decisions_closed"] if d in was_open]
    worse += [m.digest_decision_reopened(d) for d in current["decisions_open"] if d in was_closed]

    lines = gate + worse + checks_worse + decided + better + checks_better + other
    if len(lines) > limit:
        return [*lines[:limit], m.digest_more_changes(len(lines) - limit)]
    return lines


def _got_worse(old: str | None, new: str) -> bool:
    if old is None:
        return new in _FAILING
    return _rank(new) < _rank(old)


def _rank(status: str) -> int:
    """Higher is better: position in checks.base.SEVERITY_ORDER (worst first)."""
    try:
        return SEVERITY_ORDER.index(Status(status))
    except ValueError:
        return -1


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _previous_time(previous: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(previous["computed_at"]))
    except (KeyError, ValueError):
        return None


# ---- the message -------------------------------------------------------------------------


def compose(
    services: Services, previous: Mapping[str, Any] | None
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The digest from stored state: notification text, Block Kit blocks, and the snapshot to
    keep once it is posted."""
    readiness = services.readiness()
    current = snapshot(readiness)
    changed = changes(previous, current)
    text = m.digest_text(readiness, bool(changed) if previous is not None else None)
    return text, _blocks(readiness, previous, changed), current


def _blocks(
    readiness: Readiness, previous: Mapping[str, Any] | None, changed: Sequence[str]
) -> list[dict[str, Any]]:
    blocks: list[Block] = [
        views.header(m.digest_title()),
        views.section(m.digest_headline(readiness)),
    ]
    blocks += views.lines_to_sections(
        [
            f"`{m.bar(s.percent)}` {m.escape(s.title.title())} ({s.done}/{s.applicable})"
            for s in readiness.sections
        ],
        max_blocks=3,
    )
    blockers = readiness.blockers
    if blockers:
        lines = [m.digest_blockers_heading(len(blockers))]
        lines += [views.blocker_line(b) for b in blockers[:TOP_BLOCKERS]]
        if len(blockers) > TOP_BLOCKERS:
            lines.append(m.digest_more_blockers(len(blockers) - TOP_BLOCKERS))
        blocks += views.lines_to_sections(lines, max_blocks=2)
    blocks.append(DividerBlock())
    if previous is None:
        blocks.append(views.section(m.digest_first()))
    else:
        since = _previous_time(previous)
        if changed:
            blocks += views.lines_to_sections(
                [m.digest_changes_heading(since), *changed], max_blocks=3
            )
        else:
            blocks.append(views.section(m.digest_no_changes(since)))
    blocks.append(views.context(m.digest_footer(readiness)))
    return views.to_dicts(blocks[: views.MAX_MESSAGE_BLOCKS])


def digest_checks(services: Services) -> list[Check]:
    """The checks a digest runs: those bound to the checklist's items, passive ones only.

    Unbound checks can't change readiness. Active checks send traffic, so a digest never runs
    them, and running them with allow_active off would store SKIPPED over their last real result.
    """
    bound = {check_id for item in services.checklist.items for check_id in item.checks}
    return [c for c in services.checks_for() if c.id in bound and not c.active]


def post(client: WebClient, services: Services, channel: str, *, run_checks: bool = True) -> None:
    """Post channel's digest: run the passive checks (unless told not to), compare with the
    channel's last digest, post, and only then remember what was posted.

    Raises DigestNotPosted (with a message fit to show) when Slack refuses the post.
    """
    if run_checks:
        services.run_checks(digest_checks(services))
    previous = services.store.last_digest_snapshot(channel)
    text, blocks, current = compose(services, previous)
    try:
        client.chat_postMessage(channel=channel, text=text, blocks=blocks)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "unknown_error")
        # Only Slack's error code: the exception's text carries the whole response.
        log.warning("digest for %s not posted: Slack said %s", channel, error)
        raise DigestNotPosted(m.digest_not_posted(error), error) from exc
    services.store.save_digest_snapshot(channel, current)
