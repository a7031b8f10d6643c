"""Decisions in the open: the poll message in the channel, its live tally, quorum, and the
announcements, through the real Bolt app and the fake Web API."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.checklist import parse_checklist
from bot.decisions import rationale_text, record_markdown
from store import DecisionState
from tests.support.slack_app import DECIDER, SlackApp

TOPIC = "email-service"


def _poll(slack: SlackApp) -> tuple[str, str]:
    slack.reply("email", command="/decide")
    slack.settle()
    posted = slack.fake.calls_to("chat.postMessage")[-1]
    assert posted.data["channel"] == "C123"
    ts = [c for c in slack.fake.calls_to("chat.postMessage")][-1]
    message = next(
        (ch, t) for (ch, t), msg in slack.fake._messages.items() if msg.get("blocks") == ts.blocks
    )
    return message


def _blocks_text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_the_poll_is_updated_in_place_on_every_vote(slack: SlackApp) -> None:
    channel, ts = _poll(slack)
    blocks = slack.fake.message(channel, ts)["blocks"]  # type: ignore[index]
    text = _blocks_text(blocks)
    assert "Decision: Email Service" in text and "decide_vote" in text
    assert "0 of 1 votes" in text
    posts_before = len(slack.fake.calls_to("chat.postMessage"))

    # Three people: two buttons on the poll, one typed command; then one changes their mind.
    # Each vote settles before the next, so each has a refresh of its own (concurrent ones
    # coalesce: see the next test).
    slack.action(
        "decide_vote:1", f"{TOPIC}|aws-ses", user_id="UALICE", channel_id=channel, message_ts=ts,
        message_blocks=blocks,
    )  # fmt: skip
    slack.settle()
    slack.action(
        "decide_vote:0", f"{TOPIC}|sendgrid", user_id="UBOB", channel_id=channel, message_ts=ts,
        message_blocks=blocks,
    )  # fmt: skip
    slack.settle()
    slack.reply("email SES", command="/decide", user="UCAROL")
    slack.settle()
    shown = _blocks_text(slack.fake.message(channel, ts)["blocks"])  # type: ignore[index]
    assert "*AWS SES*: 2 — ualice, ucarol" in shown
    assert "*SendGrid*: 1 — ubob" in shown
    assert "3 of 1 votes · quorum reached" in shown

    slack.reply("email ses", command="/decide", user="UBOB")  # a change of mind
    slack.settle()
    shown = _blocks_text(slack.fake.message(channel, ts)["blocks"])  # type: ignore[index]
    assert "*AWS SES*: 3 — ualice, ubob, ucarol" in shown
    assert "*SendGrid*: 0" in shown
    # Every vote updated the one poll message: no new channel message.
    assert len(slack.fake.calls_to("chat.postMessage")) == posts_before
    updates = [c for c in slack.fake.calls_to("chat.update") if c.data.get("ts") == ts]
    assert len(updates) >= 4
    assert slack.store.votes(TOPIC) == {"UALICE": "aws-ses", "UBOB": "aws-ses", "UCAROL": "aws-ses"}


def test_a_burst_of_votes_coalesces_its_poll_refreshes_and_ends_on_the_last_tally(
    slack: SlackApp,
) -> None:
    channel, ts = _poll(slack)
    updates_before = len(slack.fake.calls_to("chat.update"))
    voters = [f"UV{n:03d}" for n in range(40)]

    def vote(user: str) -> None:
        slack.reply("email SES" if int(user[2:]) % 4 else "email sendgrid", command="/decide",
                    user=user)  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(vote, voters))
    slack.settle()
    shown = _blocks_text(slack.fake.message(channel, ts)["blocks"])  # type: ignore[index]
    assert "*AWS SES*: 30" in shown and "*SendGrid*: 10" in shown
    assert "40 of 1 votes · quorum reached" in shown
    updates = len(slack.fake.calls_to("chat.update")) - updates_before
    # Every vote is shown, by fewer renders than votes (one pass may carry many votes).
    assert 1 <= updates < len(voters)
    assert len(slack.store.votes(TOPIC)) == 40


def test_a_failed_refresh_does_not_stop_later_ones(slack: SlackApp, monkeypatch: Any) -> None:
    channel, ts = _poll(slack)
    from bot import decisions

    real = decisions.poll_message
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("store went away for a moment")
        return real(*args, **kwargs)

    monkeypatch.setattr(decisions, "poll_message", flaky)
    slack.reply("email SES", command="/decide", user="UONE")
    slack.settle()
    slack.reply("email SES", command="/decide", user="UTWO")
    slack.settle()
    shown = _blocks_text(slack.fake.message(channel, ts)["blocks"])  # type: ignore[index]
    assert "*AWS SES*: 2" in shown


def test_decide_topic_again_brings_back_the_same_poll(slack: SlackApp) -> None:
    channel, ts = _poll(slack)
    slack.reply("email", command="/decide")
    slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == 1
    assert slack.store.poll(TOPIC, channel).ts == ts
    # Deleted from the channel: a new poll replaces it.
    slack.fake._messages.pop((channel, ts))
    slack.reply("email", command="/decide")
    slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) == 2
    assert slack.store.poll(TOPIC, channel).ts != ts


def test_closing_below_quorum_is_refused_with_the_count(slack: SlackApp) -> None:
    slack.services.settings.preflight_quorum = 3
    slack.reply("email SES", command="/decide", user="UALICE")
    slack.reply("email SES", command="/decide", user="UBOB")
    refused = slack.reply("email close SES cheapest", command="/decide", user=DECIDER)
    assert refused["text"] == "2 of 3 votes: quorum not reached."
    assert slack.store.decision_state(TOPIC).is_open
    # A non-decider is refused as a non-decider first, whatever the count.
    assert "Only deciders" in slack.reply("email close SES", command="/decide")["text"]
    slack.reply("email SES", command="/decide", user="UCAROL")
    closed = slack.reply("email close SES cheapest", command="/decide", user=DECIDER)
    assert "decided: AWS SES" in closed["text"]


def test_quorum_annotation_in_the_checklist_wins_over_the_setting() -> None:
    checklist = parse_checklist(
        "# Launch\n\n## Email\n\n"
        "- [ ] **Decision needed**: Email provider (SendGrid / AWS SES) <!-- quorum: 3 -->\n"
        "- [ ] **Decision needed**: CI platform (GitHub Actions / GitLab CI)\n"
    )
    email, ci = checklist.decisions
    assert (email.quorum, ci.quorum) == (3, None)
    assert "quorum" not in email.question and "<!--" not in checklist.items[0].text
    assert [o.label for o in email.options] == ["SendGrid", "AWS SES"]


def test_tracked_decisions_take_a_quorum_too() -> None:
    checklist = parse_checklist(
        "# Launch\n\n## DECISION TRACKING\n\n"
        "1. **Hosting**: where it runs <!-- quorum: 2 -->\n"
        "   - [ ] EC2\n   - [ ] ECS\n"
    )
    assert checklist.decisions[0].quorum == 2


def test_close_announces_the_outcome_with_the_record_attached(slack: SlackApp) -> None:
    channel, ts = _poll(slack)
    slack.reply("email SES", command="/decide", user="UALICE")
    slack.reply("email sendgrid", command="/decide", user="UBOB")
    slack.reply("email close SES because cheapest at our volume", command="/decide", user=DECIDER)
    slack.settle()
    announced = slack.fake.calls_to("chat.postMessage")[-1]
    text = announced.text or ""
    assert "*Email Service* decided: *AWS SES*" in text
    assert "Because: cheapest at our volume" in text and "because because" not in text
    assert f"Deciders: {DECIDER.lower()}" in text  # a name from users.info
    assert "Votes: SendGrid 1, AWS SES 1" in text
    upload = slack.fake.calls_to("files.completeUploadExternal")[-1]
    assert upload.data.get("channel_id") == channel
    assert upload.data.get("thread_ts") == announced.data.get("ts") or upload.data.get("thread_ts")
    record = slack.fake.calls_to("file_upload")[-1].raw.decode()
    assert 'Chosen option: "AWS SES", because cheapest at our volume.' in record
    assert "because because" not in record
    assert "| AWS SES | 1 | ualice |" in record  # names from users.info
    # The poll shows the outcome and offers no buttons any more.
    poll = _blocks_text(slack.fake.message(channel, ts)["blocks"])  # type: ignore[index]
    assert "decided: *AWS SES*" in poll and "decide_vote" not in poll


def test_reopen_and_supersede_are_announced(slack: SlackApp) -> None:
    channel, ts = _poll(slack)
    slack.reply("email SES", command="/decide", user="UALICE")
    slack.reply("email close SES cheapest", command="/decide", user=DECIDER)
    slack.settle()  # the close is announced before anybody reopens it
    slack.reply("email reopen SES sandbox limits", command="/decide", user=DECIDER)
    slack.settle()
    reopened = slack.fake.calls_to("chat.postMessage")[-1].text or ""
    assert "*Email Service* is open again, reopened by" in reopened
    assert "SES sandbox limits" in reopened
    poll = _blocks_text(slack.fake.message(channel, ts)["blocks"])  # type: ignore[index]
    assert "decide_vote" in poll  # live again
    slack.reply("email sendgrid", command="/decide", user="UALICE")
    slack.reply("email close sendgrid deliverability", command="/decide", user=DECIDER)
    slack.settle()
    superseding = slack.fake.calls_to("chat.postMessage")[-1].text or ""
    assert "decided: *SendGrid*" in superseding
    assert "supersedes the earlier choice, AWS SES" in superseding


def test_not_in_channel_gives_the_invite_hint(slack: SlackApp) -> None:
    slack.fake.error_next("chat.postMessage", "not_in_channel")
    slack.reply("email", command="/decide")
    slack.settle()
    hints = [
        c for c in slack.fake.calls_to("response_url") if "/invite @Preflight" in json.dumps(c.data)
    ]
    assert hints, "the person was not told to invite the bot"
    assert slack.store.polls(TOPIC) == []


def test_names_render_voters_and_deciders() -> None:
    checklist = parse_checklist("# L\n\n## E\n\n- [ ] **Decision needed**: Email (SES / Mailgun)\n")
    decision = checklist.decisions[0]
    state = DecisionState(
        decision.id, "accepted", chosen=decision.options[0].id, rationale="Because it is cheap.",
        deciders=["U1"], voters=["U2"],
    )  # fmt: skip
    names = {"U1": "Dana Decider", "U2": "Val Voter"}.__getitem__
    text = record_markdown(decision, state, {"U2": decision.options[0].id}, names)
    assert "* Deciders: Dana Decider" in text and "| SES | 1 | Val Voter |" in text
    assert 'Chosen option: "SES", because it is cheap.' in text
    assert rationale_text("because because x") == "because x"
