"""The digest scheduler: rounds on the team's clock, driven by an explicit clock (no sleeping),
against the fake Web API; slots posted once across restarts and several schedulers."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import digests
from bot.model import ItemKind
from bot.scheduler import ROUND_JOB, DigestScheduler
from bot.services import Services
from bot.settings import Settings
from checks import registry
from checks.base import Check, CheckContext, Result, Status
from store import Store, open_database
from tests.support.slack_fake import FakeSlack
from tests.support.slack_payloads import validate_outbound
from tests.support.store_helpers import checklist, item

PROBE = "scheduler_probe"
NY = "America/New_York"


class Clock:
    """The time every part of a test agrees on; moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Probe:
    def __init__(self) -> None:
        self.runs = 0

    def run(self, ctx: CheckContext) -> Result:
        self.runs += 1
        return Result(Status.FAIL, "probe says no", observations=1)


@pytest.fixture
def probe() -> Iterator[Probe]:
    found = Probe()
    registry.register(Check(id=PROBE, title="Scheduler probe", section="Security", run=found.run))
    try:
        yield found
    finally:
        registry.unregister(PROBE)


CHECKLIST = checklist(
    item("tls", "TLS installed", kind=ItemKind.AUTOMATED, checks=(PROBE,)),
    item("runbook", "On-call runbook reviewed", section="Team"),
    decisions=(),
)


def open_services(db: Path, clock: Clock, **settings: object) -> Services:
    store = Store(open_database(db), clock=clock)
    if store.current_version() is None:
        store.import_checklist(CHECKLIST)
    return Services(
        settings=Settings(preflight_db=str(db), **settings),  # type: ignore[arg-type]
        store=store,
        checklist=CHECKLIST,
        env={},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def services(tmp_path: Path, clock: Clock, probe: Probe) -> Iterator[Services]:
    found = open_services(tmp_path / "p.db", clock)
    yield found
    found.store.close()


def scheduler_for(services: Services, fake: FakeSlack, clock: Clock) -> DigestScheduler:
    return DigestScheduler(fake.client(), services, clock=clock)


def walk(sched: DigestScheduler, clock: Clock, start: datetime, end: datetime) -> None:
    """Tick every minute from start to end, as the running scheduler would."""
    clock.now = start
    while clock.now <= end:
        sched.tick()
        clock.now += timedelta(minutes=1)


def posts_to(fake: FakeSlack, channel: str) -> list[datetime]:
    return [c.at for c in fake.calls_to("chat.postMessage") if c.data["channel"] == channel]


def test_weekday_nine_in_new_york_fires_once_on_each_side_of_dst(
    services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    # US daylight saving starts on Sunday 8 March 2026: 09:00 EST is 14:00 UTC, 09:00 EDT 13:00.
    digests.subscribe(
        services, "CNY", "U1", digests.parse_schedule(["daily", "09:00", NY]), source="cli"
    )
    sched = scheduler_for(services, fake_slack, clock)
    fired: list[datetime] = []
    clock.now = datetime(2026, 3, 6, 0, 0, tzinfo=UTC)
    end = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    while clock.now < end:
        before = len(fake_slack.calls_to("chat.postMessage"))
        sched.tick()
        if len(fake_slack.calls_to("chat.postMessage")) > before:
            fired.append(clock.now)
        clock.now += timedelta(minutes=1)
    assert fired == [
        datetime(2026, 3, 6, 14, 0, tzinfo=UTC),  # Friday, EST
        datetime(2026, 3, 7, 14, 0, tzinfo=UTC),  # Saturday, EST
        datetime(2026, 3, 8, 13, 0, tzinfo=UTC),  # Sunday, the first day of EDT
        datetime(2026, 3, 9, 13, 0, tzinfo=UTC),  # Monday, EDT
    ]
    slots = [slot for slot, _ in services.store.digest_slots("CNY")]
    assert [s.astimezone(digests.ZoneInfo(NY)).strftime("%H:%M") for s in slots] == ["09:00"] * 4


def test_the_autumn_change_keeps_nine_oclock_too(fake_slack: FakeSlack, clock: Clock) -> None:
    schedule = digests.parse_schedule(["weekdays", "09:00", NY])
    # 30 October 2026 is a Friday in EDT; 2 November a Monday in EST (the change is on the 1st).
    assert schedule.next_slot(datetime(2026, 10, 30, 12, tzinfo=UTC)) == datetime(
        2026, 10, 30, 13, 0, tzinfo=UTC
    )
    assert schedule.next_slot(datetime(2026, 10, 30, 14, tzinfo=UTC)) == datetime(
        2026, 11, 2, 14, 0, tzinfo=UTC
    )
    weekly = digests.parse_schedule(["weekly", "tue", "17:30", "Europe/Paris"])
    assert weekly.text == "weekly tue 17:30 Europe/Paris"
    assert weekly.last_slot(datetime(2026, 3, 30, tzinfo=UTC)) == datetime(
        2026, 3, 24, 16, 30, tzinfo=UTC
    )  # Paris was on CET then; on CEST a week later:
    assert weekly.next_slot(datetime(2026, 3, 30, tzinfo=UTC)) == datetime(
        2026, 3, 31, 15, 30, tzinfo=UTC
    )


def test_a_slot_is_posted_once_across_a_restart(
    tmp_path: Path, services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    digests.subscribe(services, "C1", "U1", digests.parse_schedule(["09:00", "UTC"]))
    first = scheduler_for(services, fake_slack, clock)
    clock.now = datetime(2026, 3, 2, 9, 0, 20, tzinfo=UTC)
    first.tick()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    # The process restarts a minute later: a new scheduler over a new connection to the store.
    first.shutdown()
    services.store.close()
    again = open_services(tmp_path / "p.db", clock)
    try:
        restarted = scheduler_for(again, fake_slack, clock)
        walk(restarted, clock, clock.now, clock.now + timedelta(minutes=20))
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
        assert again.store.digest_slots("C1") == [
            (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "posted")
        ]
        # The next day's slot is its own.
        walk(restarted, clock, datetime(2026, 3, 3, 8, 58, tzinfo=UTC), clock.now.replace(day=3,
             hour=9, minute=2))  # fmt: skip
        assert len(fake_slack.calls_to("chat.postMessage")) == 2
    finally:
        again.store.close()


def test_two_schedulers_on_one_store_post_each_slot_once(
    tmp_path: Path, services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    for channel in ("C1", "C2", "C3"):
        digests.subscribe(services, channel, "U1", digests.parse_schedule(["09:00", "UTC"]))
    other = open_services(tmp_path / "p.db", clock)
    try:
        schedulers = [scheduler_for(services, fake_slack, clock),
                      scheduler_for(other, fake_slack, clock)]  # fmt: skip
        clock.now = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)
        start = threading.Barrier(2)

        def run(s: DigestScheduler) -> None:
            start.wait()
            s.tick()

        threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        channels = sorted(c.data["channel"] for c in fake_slack.calls_to("chat.postMessage"))
        assert channels == ["C1", "C2", "C3"]
        for s in schedulers:
            s.tick()  # and again, later: still nothing new
        assert len(fake_slack.calls_to("chat.postMessage")) == 3
    finally:
        other.store.close()


def test_one_check_run_and_one_readiness_per_round(
    services: Services, fake_slack: FakeSlack, clock: Clock, probe: Probe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for i in range(12):
        digests.subscribe(services, f"C{i:02d}", "U1", digests.parse_schedule(["09:00", "UTC"]))
    digests.subscribe(services, "CLATE", "U1", digests.parse_schedule(["10:00", "UTC"]))
    computed = []
    real = services.readiness

    def counted() -> object:
        computed.append(1)
        return real()

    monkeypatch.setattr(services, "readiness", counted)
    sched = scheduler_for(services, fake_slack, clock)
    clock.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    report = sched.tick()
    assert report is not None and len(report.posted) == 12
    assert (probe.runs, report.checks_run, report.readiness_computed) == (1, 1, 1)
    assert len(computed) == 1
    stored = services.store.result_history(PROBE)
    assert len(stored) == 1  # one result stored for the round, not one per channel
    assert report.chart_uploads == 1  # one chart, shared to the round's channels
    assert validate_outbound(fake_slack.calls, text_required_for=("chat.postMessage",)) == []


def test_the_chart_is_a_valid_png_shared_with_the_digest(
    services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    digests.subscribe(services, "C1", "U1", digests.parse_schedule(["09:00", "UTC"]))
    sched = scheduler_for(services, fake_slack, clock)
    for day in (2, 3, 4):
        if day == 3:
            services.signoff("runbook", "U1", note="reviewed")
        clock.now = datetime(2026, 3, day, 9, 0, tzinfo=UTC)
        sched.tick()
    files = fake_slack.uploaded_to("C1")
    assert len(files) == 3
    png = files[-1]["content"]
    width, height, pixels = decode_png(png)
    assert (width, height) == (600, 200) and len(pixels) == height * (1 + 3 * width)
    asked = fake_slack.calls_to("files.getUploadURLExternal")[-1]
    assert "0% to 50% done over 3 digests" in str(asked.data)  # the alt text names the trend
    assert [p.done for p in services.store.digest_history()] == [0, 1, 1]


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Check the signature and every chunk's CRC; (width, height, raw scanlines)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_quiet_mode_skips_a_day_without_changes(
    tmp_path: Path, fake_slack: FakeSlack, clock: Clock, probe: Probe
) -> None:
    services = open_services(tmp_path / "q.db", clock, preflight_digest_quiet=True)
    try:
        digests.subscribe(services, "C1", "U1", digests.parse_schedule(["09:00", "UTC"]))
        sched = DigestScheduler(fake_slack.client(), services, clock=clock)
        for day in (2, 3):
            clock.now = datetime(2026, 3, day, 9, 0, tzinfo=UTC)
            sched.tick()
        assert len(fake_slack.calls_to("chat.postMessage")) == 1  # day 3: nothing changed
        services.signoff("runbook", "U1")
        clock.now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
        sched.tick()
        assert len(fake_slack.calls_to("chat.postMessage")) == 2
        outcomes = [o for _, o in services.store.digest_slots("C1")]
        assert outcomes == ["posted", "quiet", "posted"]
    finally:
        services.store.close()


def test_a_subscription_made_after_todays_slot_waits_for_the_next(
    services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    clock.now = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    digests.subscribe(services, "C1", "U1", digests.parse_schedule(["09:00", "UTC"]))
    sched = scheduler_for(services, fake_slack, clock)
    sched.tick()
    assert fake_slack.calls_to("chat.postMessage") == []
    assert sched.next_runs()["C1"] == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_a_failed_post_is_logged_and_the_round_goes_on(
    services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    for channel in ("C1", "C2"):
        digests.subscribe(services, channel, "U1", digests.parse_schedule(["09:00", "UTC"]))
    fake_slack.error_next("chat.postMessage", "not_in_channel")
    clock.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    report = scheduler_for(services, fake_slack, clock).tick()
    assert report is not None
    assert len(report.posted) == 1 and list(report.failed.values()) == ["not_in_channel"]
    failed = next(iter(report.failed))
    assert services.store.last_digest_snapshot(failed) is None  # reported next time instead
    assert services.store.digest_slots(failed)[0][1] == "not_in_channel"


def test_an_unusable_stored_schedule_is_skipped_not_fatal(
    services: Services, fake_slack: FakeSlack, clock: Clock
) -> None:
    services.store.subscribe("C1", "U1", "at teatime")
    services.store.subscribe("C2", "U1", "09:00")  # the older format: daily, UTC
    clock.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    report = scheduler_for(services, fake_slack, clock).tick()
    assert report is not None and report.posted == ["C2"]


def test_start_ticks_every_minute(services: Services, fake_slack: FakeSlack, clock: Clock) -> None:
    sched = scheduler_for(services, fake_slack, clock)
    sched.start()
    try:
        job = sched.scheduler.get_job(ROUND_JOB)
        assert str(job.trigger) == "cron[second='0']"
        assert job.func == sched.tick
    finally:
        sched.shutdown()
