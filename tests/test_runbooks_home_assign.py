"""App Home's *Sign off* and *Start runbook* buttons, the assignee's direct message, the sign-off
modal keeping its channel, and `/preflight gate post`, through the real app."""

from __future__ import annotations

import json
from typing import Any

from bot import views
from tests.support.slack_app import ADMIN, SlackApp

ITEM = "phase-3-status/all-tests-passing"


def _home(slack: SlackApp, user: str = "U123") -> dict[str, Any]:
    slack.home(user)
    slack.settle()
    return slack.fake.calls_to("views.publish")[-1].data["view"]


def _buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for block in view["blocks"]:
        elements = block.get("elements") if block["type"] == "actions" else None
        for e in elements or ([block["accessory"]] if block.get("accessory") else []):
            if e.get("type") == "button":
                out.append((e["action_id"], e.get("value", "")))
    return out


def test_app_home_has_sign_off_and_start_runbook_buttons(slack: SlackApp) -> None:
    slack.reply(f"assign {ITEM} <@U123>", user=ADMIN)
    buttons = _buttons(_home(slack))
    assert (views.SIGNOFF_OPEN, "-") in buttons
    assert (views.RUNBOOK_START, "-") in buttons
    assert (views.SIGNOFF_ITEM, ITEM) in buttons  # the item waiting on this user


def test_sign_off_from_app_home_opens_the_modal_and_confirms_in_the_messages_tab(
    slack: SlackApp,
) -> None:
    slack.action(views.SIGNOFF_ITEM, ITEM, container="view", user_id="U123")
    opened = slack.fake.wait_for("views.open")[0].data["view"]
    assert opened["callback_id"] == views.SIGNOFF_MODAL
    assert opened["private_metadata"] == f"{ITEM}|"  # no channel: App Home
    slack.submit(views.SIGNOFF_MODAL, {"note": {"value": "green"}}, private_metadata=f"{ITEM}|")
    dm = slack.fake.wait_for("chat.postMessage")[0]
    assert dm.data["channel"] == "U123" and ITEM in dm.data["text"]
    assert ITEM in slack.store.signoffs()


def test_sign_off_from_a_channel_confirms_in_that_channel(slack: SlackApp) -> None:
    slack.action(views.SIGNOFF_OPEN, "-", channel_id="CLAUNCH")
    opened = slack.fake.wait_for("views.open")[0].data["view"]
    assert opened["private_metadata"] == "|CLAUNCH"
    slack.submit(
        views.SIGNOFF_MODAL,
        {"item": {"value": ITEM}, "note": {"value": "green"}},
        private_metadata=opened["private_metadata"],
    )
    (confirmation,) = slack.fake.wait_for("chat.postEphemeral")
    assert confirmation.data["channel"] == "CLAUNCH" and confirmation.data["user"] == "U123"
    assert not [c for c in slack.fake.calls_to("chat.postMessage") if c.data["channel"] == "U123"]


def test_start_runbook_from_app_home_runs_it_in_the_chosen_channel(slack: SlackApp) -> None:
    slack.action(views.RUNBOOK_START, "-", container="view", user_id="UONCALL")
    opened = slack.fake.wait_for("views.open")[0].data["view"]
    assert opened["callback_id"] == views.RUNBOOK_START_MODAL
    values = {
        "runbook": {
            "value": {
                "type": "static_select",
                "selected_option": {"value": "deployment-fails"},
            }
        },
        "channel": {
            "value": {"type": "conversations_select", "selected_conversation": "CINCIDENT"}
        },
    }
    assert slack.submit(views.RUNBOOK_START_MODAL, values, user_id="UONCALL").status == 200
    slack.settle()
    (run,) = slack.store.active_runs("CINCIDENT")
    assert run.runbook_id == "deployment-fails" and run.started_by == "UONCALL"
    posted = [
        c for c in slack.fake.calls_to("chat.postMessage") if c.data["channel"] == "CINCIDENT"
    ]
    assert len(posted) == 1 and run.thread_ts is not None
    dm = [c for c in slack.fake.calls_to("chat.postMessage") if c.data["channel"] == "UONCALL"]
    assert dm and "Started *If Deployment Fails*" in dm[0].data["text"]
    # a second start in the same channel is refused under the field; nothing new is stored
    again = slack.submit(views.RUNBOOK_START_MODAL, values, user_id="UONCALL")
    assert json.loads(again.body)["errors"]["channel"].startswith("A runbook run is already")
    assert len(slack.store.active_runs("CINCIDENT")) == 1


def test_the_assignee_gets_a_direct_message_with_how_to_verify(slack: SlackApp) -> None:
    item = "database-aws-rds/production-rds-instance-created"
    if slack.services.checklist.item(item) is None:  # pick any item with a verify block
        item = next(
            i.id
            for i in slack.services.checklist.items
            if any(
                v.section_path[-1:] == i.path[-1:] for v in slack.services.checklist.verify_blocks
            )
        )
    reply = slack.reply(f"assign {item} <@U777|bob>", user=ADMIN)
    assert "They get a message" in reply["text"]
    slack.settle()
    (dm,) = [c for c in slack.fake.calls_to("chat.postMessage") if c.data["channel"] == "U777"]
    assert f"<@{ADMIN}> asked you to sign off `{item}`" in dm.data["text"]
    shown = json.dumps(dm.data["blocks"])
    assert "How to verify" in shown and "```" in shown
    assert views.SIGNOFF_ITEM in shown


def test_a_refused_assignment_sends_no_message(slack: SlackApp) -> None:
    reply = slack.reply(f"assign {ITEM} <@U777>", user="UNOBODY")
    assert "Only Preflight admins" in reply["text"]
    slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []


def test_gate_post_posts_the_verdict_to_the_channel(slack: SlackApp) -> None:
    private = slack.reply("gate")
    assert "*BLOCKED*" in private["text"]
    slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []
    assert "Posting the verdict" in slack.reply("gate post", user="UALICE")["text"]
    slack.settle()
    (posted,) = slack.fake.calls_to("chat.postMessage")
    assert posted.data["channel"] == "C123"
    assert "*BLOCKED*" in posted.data["text"] and "<@UALICE>" in posted.data["text"]
    assert slack.reply("gate shout")["text"] == "Usage: `/preflight gate [post]`."


def test_gate_post_where_the_app_is_not_in_the_channel_says_so(slack: SlackApp) -> None:
    slack.fake.error_next("chat.postMessage", "not_in_channel")
    slack.reply("gate post")
    slack.settle()
    told = [c.payload.get("text", "") for c in slack.fake.calls_to("response_url")]
    assert any("not_in_channel" in t and "/invite @preflight" in t for t in told)
