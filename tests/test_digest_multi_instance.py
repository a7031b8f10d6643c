"""A scheduled digest slot is posted once when two `preflight serve --http` instances on one
PostgreSQL database both run their digest scheduler: real processes, one throwaway cluster, one
fake Slack Web API. The scheduler ticks every PREFLIGHT_DIGEST_TICK_SECONDS, aligned to the
clock, so both instances look for due slots at the same instants and race for each claim."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import digests
from bot.scheduler import ROUND_JOB, DigestScheduler
from bot.services import Services
from bot.settings import Settings
from store import Store, open_database
from store.postgres import PostgresStore
from tests.support.pg import PgCluster, fresh_store_url
from tests.support.slack_fake import BOT_TOKEN, FakeSlack
from tests.support.store_helpers import checklist, item
from tests.test_store_multi_instance import Instance

TICK_SECONDS = 2
# Zones without daylight saving: the current minute, written in each, is one UTC slot.
ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo", "America/Phoenix")
CHANNELS = [f"CDIGEST{n}" for n in range(len(ZONES))]
ROUND_LOG = "digest round:"


@pytest.fixture
def instances(
    pg_store_cluster: PgCluster,
    fake_slack: FakeSlack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, list[Instance], list[Path]]]:
    monkeypatch.setenv("PREFLIGHT_DIGEST_TICK_SECONDS", str(TICK_SECONDS))
    monkeypatch.delenv("PREFLIGHT_DIGEST_QUIET", raising=False)
    url = fresh_store_url(pg_store_cluster)
    logs = [tmp_path / f"instance-{n}.log" for n in (0, 1)]
    both = [Instance(url, fake_slack.api_url, log) for log in logs]
    try:
        for instance in both:
            instance.wait_ready()
        yield url, both, logs
    finally:
        for instance in both:
            instance.stop()


def _subscribe_due_now(url: str) -> datetime:
    """Subscribe every channel, as if ten minutes ago, to a daily digest at the current minute
    (in its own zone); the slot, already past and within the grace period, is due at the next
    tick. Written just after a tick instant, so both instances see all of them at the next one."""
    while time.time() % TICK_SECONDS > 0.3:
        time.sleep(0.05)
    now = datetime.now(UTC)
    slot = now.replace(second=0, microsecond=0)
    store = PostgresStore(url, clock=lambda: now - timedelta(minutes=10))
    try:
        for channel, zone in zip(CHANNELS, ZONES, strict=True):
            local = slot.astimezone(ZoneInfo(zone))
            schedule = digests.Schedule("daily", local.hour, local.minute, zone)
            store.subscribe(channel, "UADMIN", schedule=schedule.text)
    finally:
        store.close()
    return slot


def _round_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if ROUND_LOG in line]


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_two_instances_post_each_channels_slot_exactly_once(
    instances: tuple[str, list[Instance], list[Path]], fake_slack: FakeSlack
) -> None:
    url, both, logs = instances
    slot = _subscribe_due_now(url)

    def ours() -> list[str]:
        return [
            c.data["channel"]
            for c in fake_slack.calls_to("chat.postMessage")
            if c.data.get("channel") in CHANNELS
        ]

    fake_slack.wait_for(
        "chat.postMessage",
        count=len(CHANNELS),
        timeout=120,
        where=lambda c: c.data.get("channel") in CHANNELS,
    )
    # Both schedulers met the slot: one posted each channel, the other found it claimed
    # (a process logs a slot it settled once, then leaves it alone).
    _wait_until(
        lambda: all(bool(_round_lines(log)) for log in logs),
        60,
        f"an instance never ran a round for the slot: {[_round_lines(x) for x in logs]}",
    )
    for instance in both:
        assert instance.proc.poll() is None
    fake_slack.wait_quiet(quiet=3 * TICK_SECONDS, timeout=60)  # several more ticks each

    posted = ours()
    assert sorted(posted) == sorted(CHANNELS), posted  # each channel exactly once
    for call in fake_slack.calls_to("chat.postMessage"):
        assert call.token == BOT_TOKEN and call.text
    for channel in CHANNELS:
        assert len(fake_slack.uploaded_to(channel)) == 1, channel  # one chart each
    with Store.open(url) as store:
        for channel in CHANNELS:
            assert store.digest_slots(channel) == [(slot, "posted")], channel
        assert set(store.last_digest_snapshots(CHANNELS)) == set(CHANNELS)
    # Between them the two instances account for every channel once: posted or found claimed.
    text = "\n".join(line for log in logs for line in _round_lines(log))
    assert "posted" in text and "already claimed" in text, text


# ---- the scheduler's side of it, in one process -------------------------------------------


CHECKLIST = checklist(item("runbook", "On-call runbook reviewed", section="Team"), decisions=())


def _services(db: Path, now: datetime, **settings: object) -> Services:
    store = Store(open_database(db), clock=lambda: now)
    if store.current_version() is None:
        store.import_checklist(CHECKLIST)
    return Services(
        settings=Settings(preflight_db=str(db), **settings),  # type: ignore[arg-type]
        store=store,
        checklist=CHECKLIST,
        env={},
    )


def test_the_tick_setting_aligns_ticks_to_the_clock(tmp_path: Path, fake_slack: FakeSlack) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for setting, trigger in ((None, "cron[second='0']"), (5, "cron[second='*/5']")):
        extra = {} if setting is None else {"preflight_digest_tick_seconds": setting}
        services = _services(tmp_path / "t.db", now, **extra)
        sched = DigestScheduler(fake_slack.client(), services, clock=lambda: now)
        sched.start()
        try:
            assert str(sched.scheduler.get_job(ROUND_JOB).trigger) == trigger
        finally:
            sched.shutdown()
            services.store.close()
    with pytest.raises(ValueError, match="must divide 60"):
        Settings(preflight_digest_tick_seconds=7)


def test_a_slot_claimed_elsewhere_is_logged_once_and_not_asked_for_again(
    tmp_path: Path,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)
    slot = now.replace(second=0)
    winner = _services(tmp_path / "s.db", now)
    loser = _services(tmp_path / "s.db", now)
    # Subscribed an hour before the slot, so the slot is not older than the subscription.
    with Store(open_database(tmp_path / "s.db"), clock=lambda: now - timedelta(hours=1)) as early:
        early.subscribe("C1", "U1", schedule="daily 09:00 UTC")
        early.subscribe("C2", "U1", schedule="daily 09:00 UTC")
    try:
        first = DigestScheduler(fake_slack.client(), winner, run_checks=False, clock=lambda: now)
        report = first.tick()
        assert report is not None and sorted(report.posted) == ["C1", "C2"]
        second = DigestScheduler(fake_slack.client(), loser, run_checks=False, clock=lambda: now)
        claims = 0
        real = loser.store.claim_digest_slots

        def counted(pairs: list[tuple[str, datetime]]) -> list[str]:
            nonlocal claims
            claims += 1
            return real(pairs)

        monkeypatch.setattr(loser.store, "claim_digest_slots", counted)
        with caplog.at_level(logging.INFO, logger="preflight.scheduler"):
            lost = second.tick()
            for minutes in range(1, 20):  # the rest of the grace period and past it
                assert second.tick(slot + timedelta(minutes=minutes)) is None
        assert lost is not None and sorted(lost.already_claimed) == ["C1", "C2"]
        assert lost.posted == [] and claims == 1
        claimed = [r.getMessage() for r in caplog.records if "already claimed" in r.getMessage()]
        assert claimed == ["digest round: 2 slot(s) already claimed (another process or an "
                           "earlier run): C1, C2"]  # fmt: skip
        assert len(fake_slack.calls_to("chat.postMessage")) == 2
        assert winner.store.digest_slots("C1") == [(slot, "posted")]
    finally:
        winner.store.close()
        loser.store.close()
