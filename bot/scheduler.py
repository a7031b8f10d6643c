"""Posts the subscribed readiness digests on time, in rounds.

One APScheduler job ticks at the top of every minute. A tick reads the subscriptions from the
store (the source of truth, whoever changed them: Slack, the CLI, another process), finds every
channel whose latest slot (its schedule's last fire time, computed in its own time zone) has
come within the grace period and not been posted, and posts them all as one round: one run of
the checks and one readiness for every channel due (bot.digests.post_round).

Each slot is claimed in the store (a unique row per channel and slot) before it is posted, so
restarts and several processes on one store post it once. A process remembers the slots it has
settled (won or found claimed) until they leave the grace period, so it neither asks the store
again at every tick nor logs a lost claim more than once. `tick(now)` takes an explicit clock,
which is how the tests walk across daylight-saving changes without sleeping.

PREFLIGHT_DIGEST_TICK_SECONDS (default 60: at the top of every minute) sets how often it ticks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient

from bot import digests
from bot.services import Services

log = logging.getLogger("preflight.scheduler")

ROUND_JOB = "digest-round"
PRUNE_JOB = "prune-requests"
# A slot up to 15 minutes old (a restart, a busy machine) is still posted; older, it is skipped
# rather than arriving at an hour nobody expects.
GRACE = timedelta(minutes=15)
REQUEST_KEYS_KEPT = timedelta(days=7)


class DigestScheduler:
    """Runs a digest round every minute for the channels whose slot has come."""

    def __init__(
        self,
        client: WebClient,
        services: Services,
        *,
        run_checks: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.services = services
        self.run_checks = run_checks
        self.clock = clock or (lambda: datetime.now(UTC))
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._round_lock = threading.Lock()
        # (channel, slot) pairs claimed in the store by this process or another: never due again.
        self._settled: set[tuple[str, datetime]] = set()

    def start(self) -> None:
        """Start ticking (and pruning old request ids daily)."""
        self.scheduler.start()
        every = self.services.settings.preflight_digest_tick_seconds
        # Wall-clock aligned, so every process on one store ticks at the same instants.
        seconds: int | str = 0 if every >= 60 else f"*/{every}"
        self.scheduler.add_job(
            self.tick,
            CronTrigger(second=seconds, timezone="UTC"),
            id=ROUND_JOB,
            replace_existing=True,
        )
        self.scheduler.add_job(
            self.prune, "interval", hours=24, id=PRUNE_JOB, replace_existing=True
        )

    def shutdown(self, wait: bool = True) -> None:
        """Stop; with wait, a round being posted is finished first."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def prune(self) -> None:
        """Forget Slack request ids older than a week: retries come within minutes."""
        try:
            removed = self.services.store.prune_requests(REQUEST_KEYS_KEPT)
            log.info("pruned %d processed request ids", removed)
        except Exception:
            log.exception("pruning processed request ids failed")

    def due(self, now: datetime) -> list[tuple[str, datetime]]:
        """(channel, slot) for every subscription whose latest slot is within the grace
        period and not older than the subscription itself. Claimed slots are filtered by the
        round, in the store."""
        found = []
        for sub in self.services.store.subscriptions():
            try:
                schedule = digests.stored_schedule(sub.schedule)
            except digests.BadSchedule:
                log.warning("digest for %s has an unusable schedule; not posted", sub.channel)
                continue
            slot = schedule.last_slot(now)
            if slot is not None and now - slot <= GRACE and slot >= sub.since:
                found.append((sub.channel, slot))
        return found

    def next_runs(self, now: datetime | None = None) -> dict[str, datetime]:
        """channel -> its next slot (UTC)."""
        at = now or self.clock()
        runs = {}
        for sub in self.services.store.subscriptions():
            try:
                runs[sub.channel] = digests.stored_schedule(sub.schedule).next_slot(at)
            except digests.BadSchedule:
                continue
        return runs

    def tick(self, now: datetime | None = None) -> digests.RoundReport | None:
        """One round at `now` (default: the clock). Never raises, so one bad round can't stop
        the next."""
        at = now or self.clock()
        try:
            with self._round_lock:
                self._settled = {(c, s) for c, s in self._settled if at - s <= GRACE}
                due = [d for d in self.due(at) if d not in self._settled]
                if not due:
                    return None
                report = digests.post_round(
                    self.client,
                    self.services,
                    due,
                    run_checks=self.run_checks,
                    quiet=self.services.settings.preflight_digest_quiet,
                )
                # Claimed in the store now, whoever won: no later tick can win them.
                self._settled.update(due)
            if report.already_claimed:
                log.info(
                    "digest round: %d slot(s) already claimed "
                    "(another process or an earlier run): %s",
                    len(report.already_claimed),
                    ", ".join(report.already_claimed),
                )
            for channel, error in report.failed.items():
                log.warning("scheduled digest for %s not posted: Slack said %s", channel, error)
            if report.posted or report.quiet:
                log.info(
                    "digest round: %d posted, %d quiet, %d failed in %.1f s",
                    len(report.posted),
                    len(report.quiet),
                    len(report.failed),
                    report.seconds,
                )
            return report
        except Exception:
            log.exception("digest round failed")
            return None
