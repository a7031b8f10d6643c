"""/preflight digest through the real Bolt app and the fake Web API: usage, schedules in the
subscriber's own time zone (users.info), and the /invite hint."""

from __future__ import annotations

from tests.support.slack_app import ADMIN, SlackApp


def test_bare_digest_shows_usage_and_posts_nothing(slack: SlackApp) -> None:
    for text in ("digest", "digest   ", "digest sometime"):
        reply = slack.reply(text, user=ADMIN)
        assert reply["text"].startswith("Usage: `/preflight digest subscribe")
    slack.settle()
    assert slack.fake.calls_to("chat.postMessage") == []
    assert slack.store.subscriptions() == []


def test_subscribe_defaults_to_the_subscribers_slack_time_zone(slack: SlackApp) -> None:
    slack.fake.set_user(ADMIN, "ada", tz="America/New_York")
    ack = slack.reply("digest subscribe weekdays 09:00", user=ADMIN)
    assert ack["text"] == "Subscribing this channel…"
    slack.settle()
    [sub] = slack.store.subscriptions()
    assert sub.schedule == "weekdays 09:00 America/New_York"
    said = slack.fake.calls_to("response_url")[-1].data["text"]
    assert "every weekday (Monday to Friday) at 09:00 America/New_York" in said
    assert "from your Slack profile" in said
    assert [c.data["user"] for c in slack.fake.calls_to("users.info")] == [ADMIN]


def test_a_typed_zone_wins_and_needs_no_lookup(slack: SlackApp) -> None:
    reply = slack.reply("digest subscribe weekly fri 16:00 Europe/Paris", user=ADMIN)
    assert "every Friday at 16:00 Europe/Paris" in reply["text"]
    assert slack.fake.calls_to("users.info") == []
    assert slack.store.subscriptions()[0].schedule == "weekly fri 16:00 Europe/Paris"


def test_bad_schedules_get_one_clear_line_and_change_nothing(slack: SlackApp) -> None:
    for typed, said in [
        ("digest subscribe daily 09:00 Mars/Olympus", "not a time zone I know"),
        ("digest subscribe weekly someday 09:00 UTC", "not a day of the week"),
        ("digest subscribe daily 9am UTC", "not a time of day"),
        ("digest subscribe daily 09:00 ../../etc/passwd", "not a time zone I know"),
    ]:
        assert said in slack.reply(typed, user=ADMIN)["text"]
    assert slack.store.subscriptions() == []


def test_digest_now_in_a_channel_without_the_bot_says_invite(slack: SlackApp) -> None:
    slack.fake.error_next("chat.postMessage", "not_in_channel")
    slack.reply("digest now", user=ADMIN)
    slack.settle()
    said = slack.fake.calls_to("response_url")[-1].data["text"]
    assert "/invite @Preflight" in said
