"""Posts the subscribed readiness digests on time: one APScheduler cron job per channel.

The store is the source of truth for subscriptions; the jobs follow it. A subscription change
made through bot.digests reloads the jobs at once, a periodic sync catches changes made any
other way (the CLI, another process), and each job checks that its channel is still subscribed
before posting.

One scheduler per deployment: two processes with a scheduler each post every digest twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient

from bot import digests
from bot.services import Services

log = logging.getLogger("preflight.scheduler")

JOB_PREFIX = "digest:"
SYNC_JOB = "digest-sync"
SYNC_INTERVAL_S = 300
MISFIRE_GRACE_S = 300  # a digest up to 5 minutes late (restart, busy pool) is still posted
WORKERS = 2  # digests run checks; a couple at a time is plenty and spares the targets


def job_id(channel: str) -> str:
    return f"{JOB_PREFIX}{channel}"


def trigger_for(schedule: str) -> CronTrigger:
    """The daily UTC trigger of a stored schedule; raises digests.BadSchedule."""
    hour, minute = digests.schedule_time(schedule)
    return CronTrigger(hour=hour, minute=minute, timezone="UTC")


PRUNE_JOB = "prune-requests"
REQUEST_KEYS_KEPT = timedelta(days=7)


class DigestScheduler:
    """Runs digests.post for every subscribed channel at its time of day."""

    def __init__(self, client: WebClient, services: Services, *, run_checks: bool = True) -> None:
        self.client = client
        self.services = services
        self.run_checks = run_checks
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(WORKERS)},
            job_defaults={
                "coalesce": True,  # after downtime, one digest, not one per missed day
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_S,
            },
        )
        self._reload_lock = threading.Lock()

    def start(self) -> None:
        """Start the scheduler with a job for every current subscription."""
        self.scheduler.start()
        self.reload()
        self.scheduler.add_job(
            self._sync, "interval", seconds=SYNC_INTERVAL_S, id=SYNC_JOB, replace_existing=True
        )
        self.scheduler.add_job(
            self.prune, "interval", hours=24, id=PRUNE_JOB, replace_existing=True
        )
        digests.add_reload_hook(self.reload)

    def shutdown(self, wait: bool = True) -> None:
        """Stop; with wait, a digest being posted is finished first."""
        digests.remove_reload_hook(self.reload)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def prune(self) -> None:
        """Forget Slack request ids older than a week: retries come within minutes."""
        try:
            removed = self.services.store.prune_requests(REQUEST_KEYS_KEPT)
            log.info("pruned %d processed request ids", removed)
        except Exception:
            log.exception("pruning processed request ids failed")

    def jobs(self) -> list[Any]:
        """The digest jobs (apscheduler Job objects), one per subscribed channel."""
        return [j for j in self.scheduler.get_jobs() if j.id.startswith(JOB_PREFIX)]

    def reload(self) -> None:
        """Make the jobs match the stored subscriptions: add, retime, remove."""
        with self._reload_lock:
            existing = {j.id: j for j in self.jobs()}
            wanted: set[str] = set()
            for sub in self.services.store.subscriptions():
                try:
                    trigger = trigger_for(sub.schedule)
                except digests.BadSchedule:
                    log.warning(
                        "digest for %s has an unusable schedule; not scheduled", sub.channel
                    )
                    continue
                jid = job_id(sub.channel)
                wanted.add(jid)
                job = existing.get(jid)
                # Re-adding an unchanged job would only reset it; leave it be.
                if job is not None and str(job.trigger) == str(trigger):
                    continue
                self.scheduler.add_job(
                    self.run_digest,
                    trigger,
                    args=[sub.channel],
                    id=jid,
                    name=f"readiness digest for {sub.channel}",
                    replace_existing=True,
                )
                log.info("digest for %s scheduled daily at %s UTC", sub.channel, sub.schedule)
            for jid in existing.keys() - wanted:
                self._remove(jid)
                log.info("digest job %s removed", jid)

    def run_digest(self, channel: str) -> None:
        """The job: post channel's digest. Never raises, so one bad channel can't stop others."""
        try:
            if not any(s.channel == channel for s in self.services.store.subscriptions()):
                # Unsubscribed since the last reload (e.g. from the CLI).
                self._remove(job_id(channel))
                return
            digests.post(self.client, self.services, channel, run_checks=self.run_checks)
        except digests.DigestNotPosted as exc:
            log.warning("scheduled digest for %s not posted: Slack said %s", channel, exc.error)
        except Exception:
            log.exception("scheduled digest for %s failed", channel)

    def _sync(self) -> None:
        try:
            self.reload()
        except Exception:
            log.exception("digest schedule sync failed")

    def _remove(self, jid: str) -> None:
        # Already gone is fine: a concurrent reload or the job itself got there first.
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(jid)
