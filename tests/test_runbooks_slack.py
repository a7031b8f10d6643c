"""Runbook journeys through the real app (signed requests, fake Web API): the current step's
details and commands are shown, *Run checks* and *Notify* act for the current step only, and a
late or stale click changes nothing and says why, privately."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import build_app, shutdown
from bot.services import Services
from tests.support.dns_server import LocalDNS
from tests.support.slack_app import CHECK_ENV, SECRETS, SlackApp, make_settings
from tests.support.slack_fake import FakeSlack
from tests.support.slack_payloads import scan_for_secrets, validate_blocks, validate_outbound

FAILOVER = """# Database failover

1. Tell the channel <!-- notify: #incidents -->

   Post in [the status page](https://status.example.invalid) too.

2. Check the primary <!-- check: db_connect -->

   ```bash
   psql -h "$DB_HOST" -c 'SELECT 1'
   ```

3. Promote the replica
"""


@pytest.fixture
def slack_rb(tmp_path: Path, fake_slack: FakeSlack, dns_server: LocalDNS) -> Iterator[SlackApp]:
    """`slack` with a runbooks folder holding FAILOVER (same teardown checks)."""
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "db-failover.md").write_text(FAILOVER, "utf-8")
    env = {**CHECK_ENV, "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver}
    settings = make_settings(tmp_path, fake_slack, preflight_runbooks_dir=str(folder))
    services = Services.from_settings(settings, env=env)
    app = build_app(services)
    harness = SlackApp(app, services, fake_slack)
    try:
        yield harness
        harness.settle()
        assert validate_outbound(fake_slack.calls) == []
        for reply in harness.responses:
            if reply.get("blocks"):
                assert validate_blocks(reply["blocks"]) == []
        assert scan_for_secrets(fake_slack.calls, SECRETS) == []
    finally:
        shutdown(app, timeout=20)
        services.store.close()


def _start(slack: SlackApp, name: str) -> int:
    slack.reply(name, command="/runbook", user="UONCALL")
    slack.settle()
    return slack.store.active_runs("C123")[0].id


def _ephemerals(slack: SlackApp) -> list[str]:
    return [
        c.payload.get("text", "")
        for c in slack.fake.calls_to("response_url")
        if c.payload.get("response_type") == "ephemeral"
    ]


def _run_message(slack: SlackApp) -> str:
    run = slack.store.active_runs("C123")[0]
    message = slack.fake.message(run.channel, run.thread_ts)
    assert message is not None
    return json.dumps(message["blocks"])


def _timeline(slack: SlackApp, run_id: int) -> list[tuple[int, str, str]]:
    return [(e.step, e.action, e.user) for e in slack.store.run(run_id).events]


def test_the_current_steps_text_link_and_commands_are_in_the_run_message(
    slack_rb: SlackApp,
) -> None:
    run_id = _start(slack_rb, "db-failover")
    shown = _run_message(slack_rb)
    assert "<https://status.example.invalid|the status page>" in shown
    assert "Notify #incidents" in shown
    slack_rb.action("runbook_step:done", f"{run_id}:0:done", user_id="UALICE")
    slack_rb.settle()
    shown = _run_message(slack_rb)
    assert "```psql -h \\\"$DB_HOST\\\" -c 'SELECT 1'```" in shown
    assert '"runbook_checks"' in shown and "Notify #incidents" not in shown


def test_bundled_runbook_shows_the_checklists_command_for_its_step(slack: SlackApp) -> None:
    _start(slack, "final-preparation")
    slack.reply("next", command="/runbook", user="UONCALL")
    slack.settle()
    shown = _run_message(slack)
    assert "Manual Backup Command" in shown and "pg_dump" in shown
    assert "from the checklist: BACKUP" in shown


def test_run_checks_posts_results_in_the_thread_from_the_work_pool(slack_rb: SlackApp) -> None:
    run_id = _start(slack_rb, "db-failover")
    slack_rb.action("runbook_step:done", f"{run_id}:0:done", user_id="UALICE")
    slack_rb.settle()
    run = slack_rb.store.run(run_id)
    slack_rb.action("runbook_checks", f"{run_id}:1", user_id="UBOB")
    slack_rb.settle()
    in_thread = [
        c
        for c in slack_rb.fake.calls_to("chat.postMessage")
        if c.data.get("thread_ts") == run.thread_ts and "Checks for step 2" in c.data["text"]
    ]
    assert len(in_thread) == 1
    assert "db_connect" in json.dumps(in_thread[0].data["blocks"])
    # on the record as a note; the step itself is still open
    assert _timeline(slack_rb, run_id) == [(0, "done", "UALICE"), (1, "note", "UBOB")]
    assert "ran checks: db_connect" in slack_rb.store.run(run_id).events[-1].note


def test_notify_posts_the_runs_status_to_the_named_channel(slack_rb: SlackApp) -> None:
    run_id = _start(slack_rb, "db-failover")
    slack_rb.action("runbook_notify:0", f"{run_id}:0:0", user_id="UALICE")
    slack_rb.settle()
    (posted,) = [
        c for c in slack_rb.fake.calls_to("chat.postMessage") if c.data["channel"] == "#incidents"
    ]
    text = posted.data["text"]
    assert "Database failover" in text and "on step 1 of 3" in text and "<@UALICE>" in text
    assert "Its thread" in text
    assert any("Posted the run's status to #incidents" in t for t in _ephemerals(slack_rb))
    assert _timeline(slack_rb, run_id) == [(0, "note", "UALICE")]


def test_notify_to_a_channel_the_app_is_not_in_says_so(slack_rb: SlackApp) -> None:
    run_id = _start(slack_rb, "db-failover")
    slack_rb.fake.error_next("chat.postMessage", "not_in_channel")
    slack_rb.action("runbook_notify:0", f"{run_id}:0:0", user_id="UALICE")
    slack_rb.settle()
    told = _ephemerals(slack_rb)
    assert any("not_in_channel" in t and "/invite @preflight" in t for t in told)
    assert _timeline(slack_rb, run_id) == []


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("runbook_checks", "{run}:1"),  # step 2 is not current yet
        ("runbook_notify:0", "{run}:2:0"),
        ("runbook_notify:0", "{run}:0:5"),  # no such channel on the step
        ("runbook_step:done", "{run}:2:done"),
    ],
)
def test_buttons_for_a_step_that_is_not_current_change_nothing(
    slack_rb: SlackApp, action: str, value: str
) -> None:
    run_id = _start(slack_rb, "db-failover")
    posted = len(slack_rb.fake.calls_to("chat.postMessage"))
    slack_rb.action(action, value.format(run=run_id), user_id="UBOB")
    slack_rb.settle()
    assert _timeline(slack_rb, run_id) == []
    assert len(slack_rb.fake.calls_to("chat.postMessage")) == posted
    told = _ephemerals(slack_rb)
    assert told and ("nothing changed" in told[-1] or "out of date" in told[-1])


def test_a_second_click_on_a_done_step_keeps_one_timeline_row(slack: SlackApp) -> None:
    run_id = _start(slack, "final-preparation")
    slack.action("runbook_step:done", f"{run_id}:0:done", user_id="UALICE")
    slack.settle()
    slack.action("runbook_step:done", f"{run_id}:0:done", user_id="UBOB")
    slack.action("runbook_step:skip", f"{run_id}:0:skip", user_id="UBOB")
    slack.settle()
    assert _timeline(slack, run_id) == [(0, "done", "UALICE")]
    told = [t for t in _ephemerals(slack) if "Step 1" in t]
    assert len(told) == 2 and all("already done" in t and "nothing changed" in t for t in told)
    assert "The current step is 2." in told[-1]
    draft_rows = [r for r in _draft(slack, run_id).splitlines() if r.startswith("| ")]
    assert len(draft_rows) == 2 + 1  # header, rule, one event


def _draft(slack: SlackApp, run_id: int) -> str:
    from bot.runbooks import timeline_markdown

    run = slack.store.run(run_id)
    return timeline_markdown(slack.services.runbook(run.runbook_id), run)


def test_an_ended_run_shows_no_current_step_and_refuses_every_button(
    slack_rb: SlackApp,
) -> None:
    run_id = _start(slack_rb, "db-failover")
    assert "ended" in slack_rb.reply("end", command="/runbook", user="UONCALL")["text"]
    slack_rb.settle()
    assert slack_rb.fake.calls_to("chat.update")[-1].data["text"].endswith(": ended")
    final = json.dumps(slack_rb.fake.calls_to("chat.update")[-1].data["blocks"])
    assert ":arrow_forward:" not in final
    assert "runbook_step" not in final and "runbook_checks" not in final
    assert "Post in" not in final  # no step's details: none is current
    events = _timeline(slack_rb, run_id)
    for action, value in [
        ("runbook_step:done", f"{run_id}:0:done"),
        ("runbook_checks", f"{run_id}:0"),
        ("runbook_notify:0", f"{run_id}:0:0"),
    ]:
        slack_rb.action(action, value, user_id="UBOB")
    slack_rb.settle()
    assert _timeline(slack_rb, run_id) == events
    told = _ephemerals(slack_rb)
    assert sum(f"Run {run_id} has ended" in t for t in told) == 3
    assert not [
        c for c in slack_rb.fake.calls_to("chat.postMessage") if c.data["channel"] == "#incidents"
    ]


def test_runbook_alone_lists_the_runbooks(slack_rb: SlackApp) -> None:
    reply = slack_rb.reply("", command="/runbook")
    shown = reply["text"] + json.dumps(reply["blocks"])
    for runbook in slack_rb.services.checklist.runbooks:
        assert f"`{runbook.id}`" in shown
    assert "`db-failover`" in shown
    assert slack_rb.store.active_runs("C123") == []


def test_a_misspelt_runbook_gets_a_suggestion_and_the_list(slack: SlackApp) -> None:
    reply = slack.reply("deploymnt-fails", command="/runbook")
    assert "No runbook called" in reply["text"]
    assert "Did you mean `deployment-fails`" in reply["text"]
    assert "`production-issues`" in reply["text"]
    assert slack.store.active_runs("C123") == []
