"""The digest scheduler: a real APScheduler, jobs that follow the subscriptions, a real run."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import digests
from bot.scheduler import JOB_PREFIX, SYNC_JOB, DigestScheduler, job_id
from bot.services import Services
from bot.settings import Settings
from store import Store
from tests.support.slack_fake import BOT_TOKEN, FakeSlack
from tests.support.slack_payloads import validate_outbound
from tests.support.store_helpers import checklist, item


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    cl = checklist(item("runbook", "On-call runbook reviewed", section="Team"), decisions=())
    db = tmp_path / "p.db"
    store = Store.open(db)
    store.import_checklist(cl)
    yield Services(settings=Settings(preflight_db=str(db)), store=store, checklist=cl, env={})
    store.close()


@pytest.fixture
def scheduler(services: Services, fake_slack: FakeSlack) -> Iterator[DigestScheduler]:
    found = DigestScheduler(fake_slack.client(), services, run_checks=False)
    yield found
    found.shutdown()


def schedule_of(sched: DigestScheduler) -> dict[str, tuple[int, int]]:
    """job id -> (hour, minute) of its next run, which must be within the next day, in UTC."""
    now = datetime.now(UTC)
    found = {}
    for job in sched.jobs():
        nxt = job.next_run_time
        assert nxt.utcoffset() == timedelta(0)
        assert now < nxt <= now + timedelta(days=1)
        found[job.id] = (nxt.hour, nxt.minute)
    return found


def test_start_schedules_every_subscription(services: Services, scheduler: DigestScheduler) -> None:
    services.store.subscribe("C1", "U1", "09:00")
    services.store.subscribe("C2", "U1", "17:30")
    services.store.subscribe("C3", "U1", "daily 06:05")  # the store's own default format
    scheduler.start()
    assert schedule_of(scheduler) == {
        "digest:C1": (9, 0), "digest:C2": (17, 30), "digest:C3": (6, 5),
    }  # fmt: skip
    job = scheduler.scheduler.get_job("digest:C1")
    assert str(job.trigger) == "cron[hour='9', minute='0']"
    assert str(job.trigger.timezone) == "UTC"
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 300)
    assert job.args == ("C1",)
    assert scheduler.scheduler.get_job(SYNC_JOB) is not None


def test_subscription_changes_take_effect_at_once(
    services: Services, scheduler: DigestScheduler
) -> None:
    scheduler.start()
    assert scheduler.jobs() == []
    digests.subscribe(services, "C1", "U1", "6:15")
    assert schedule_of(scheduler) == {"digest:C1": (6, 15)}
    digests.subscribe(services, "C1", "U2", "18:00")  # a new time replaces the old one
    digests.subscribe(services, "C2", "U2", "07:00")
    assert schedule_of(scheduler) == {"digest:C1": (18, 0), "digest:C2": (7, 0)}
    digests.unsubscribe(services, "C1", "U1")
    assert schedule_of(scheduler) == {"digest:C2": (7, 0)}


def test_reload_follows_changes_made_directly_in_the_store(
    services: Services, scheduler: DigestScheduler
) -> None:
    services.store.subscribe("C1", "U1", "09:00")
    services.store.subscribe("C2", "U1", "10:00")
    scheduler.start()
    before = scheduler.scheduler.get_job("digest:C2").next_run_time
    services.store.unsubscribe("C1", "U1")  # e.g. from the CLI: no hook ran
    services.store.subscribe("C3", "U1", "11:45")
    scheduler.reload()
    assert schedule_of(scheduler) == {"digest:C2": (10, 0), "digest:C3": (11, 45)}
    assert scheduler.scheduler.get_job("digest:C2").next_run_time == before  # left alone


def test_an_unusable_stored_schedule_is_skipped_not_fatal(
    services: Services, scheduler: DigestScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    services.store.subscribe("C1", "U1", "whenever")
    services.store.subscribe("C2", "U1", "08:00")
    scheduler.start()
    assert schedule_of(scheduler) == {"digest:C2": (8, 0)}
    assert any("C1" in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records)


def test_shutdown_stops_listening_for_subscription_changes(
    services: Services, scheduler: DigestScheduler
) -> None:
    scheduler.start()
    scheduler.shutdown()
    assert not scheduler.scheduler.running
    digests.subscribe(services, "C1", "U1", "09:00")  # no scheduler to tell; must not fail
    assert scheduler.reload not in digests._reload_hooks
    scheduler.shutdown()  # twice is harmless


def test_the_job_posts_the_digest(
    services: Services, scheduler: DigestScheduler, fake_slack: FakeSlack
) -> None:
    services.store.subscribe("C1", "U1", "09:00")
    scheduler.run_digest("C1")
    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.data["channel"] == "C1"
    assert "First digest" in str(call.blocks)
    assert validate_outbound([call], text_required_for=("chat.postMessage",)) == []
    assert services.store.last_digest_snapshot("C1") is not None


@pytest.mark.parametrize("fault", ["channel_not_found", "http_500", "store_closed"])
def test_the_job_logs_failures_and_never_raises(
    services: Services,
    scheduler: DigestScheduler,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    services.store.subscribe("C1", "U1", "09:00")
    if fault == "channel_not_found":
        fake_slack.error_next("chat.postMessage", "channel_not_found")
    elif fault == "http_500":
        fake_slack.fail_next("chat.postMessage", status=500)
    with caplog.at_level(logging.WARNING, logger="preflight"):
        if fault == "store_closed":
            services.store.close()
        scheduler.run_digest("C1")  # does not raise
    messages = [r.getMessage() for r in caplog.records]
    assert any("digest for C1" in msg for msg in messages)
    assert all(BOT_TOKEN not in msg for msg in messages)
    if fault != "store_closed":
        assert services.store.last_digest_snapshot("C1") is None


def test_a_job_for_an_unsubscribed_channel_posts_nothing_and_removes_itself(
    services: Services, scheduler: DigestScheduler, fake_slack: FakeSlack
) -> None:
    services.store.subscribe("C1", "U1", "09:00")
    scheduler.start()
    services.store.unsubscribe("C1", "U1")  # behind the scheduler's back
    scheduler.run_digest("C1")
    assert fake_slack.calls_to("chat.postMessage") == []
    assert scheduler.scheduler.get_job(job_id("C1")) is None


def test_a_scheduled_digest_runs_for_real(
    services: Services, scheduler: DigestScheduler, fake_slack: FakeSlack
) -> None:
    digests.subscribe(services, "C1", "U1", "09:00")
    scheduler.start()
    # Due now instead of at 09:00: the scheduler's own thread runs it.
    scheduler.scheduler.modify_job(job_id("C1"), next_run_time=datetime.now(UTC))
    [call] = fake_slack.wait_for("chat.postMessage", timeout=10)
    assert call.data["channel"] == "C1"
    deadline = time.monotonic() + 5
    while services.store.last_digest_snapshot("C1") is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the snapshot is saved just after Slack answered
    assert services.store.last_digest_snapshot("C1") is not None
    # Afterwards the job is back on its daily schedule.
    deadline = time.monotonic() + 5
    while schedule_of_or_none(scheduler) != {"digest:C1": (9, 0)} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert schedule_of(scheduler) == {"digest:C1": (9, 0)}
    assert all(j.id.startswith(JOB_PREFIX) for j in scheduler.jobs())


def schedule_of_or_none(sched: DigestScheduler) -> dict[str, tuple[int, int]] | None:
    try:
        return schedule_of(sched)
    except AssertionError:
        return None
