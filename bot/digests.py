"""Readiness digests: a channel subscribes to a post of readiness and what changed, daily,
on weekdays or weekly, at a time of day in the team's own time zone.

Digests go out in rounds: every channel due at one scheduler tick shares one run of the checks,
one readiness and one chart; each channel's post differs only in what changed since its own
last digest. Each digest is compared with a snapshot of the one before it, kept per channel in
the store. The snapshot is saved only after Slack accepted the post, so a failed post never
swallows the changes it would have reported: the next digest reports them instead. A scheduled
digest's slot is claimed in the store before it is posted, so it is posted at most once however
many processes run and however often they restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time as clock
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, DividerBlock

from bot import messages as m
from bot import views
from bot.chart import readiness_png
from bot.decisions import quorum_of
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
KINDS = ("daily", "weekdays", "weekly")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ZONE_LEN = 64
# Posting a round: this many posts in flight; a 429 waits Slack's Retry-After and tries again.
ROUND_WORKERS = 16
RATE_LIMIT_RETRIES = 30
CHART_HISTORY = 60  # digests shown on the chart
CHART_SHARE_CHUNK = 50  # channels one chart upload is shared to at once


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
    """Hour and minute of a stored schedule."""
    found = stored_schedule(schedule)
    return found.hour, found.minute


@dataclass(frozen=True)
class Schedule:
    """When a channel's digest goes out: daily, on weekdays or weekly on one day, at a time of
    day in an IANA time zone (so 09:00 stays 09:00 across daylight-saving changes)."""

    kind: str = "daily"  # one of KINDS
    hour: int = 9
    minute: int = 0
    zone: str = "UTC"
    day: int | None = None  # weekly: 0 = Monday

    @property
    def text(self) -> str:
        """The stored form: "daily 09:00 UTC", "weekly mon 09:00 Europe/Paris"."""
        day = f" {DAYS[self.day]}" if self.kind == "weekly" and self.day is not None else ""
        return f"{self.kind}{day} {self.hour:02d}:{self.minute:02d} {self.zone}"

    def describe(self) -> str:
        at = f"{self.hour:02d}:{self.minute:02d} {self.zone}"
        if self.kind == "weekdays":
            return f"every weekday (Monday to Friday) at {at}"
        if self.kind == "weekly" and self.day is not None:
            names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
            return f"every {names[self.day]} at {at}"
        return f"every day at {at}"

    def runs_on(self, day: date) -> bool:
        if self.kind == "weekdays":
            return day.weekday() < 5
        if self.kind == "weekly":
            return day.weekday() == self.day
        return True

    def fire_time(self, day: date) -> datetime:
        """The slot on a local calendar day, in UTC. A time skipped by a spring-forward change
        fires an hour later in wall-clock terms; a repeated one fires at its first occurrence."""
        local = datetime.combine(day, time(self.hour, self.minute), tzinfo=ZoneInfo(self.zone))
        return local.astimezone(UTC)

    def last_slot(self, now: datetime) -> datetime | None:
        """The latest slot at or before now (UTC), looking back a week."""
        today = now.astimezone(ZoneInfo(self.zone)).date()
        for back in range(0, 8):
            day = today - timedelta(days=back)
            if self.runs_on(day):
                slot = self.fire_time(day)
                if slot <= now:
                    return slot
        return None

    def next_slot(self, now: datetime) -> datetime:
        """The first slot after now (UTC)."""
        today = now.astimezone(ZoneInfo(self.zone)).date()
        for ahead in range(0, 9):
            day = today + timedelta(days=ahead)
            if self.runs_on(day):
                slot = self.fire_time(day)
                if slot > now:
                    return slot
        raise BadSchedule("This schedule never fires.")  # unreachable for valid schedules


def check_zone(text: str) -> str:
    """An IANA zone name as given, if zoneinfo knows it; BadSchedule otherwise."""
    name = text.strip()
    if name.upper() == "UTC":
        return "UTC"
    if not name or len(name) > MAX_ZONE_LEN or name.startswith(("/", ".")) or ".." in name:
        raise BadSchedule(m.digest_bad_zone(text))
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadSchedule(m.digest_bad_zone(text)) from None
    return name


def _day(text: str) -> int:
    key = text.strip().lower()[:3]
    if len(text.strip()) < 3 or key not in DAYS:
        raise BadSchedule(m.digest_bad_day(text))
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if text.strip().lower() not in (key, full[DAYS.index(key)]):
        raise BadSchedule(m.digest_bad_day(text))
    return DAYS.index(key)


def parse_schedule(words: Sequence[str], default_zone: str | None = None) -> Schedule:
    """`[daily|weekdays|weekly DAY] [HH:MM] [Area/City]`, as typed after `subscribe`; the zone
    defaults to default_zone (else UTC). Raises BadSchedule with one clear line."""
    rest = [w for w in words if w.strip()]
    kind = "daily"
    day: int | None = None
    if rest and rest[0].lower() in KINDS:
        kind = rest.pop(0).lower()
        if kind == "weekly":
            if not rest:
                raise BadSchedule(m.digest_bad_day(""))
            day = _day(rest.pop(0))
    hour, minute = 9, 0
    if rest and (":" in rest[0] or rest[0][:1].isdigit()):
        hour, minute = (int(p) for p in parse_time(rest.pop(0)).split(":"))
    zone: str | None = None
    if rest:
        zone = check_zone(rest.pop(0))
    if rest:
        raise BadSchedule(m.digest_usage())
    if zone is None:
        zone = check_zone(default_zone) if default_zone else "UTC"
    return Schedule(kind, hour, minute, zone, day)


def stored_schedule(text: str) -> Schedule:
    """A schedule as the store keeps it; also the older "HH:MM" and "daily HH:MM" (UTC)."""
    words = text.split()
    if len(words) == 1 or (len(words) == 2 and words[0].lower() == "daily"):
        words = [*words, "UTC"]
    return parse_schedule(words)


# Whoever caches subscriptions registers a reload here (bot/scheduler.py no longer needs to: it
# reads them at every tick), without bot/digests.py importing its listeners.
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
            # The change is stored; the next tick reads it anyway.
            log.warning("scheduler reload failed after a subscription change", exc_info=True)


def subscribe(
    services: Services,
    channel: str,
    user: str,
    at: str | Schedule = DEFAULT_TIME,
    *,
    source: str = "slack",
) -> Subscription:
    """Subscribe channel to digests on `at`'s schedule (a Schedule, or "HH:MM" UTC daily);
    subscribing again replaces the schedule."""
    found = at if isinstance(at, Schedule) else stored_schedule(at)  # raises before storing
    schedule = found.text
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


# ---- the message ------------------------------------------------------------------------


def compose(
    services: Services, previous: Mapping[str, Any] | None
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The digest from stored state: notification text, Block Kit blocks, and the snapshot to
    keep once it is posted."""
    shared = RoundContent.build(services)
    text, blocks = shared.message(previous)
    return text, blocks, shared.current


@dataclass
class RoundContent:
    """What every channel of a round shares: readiness, its snapshot and the rendered parts
    that do not depend on the channel's previous digest."""

    readiness: Readiness
    current: dict[str, Any]
    top: list[dict[str, Any]]  # headline, progress, blockers by cause, decisions, runs
    footer: list[dict[str, Any]]

    @classmethod
    def build(cls, services: Services, readiness: Readiness | None = None) -> RoundContent:
        found = readiness if readiness is not None else services.readiness()
        blocks: list[Block] = [
            views.header(m.digest_title()),
            views.section(m.digest_headline(found)),
        ]
        blocks += views.lines_to_sections(
            [
                f"`{m.bar(s.percent)}` {m.escape(s.title.title())} ({s.done}/{s.applicable})"
                for s in found.sections
            ],
            max_blocks=3,
        )
        groups = found.blocker_groups
        if groups:
            # The status message's own renderer of blockers grouped by cause.
            blocks += views.blocker_blocks(groups, len(found.blockers), TOP_BLOCKERS)
        blocks += _decision_blocks(services, found)
        blocks += _run_blocks(services)
        return cls(
            found,
            snapshot(found),
            views.to_dicts(blocks),
            views.to_dicts([views.context(m.digest_footer(found))]),
        )

    def message(self, previous: Mapping[str, Any] | None) -> tuple[str, list[dict[str, Any]]]:
        """(text, blocks) of one channel's digest, given its previous snapshot."""
        changed = changes(previous, self.current)
        text = m.digest_text(self.readiness, bool(changed) if previous is not None else None)
        middle: list[Block] = [DividerBlock()]
        if previous is None:
            middle.append(views.section(m.digest_first()))
        else:
            since = _previous_time(previous)
            if changed:
                middle += views.lines_to_sections(
                    [m.digest_changes_heading(since), *changed], max_blocks=3
                )
            else:
                middle.append(views.section(m.digest_no_changes(since)))
        blocks = [*self.top, *views.to_dicts(middle), *self.footer]
        return text, blocks[: views.MAX_MESSAGE_BLOCKS]

    def unchanged(self, previous: Mapping[str, Any] | None) -> bool:
        return previous is not None and not changes(previous, self.current)


def _decision_blocks(services: Services, readiness: Readiness) -> list[Block]:
    open_ids = set(readiness.decisions_open)
    lines = []
    for d in services.checklist.decisions:
        if d.id not in open_ids:
            continue
        votes = len(services.store.votes(d.id))
        quorum = quorum_of(d, services.settings.preflight_quorum)
        lines.append(m.digest_decision_line(d.topic, d.id, votes, quorum))
    if not lines:
        return []
    return list(views.lines_to_sections([m.digest_decisions_heading(len(lines)), *lines], 2))


def _run_blocks(services: Services) -> list[Block]:
    lines = []
    runbooks = {r.id: r for r in services.checklist.runbooks}
    runs = services.store.active_runs()
    for run in runs:
        runbook = runbooks.get(run.runbook_id)
        if runbook is not None:
            lines.append(
                m.digest_run_line(
                    runbook.title,
                    run.id,
                    len(run.step_states()),
                    len(runbook.steps),
                    f"<@{run.started_by}>"
                    if run.started_by.startswith(("U", "W"))
                    else m.escape(run.started_by),
                )
            )
    if not lines:
        return []
    return list(views.lines_to_sections([m.digest_runs_heading(len(lines)), *lines], 1))


def chart(services: Services, current: Mapping[str, Any]) -> tuple[bytes, str]:
    """The PNG of readiness over the stored digests and now, and its alt text."""
    history = services.store.digest_history(CHART_HISTORY - 1)
    percents = [100.0 * p.done / p.applicable for p in history if p.applicable]
    if current.get("applicable"):
        percents.append(100.0 * int(current["done"]) / int(current["applicable"]))
    first = round(percents[0]) if percents else 0
    last = round(percents[-1]) if percents else 0
    return readiness_png(percents), m.digest_chart_alt(first, last, len(percents))


def digest_checks(services: Services) -> list[Check]:
    """The checks a digest runs: those bound to the checklist's items, passive ones only.

    Unbound checks can't change readiness. Active checks send traffic, so a digest never runs
    them, and running them with allow_active off would store SKIPPED over their last real result.
    """
    bound = {check_id for item in services.checklist.items for check_id in item.checks}
    return [c for c in services.checks_for() if c.id in bound and not c.active]


# ---- rounds -------------------------------------------------------------------------------


@dataclass
class RoundReport:
    """What one round did, per channel."""

    posted: list[str] = field(default_factory=list)
    quiet: list[str] = field(default_factory=list)  # skipped: nothing changed (quiet mode)
    failed: dict[str, str] = field(default_factory=dict)  # channel -> Slack's error
    already_claimed: list[str] = field(default_factory=list)  # another process or an earlier run
    checks_run: int = 0
    readiness_computed: int = 0
    chart_uploads: int = 0
    seconds: float = 0.0


def post_round(
    client: WebClient,
    services: Services,
    due: Sequence[tuple[str, datetime | None]],
    *,
    run_checks: bool = True,
    quiet: bool = False,
    workers: int = ROUND_WORKERS,
) -> RoundReport:
    """Post the digests of one round: (channel, slot) pairs, slot None for an unscheduled
    digest (`digest now`). Scheduled slots are claimed first (one transaction); the checks run
    once and readiness is computed once for all of them; posts go out concurrently, waiting
    out Slack's rate limits; snapshots and outcomes are stored in one transaction each."""
    started = clock.monotonic()
    report = RoundReport()
    scheduled = [(c, s) for c, s in due if s is not None]
    won = set(services.store.claim_digest_slots(scheduled)) if scheduled else set()
    slots = {c: s for c, s in scheduled if c in won}
    report.already_claimed = [c for c, _ in scheduled if c not in won]
    channels = list(dict.fromkeys([c for c, s in due if s is None] + list(slots)))
    if not channels:
        report.seconds = clock.monotonic() - started
        return report
    if run_checks:
        services.run_checks(digest_checks(services))
        report.checks_run = 1
    content = RoundContent.build(services)
    report.readiness_computed = 1
    previous = services.store.last_digest_snapshots(channels)

    to_post: list[str] = []
    for channel in channels:
        if quiet and channel in slots and content.unchanged(previous.get(channel)):
            report.quiet.append(channel)
        else:
            to_post.append(channel)

    def one(channel: str) -> tuple[str, str | None]:
        text, blocks = content.message(previous.get(channel))
        return channel, _post_with_retries(client, channel, text, blocks)

    if to_post:
        with ThreadPoolExecutor(max(1, min(workers, len(to_post)))) as pool:
            for channel, error in pool.map(one, to_post):
                if error is None:
                    report.posted.append(channel)
                else:
                    report.failed[channel] = error
    if report.posted:
        png, alt = chart(services, content.current)  # the history before this round, and now
        services.store.save_digest_snapshots({c: content.current for c in report.posted})
        report.chart_uploads = _share_chart(client, png, alt, report.posted)
    outcomes = [
        (
            c,
            slot,
            "posted"
            if c in report.posted
            else "quiet"
            if c in report.quiet
            else report.failed.get(c, "unknown"),
        )
        for c, slot in slots.items()
    ]
    if outcomes:
        services.store.finish_digest_slots(outcomes)
    report.seconds = clock.monotonic() - started
    return report


def _post_with_retries(
    client: WebClient, channel: str, text: str, blocks: list[dict[str, Any]]
) -> str | None:
    """chat.postMessage, waiting out 429s (Slack's Retry-After); None or Slack's error."""
    for _ in range(RATE_LIMIT_RETRIES):
        try:
            client.chat_postMessage(channel=channel, text=text, blocks=blocks)
            return None
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown_error")
            if exc.response.status_code != 429:
                log.warning("digest for %s not posted: Slack said %s", channel, error)
                return error
            retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                "retry-after"
            )
            clock.sleep(_seconds(retry_after))
    log.warning("digest for %s not posted: still rate limited", channel)
    return "ratelimited"


def _seconds(value: Any) -> float:
    try:
        return max(0.0, min(60.0, float(value)))
    except (TypeError, ValueError):
        return 1.0


def _share_chart(client: WebClient, png: bytes, alt: str, channels: list[str]) -> int:
    """Upload the round's chart once per chunk of channels (files_upload_v2 shares one file to
    several channels); how many uploads were made. A failed upload leaves the digests posted."""
    uploads = 0
    for i in range(0, len(channels), CHART_SHARE_CHUNK):
        chunk = channels[i : i + CHART_SHARE_CHUNK]
        for _ in range(RATE_LIMIT_RETRIES):
            try:
                client.files_upload_v2(
                    content=png,
                    filename="readiness.png",
                    title="Readiness over time",
                    alt_txt=alt,
                    **({"channel": chunk[0]} if len(chunk) == 1 else {"channels": chunk}),
                )
                uploads += 1
                break
            except SlackApiError as exc:
                if exc.response.status_code != 429:
                    log.warning("digest chart not shared: Slack said %s", exc.response.get("error"))
                    break
                clock.sleep(_seconds(exc.response.headers.get("Retry-After")))
    return uploads


def post(client: WebClient, services: Services, channel: str, *, run_checks: bool = True) -> None:
    """Post channel's digest now (a round of one, no slot): run the passive checks (unless told
    not to), compare with the channel's last digest, post, and only then remember what was
    posted.

    Raises DigestNotPosted (with a message fit to show) when Slack refuses the post.
    """
    report = post_round(client, services, [(channel, None)], run_checks=run_checks)
    if channel in report.failed:
        error = report.failed[channel]
        raise DigestNotPosted(m.digest_not_posted(error), error)
