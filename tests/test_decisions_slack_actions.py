"""Buttons that update their own message, section status, App Home votes and the /invite hint,
through the real Bolt app and the fake Web API."""

from __future__ import annotations

import json
import re
from typing import Any

from bot import live_status
from tests.support.slack_app import SlackApp


def _text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def _status_message(slack: SlackApp, text: str = "status") -> tuple[str, str, list[Any]]:
    slack.reply(text)
    slack.settle()
    # The newest status message (posted with the verdict, or posted and then updated).
    channel, ts = max(
        (key for key, msg in slack.fake._messages.items() if "Preflight readiness" in _text(msg)),
        key=lambda key: float(key[1]),
    )
    return channel, ts, slack.fake.message(channel, ts)["blocks"]  # type: ignore[index]


def _checks_line(blocks: Any) -> str:
    found = re.search(r"Checks: ([^\"\\]*)", _text(blocks))
    assert found is not None
    return found.group(1)


def _checks_counted(blocks: Any) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) [a-z]+", _checks_line(blocks)))


def test_rerun_updates_the_message_the_button_is_on(slack: SlackApp) -> None:
    channel, ts, blocks = _status_message(slack)
    posts = len(slack.fake.calls_to("chat.postMessage"))
    slack.action("preflight_rerun", "all", channel_id=channel, message_ts=ts, message_blocks=blocks)
    slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == posts  # no new channel message
    updates = [c for c in slack.fake.calls_to("chat.update") if c.data["ts"] == ts]
    last = updates[-1]
    assert last.data["text"].startswith("NOT READY")
    assert "preflight_rerun" in _text(last.data["blocks"])


def test_a_section_pick_updates_its_own_message(slack: SlackApp) -> None:
    channel, ts, blocks = _status_message(slack)
    posts = len(slack.fake.calls_to("chat.postMessage"))
    section = slack.services.checklist.sections[0]
    slack.action(
        "preflight_show_section", None, action_type="static_select",
        action={"selected_option": {"text": {"type": "plain_text", "text": section},
                                    "value": section}},
        channel_id=channel, message_ts=ts, message_blocks=blocks,
    )  # fmt: skip
    slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == posts
    shown = slack.fake.message(channel, ts)["blocks"]  # type: ignore[index]
    assert f"Preflight readiness — {section}" in _text(shown)


def test_section_status_counts_and_lists_only_that_sections_checks(slack: SlackApp) -> None:
    _, _, everything = _status_message(slack)  # a full run first: the section joins its results
    total = _checks_counted(everything)
    own = live_status.checks_for_section(slack.services, "security")
    assert 0 < len(own) < total
    _, _, section = _status_message(slack, "status security")
    assert _checks_counted(section) == len(own)
    own_ids = {c.id for c in own}
    listed = set(re.findall(r"\*([a-z0-9_]+)\* ", _text(section)))
    assert listed <= own_ids | {"Top"}, listed - own_ids


def test_section_pick_rerun_keeps_its_section(slack: SlackApp) -> None:
    channel, ts, _ = _status_message(slack, "status security")
    blocks = slack.fake.message(channel, ts)["blocks"]  # type: ignore[index]
    slack.action("preflight_rerun", "all", channel_id=channel, message_ts=ts, message_blocks=blocks)
    slack.settle()
    shown = slack.fake.message(channel, ts)["blocks"]  # type: ignore[index]
    assert "Preflight readiness — " in _text(shown)
    assert _checks_counted(shown) == len(live_status.checks_for_section(slack.services, "security"))


def test_app_home_offers_vote_buttons_that_vote(slack: SlackApp) -> None:
    slack.home("UHOME")
    slack.settle()
    view = slack.fake.home_view("UHOME")
    assert view is not None
    home = _text(view["blocks"])
    assert "decide_vote" in home and "/decide email-service OPTION" not in home
    slack.action("decide_vote:1", "email-service|aws-ses", user_id="UHOME", container="view")
    slack.settle()
    assert slack.store.votes("email-service") == {"UHOME": "aws-ses"}
    again = _text(slack.fake.home_view("UHOME")["blocks"])  # type: ignore[index]
    assert "your vote: AWS SES" in again


def test_not_in_channel_status_says_invite(slack: SlackApp) -> None:
    slack.fake.error_next("chat.postMessage", "not_in_channel")
    slack.reply("status")
    slack.settle()
    answers = [_text(c.data) for c in slack.fake.calls_to("response_url")]
    assert any("/invite @Preflight" in a for a in answers)


def test_not_in_channel_runbook_start_says_invite(slack: SlackApp) -> None:
    slack.fake.error_next("chat.postMessage", "not_in_channel")
    slack.reply("deployment-fails", command="/runbook")
    slack.settle()
    answers = [_text(c.data) for c in slack.fake.calls_to("response_url")]
    assert any("/invite @Preflight" in a for a in answers)
