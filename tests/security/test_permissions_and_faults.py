"""Who may do what from Slack, true answers when Slack is slow, and a damaged store that stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.app import build_app, shutdown
from bot.cli import app as cli
from bot.services import Services
from bot.settings import Settings
from store import Store
from tests.support.slack_app import ADMIN, CHECK_ENV, SlackApp, make_settings
from tests.support.slack_fake import FakeSlack

ITEM = "phase-3-status/all-tests-passing"
ROOT = Path(__file__).resolve().parents[2]


def _refusals(slack: SlackApp, action: str) -> list[Any]:
    return [e for e in slack.store.audit_log() if e.action == action and not e.allowed]


def test_assign_is_for_admins_and_the_sections_owners(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    settings = make_settings(tmp_path, fake_slack, preflight_owners="phase-3-status=UOWNER")
    services = Services.from_settings(settings, env=CHECK_ENV)
    harness = SlackApp(build_app(services), services, fake_slack)
    try:
        refused = harness.reply(f"assign {ITEM} <@U777>", user="UNOBODY")
        assert "Only Preflight admins and this section's owners" in refused["text"]
        assert services.store.assignments() == {}
        assert len(_refusals(harness, "assign")) == 1
        owner = harness.reply(f"assign {ITEM} <@U777>", user="UOWNER")
        assert "Assigned" in owner["text"]
        mine = services.find_item(ITEM)
        other_section = next(i for i in services.checklist.items if i.section != mine.section)
        again = harness.reply(f"assign {other_section.id} <@U777>", user="UOWNER")
        assert "Only Preflight admins" in again["text"]
        assert services.store.assignments() == {ITEM: "U777"}
    finally:
        shutdown(harness.app, timeout=20)
        services.store.close()


def test_owners_setting_is_parsed_and_a_malformed_one_refused(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    settings = make_settings(
        tmp_path, fake_slack, preflight_owners="security=U1,S2; phase-3-status = U3 ;"
    )
    assert settings.preflight_owners == {"security": ["U1", "S2"], "phase-3-status": ["U3"]}
    with pytest.raises(ValueError, match="section="):
        make_settings(tmp_path, fake_slack, preflight_owners="U1,U2")


def test_digest_now_is_for_admins(slack: SlackApp) -> None:
    refused = slack.reply("digest now", user="UNOBODY")
    assert "Only Preflight admins" in refused["text"]
    assert len(_refusals(slack, "digest_now")) == 1
    slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []
    assert "Posting" in slack.reply("digest now", user=ADMIN)["text"]
    slack.fake.wait_for("chat.postMessage")


def test_ending_a_run_is_for_its_starter_or_an_admin_and_stepping_stays_open(
    slack: SlackApp,
) -> None:
    slack.reply("deployment-fails", command="/runbook", user="UONCALL")
    slack.settle()
    # Anyone in the channel may step: incidents need every hand, and each step is recorded.
    assert "Step 1 done" in slack.reply("next", command="/runbook", user="UHELPER")["text"]
    refused = slack.reply("end", command="/runbook", user="UHELPER")
    assert "Only the person who started this run" in refused["text"]
    assert len(_refusals(slack, "runbook_end")) == 1
    assert slack.store.active_runs("C123")
    assert "ended" in slack.reply("end", command="/runbook", user="UONCALL")["text"]
    slack.reply("deployment-fails", command="/runbook", user="UONCALL")
    slack.settle()
    assert "ended" in slack.reply("end", command="/runbook", user=ADMIN)["text"]


def test_a_run_whose_post_is_slow_keeps_its_thread_and_a_retry_says_so(slack: SlackApp) -> None:
    slack.fake.hang("chat.postMessage", 2.0)
    slack.reply("deployment-fails", command="/runbook")
    slack.fake.wait_for("chat.postMessage")  # arrived, not yet answered
    retry = slack.reply("deployment-fails", command="/runbook")
    assert "already active" in retry["text"] and "still on its way" in retry["text"]
    slack.settle()
    run = slack.store.active_runs("C123")[0]
    assert run.thread_ts is not None
    again = slack.reply("deployment-fails", command="/runbook")
    assert "Its thread" in again["text"] and run.thread_ts.replace(".", "") in again["text"]
    assert len(slack.fake.calls_to("chat.postMessage")) == 1


def test_a_post_slack_never_confirms_is_reported_and_a_later_retry_posts_it_again(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    services = Services.from_settings(make_settings(tmp_path, fake_slack), env=CHECK_ENV)
    client = fake_slack.client(timeout=1, retry_handlers=[])
    harness = SlackApp(build_app(services, client=client), services, fake_slack)
    try:
        fake_slack.hang("chat.postMessage", 3.0)
        harness.reply("deployment-fails", command="/runbook")
        told = fake_slack.wait_for(
            "response_url", where=lambda c: "did not confirm" in json.dumps(c.payload), timeout=10
        )
        assert told
        run = services.store.active_runs("C123")[0]
        assert run.thread_ts is None
        harness.settle()
        import time

        time.sleep(max(0.0, 2.2 - (time.time() - run.started_at.timestamp())))
        retry = harness.reply("deployment-fails", command="/runbook")
        assert "never confirmed" in retry["text"] and "posted again" in retry["text"]
        harness.settle()
        assert services.store.active_runs("C123")[0].thread_ts is not None
    finally:
        shutdown(harness.app, timeout=20)
        services.store.close()


def test_one_hung_slack_call_does_not_hold_up_other_background_work(slack: SlackApp) -> None:
    slack.fake.hang("chat.postMessage", 8.0)
    slack.reply("deployment-fails", command="/runbook")
    slack.fake.wait_for("chat.postMessage")
    for i in range(6):  # more than the old pool of 4 workers
        slack.reply("check env_config", channel=f"C{i}")
    answered = slack.fake.wait_for("response_url", count=6, timeout=7.5)
    assert len(answered) == 6
    # Every answer arrived while the first post was still hanging.
    assert slack.store.active_runs("C123")[0].thread_ts is None


def _damage(path: Path) -> None:
    """Overwrite pages in the middle of the file, as a failing disk or a bad copy would."""
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page * 2, len(data) - page, page * 3):
        data[start : start + page] = os.urandom(page)
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged_store(tmp_path: Path) -> Path:
    db = tmp_path / "preflight.db"
    services = Services.from_settings(Settings(preflight_db=str(db)), env=CHECK_ENV)
    for item in services.checklist.items[:60]:
        services.signoff(item.id, "U1", note="x" * 200)
    services.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    services.store.close()
    _damage(db)
    return db


def test_a_damaged_store_stops_every_writing_command_and_serve(
    damaged_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFLIGHT_DB", str(damaged_store))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    before = damaged_store.read_bytes()
    runner = CliRunner()
    for args in (
        ["signoff", ITEM, "--as", "U9"],
        ["vote", "email", "SES", "--as", "U9"],
        ["status", "--cached"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "damaged" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    check = runner.invoke(cli, ["store", "check"])
    assert check.exit_code == 2 and "damaged" not in check.stdout
    assert damaged_store.read_bytes() == before
    env = {
        **os.environ,
        "PREFLIGHT_DB": str(damaged_store),
        "SLACK_BOT_TOKEN": "xoxb-fake-not-real",
        "SLACK_SIGNING_SECRET": "fake-secret-not-real",
        "SLACK_APP_TOKEN": "",
    }
    served = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.cli import main; main()",
            "serve",
            "--http",
            "--port",
            "0",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2, served.stderr
    assert "damaged" in served.stderr
    assert damaged_store.read_bytes() == before


def test_store_check_says_ok_on_a_sound_store(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    Store.open(db).close()
    result = CliRunner().invoke(cli, ["store", "check", "--db", str(db)])
    assert result.exit_code == 0 and result.stdout.strip().endswith(": ok")
