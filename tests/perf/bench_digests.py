"""A digest round for 200 channels, against the fake Web API with Slack-like rate limits.

    .venv/bin/python -m tests.perf.bench_digests

The fake limits chat.postMessage to RATE calls a second (bursts of RATE), and the two file
upload methods to FILE_RATE: the least time 200 digests can take is then (200 - RATE) / RATE
seconds, whatever the client does. The round runs the bundled checklist's passive checks once
(their targets unset: they answer at once), computes readiness once, claims 200 slots, posts
through the app's own WebClient (retrying 429s after Retry-After) and shares one chart. Target
(issue 11): the round within 1.2x that minimum. The figure printed beside it is the minimum.

The per-channel figure is the old way (checks and readiness per channel), timed over a few
channels and scaled to 200, without rate limits: what the round no longer pays.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot import digests
from bot.app import web_client
from bot.scheduler import DigestScheduler
from bot.services import Services
from bot.settings import Settings
from tests.support.slack_fake import BOT_TOKEN, FakeSlack

CHANNELS = 200
RATE = 20.0  # chat.postMessage calls a second (Slack's workspace limit, scaled for a bench)
FILE_RATE = 5.0  # files.getUploadURLExternal / completeUploadExternal calls a second
PER_CHANNEL_SAMPLE = 5


def _services(folder: Path, fake: FakeSlack, name: str) -> Services:
    settings = Settings(
        preflight_db=str(folder / f"{name}.db"),
        slack_bot_token=BOT_TOKEN,
        preflight_slack_api_url=fake.api_url,
        preflight_check_timeout=3.0,
    )
    return Services.from_settings(settings, env={})


def run(folder: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    with FakeSlack(reject_invalid_blocks=False) as fake:
        services = _services(folder, fake, "round")
        channels = [f"C{n:04d}" for n in range(CHANNELS)]
        for channel in channels:
            services.store.subscribe(channel, "UADMIN", "daily 09:00 UTC")
        fake.rate_limit("chat.postMessage", RATE)
        fake.rate_limit("files.getUploadURLExternal", FILE_RATE)
        fake.rate_limit("files.completeUploadExternal", FILE_RATE)
        client = web_client(services)
        # The subscriptions were made now; the slot is tomorrow's 09:00.
        slot = digests.stored_schedule("daily 09:00 UTC").next_slot(datetime.now(UTC))
        scheduler = DigestScheduler(client, services, clock=lambda: slot)
        started = time.perf_counter()
        report = scheduler.tick()
        figures["round_s"] = time.perf_counter() - started
        assert report is not None, "nothing was due"
        figures["posted"] = len(report.posted)
        figures["failed"] = len(report.failed)
        figures["check_runs"] = report.checks_run
        figures["readiness_computed"] = report.readiness_computed
        figures["chart_uploads"] = report.chart_uploads
        figures["minimum_s"] = fake.minimum_seconds("chat.postMessage", CHANNELS)
        figures["ratio"] = figures["round_s"] / figures["minimum_s"]
        figures["posts_refused_429"] = sum(
            1 for c in fake.calls_to("chat.postMessage") if c.status == 429
        )
        figures["results_stored"] = sum(
            len(services.store.result_history(c.id, limit=1000))
            for c in digests.digest_checks(services)
        )
        # A restart at the same minute: every slot is claimed, nothing is posted again.
        again = DigestScheduler(client, services, clock=lambda: slot).tick()
        figures["reposted_after_restart"] = len(again.posted) if again else 0
        services.store.close()

    with FakeSlack(reject_invalid_blocks=False) as fake:
        services = _services(folder, fake, "per_channel")
        client = web_client(services)
        started = time.perf_counter()
        for n in range(PER_CHANNEL_SAMPLE):
            services.run_checks(digests.digest_checks(services))
            text, blocks, _ = digests.compose(services, None)
            client.chat_postMessage(channel=f"C{n:04d}", text=text, blocks=blocks)
        each = (time.perf_counter() - started) / PER_CHANNEL_SAMPLE
        figures["per_channel_way_200_s"] = each * CHANNELS
        services.store.close()
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        f = run(Path(tmp))
    print(
        f"digest round, {CHANNELS} channels, chat.postMessage limited to {RATE:.0f}/s "
        f"(files {FILE_RATE:.0f}/s):"
    )
    print(
        f"  round {f['round_s']:.2f} s   minimum the rate limits allow {f['minimum_s']:.2f} s   "
        f"ratio {f['ratio']:.2f}x (target <= 1.2x)"
    )
    print(
        f"  posted {f['posted']:.0f}, failed {f['failed']:.0f}; check runs {f['check_runs']:.0f}, "
        f"readiness computed {f['readiness_computed']:.0f}, chart uploads "
        f"{f['chart_uploads']:.0f}, results stored {f['results_stored']:.0f}; "
        f"429s answered {f['posts_refused_429']:.0f}"
    )
    print(f"  same slot after a restart: {f['reposted_after_restart']:.0f} posted again")
    print(
        f"  the old way (checks + readiness per channel, no rate limit), scaled to "
        f"{CHANNELS}: {f['per_channel_way_200_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
