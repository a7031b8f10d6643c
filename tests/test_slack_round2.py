"""Slack, round 2: a late click cannot corrupt a run's timeline (a button for a step that is no
longer current, or on an ended run, changes nothing and says why); commands that explain."""

from __future__ import annotations

import json

from tests.support.slack_app import SlackApp


def _start(slack: SlackApp) -> int:
    slack.reply("final-preparation", command="/runbook", user="UONCALL")
    slack.settle()
    return slack.store.active_runs("C123")[0].id


def _ephemerals(slack: SlackApp) -> list[str]:
    return [
        c.payload.get("text", "")
        for c in slack.fake.calls_to("response_url")
        if c.payload.get("response_type") == "ephemeral"
    ]


def test_a_second_click_on_a_done_step_is_refused_and_the_timeline_keeps_one_row(
    slack: SlackApp,
) -> None:
    run_id = _start(slack)
    slack.action("runbook_step:done", f"{run_id}:0:done", user_id="UALICE")
    slack.settle()
    slack.action("runbook_step:done", f"{run_id}:0:done", user_id="UBOB")
    slack.action("runbook_step:skip", f"{run_id}:0:skip", user_id="UBOB")
    slack.settle()
    run = slack.store.run(run_id)
    assert [(e.step, e.action, e.user) for e in run.events] == [(0, "done", "UALICE")]
    told = _ephemerals(slack)
    assert sum("Step 1 was already done by UALICE" in t for t in told) == 2
    assert all("nothing changed" in t for t in told if "Step 1" in t)
    assert "The current step is 2." in told[-1]


def test_a_button_for_a_later_step_is_refused(slack: SlackApp) -> None:
    run_id = _start(slack)
    slack.action("runbook_step:done", f"{run_id}:2:done", user_id="UBOB")
    slack.settle()
    assert slack.store.run(run_id).events == []
    assert any("Step 3 is not the current step" in t for t in _ephemerals(slack))


def test_buttons_on_an_ended_run_change_nothing_and_no_step_stays_current(
    slack: SlackApp,
) -> None:
    run_id = _start(slack)
    assert "ended" in slack.reply("end", command="/runbook", user="UONCALL")["text"]
    slack.settle()
    final = slack.fake.calls_to("chat.update")[-1]
    assert ":arrow_forward:" not in json.dumps(final.data["blocks"])
    assert "runbook_step" not in json.dumps(final.data["blocks"])
    slack.action("runbook_step:done", f"{run_id}:0:done", user_id="UBOB")
    slack.settle()
    assert slack.store.run(run_id).events == []
    assert any(f"Run {run_id} has ended" in t for t in _ephemerals(slack))


def test_runbook_alone_lists_the_runbooks(slack: SlackApp) -> None:
    reply = slack.reply("", command="/runbook")
    shown = reply["text"] + json.dumps(reply["blocks"])
    for runbook in slack.services.checklist.runbooks:
        assert f"`{runbook.id}`" in shown
    assert slack.store.active_runs("C123") == []


def test_a_misspelt_runbook_gets_a_suggestion_and_the_list(slack: SlackApp) -> None:
    reply = slack.reply("deploymnt-fails", command="/runbook")
    assert "No runbook called" in reply["text"]
    assert "Did you mean `deployment-fails` or" in reply["text"]  # closest first
    assert "`production-issues`" in reply["text"]
    assert slack.store.active_runs("C123") == []


def test_bare_digest_shows_usage_and_posts_nothing(slack: SlackApp) -> None:
    from tests.support.slack_app import ADMIN

    reply = slack.reply("digest", user=ADMIN)
    assert reply["text"].startswith("Usage: `/preflight digest")
    slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []


def test_the_signoff_modal_keeps_its_channel_for_the_confirmation(slack: SlackApp) -> None:
    from bot import views

    item = "phase-3-status/all-tests-passing"
    slack.action(views.SIGNOFF_ITEM, item, channel_id="CLAUNCH")
    opened = slack.fake.wait_for("views.open")[0].data["view"]
    assert opened["private_metadata"] == f"{item}|CLAUNCH"
    slack.submit(
        views.SIGNOFF_MODAL,
        {"note": {"value": "suite green on main, run 4812"}},
        private_metadata=opened["private_metadata"],
    )
    confirmation = slack.fake.wait_for("chat.postEphemeral")[0]
    assert confirmation.data["channel"] == "CLAUNCH"
    assert item in slack.store.signoffs()


def test_a_signoff_from_app_home_is_confirmed_in_the_apps_messages_tab(slack: SlackApp) -> None:
    from bot import views

    item = "phase-3-status/all-tests-passing"
    slack.submit(views.SIGNOFF_MODAL, {"note": {"value": "checked"}}, private_metadata=f"{item}|")
    dm = slack.fake.wait_for("chat.postMessage")[0]
    assert dm.data["channel"] == "U123"
    assert slack.fake.calls_to("chat.postEphemeral") == []


def test_a_section_status_counts_only_that_sections_checks(slack: SlackApp) -> None:
    from bot import views
    from checks import registry
    from checks.base import Result, Status, utcnow

    for check_id in registry.all_checks():
        slack.store.save_result(
            Result(
                Status.PASS, "fine: 1 seen", check_id=check_id, observed_at=utcnow(), observations=1
            )
        )
    section = "PHASE 3 COMPLETION VERIFICATION"
    bound = {c for i in slack.services.checklist.items if i.section == section for c in i.checks}
    assert 0 < len(bound) < len(registry.all_checks())
    slack.action(
        views.SHOW_SECTION,
        action={
            "type": "static_select",
            "action_id": views.SHOW_SECTION,
            "selected_option": {"text": {"type": "plain_text", "text": section}, "value": section},
        },
    )
    reply = slack.fake.wait_for("response_url")[0]
    shown = json.dumps(reply.payload["blocks"])
    assert f"Checks: {len(bound)} pass" in shown


def test_rerun_updates_its_own_message_and_posts_no_new_one(slack: SlackApp) -> None:
    from bot import views

    slack.reply("status")
    slack.settle()
    (posted,) = slack.fake.calls_to("chat.postMessage")
    ts = slack.fake.calls_to("chat.update")[-1].payload["ts"]
    slack.fake.clear()
    slack.action(views.RERUN, "all", message_ts=ts)
    slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []
    updates = slack.fake.calls_to("chat.update")
    assert updates and {u.payload["ts"] for u in updates} == {ts}
    assert "Top blockers" in json.dumps(updates[-1].payload["blocks"])
    assert posted.payload["channel"] == "C123"


def test_a_section_pick_replaces_its_own_message(slack: SlackApp) -> None:
    from bot import views

    slack.reply("status")
    slack.settle()
    ts = slack.fake.calls_to("chat.update")[-1].payload["ts"]
    slack.fake.clear()
    section = slack.services.checklist.sections[0]
    slack.action(
        views.SHOW_SECTION,
        message_ts=ts,
        action={
            "type": "static_select",
            "action_id": views.SHOW_SECTION,
            "selected_option": {"text": {"type": "plain_text", "text": "s"}, "value": section},
        },
    )
    slack.settle()
    (update,) = slack.fake.calls_to("chat.update")
    assert update.payload["ts"] == ts
    assert section.lower() in json.dumps(update.payload["blocks"]).lower()
    assert slack.fake.calls_to("chat.postMessage") == []
