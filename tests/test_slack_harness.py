"""Self-tests of the Slack test harness: the fake Web API, signed requests, payload checks."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.support.slack_fake import (
    BOT_TOKEN,
    BOT_USER_ID,
    FILE_UPLOAD,
    RESPONSE_URL,
    Call,
    FakeSlack,
    SlackCallTimeout,
)
from tests.support.slack_payloads import scan_for_secrets, validate_outbound
from tests.support.slack_requests import (
    app_home_opened,
    block_actions,
    bolt_request,
    post,
    sign,
    slash_command,
    view_submission,
    wsgi_server,
)

WRONG_SECRET = "wrong-secret-not-real"  # pragma: allowlist secret


def section(text: str = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str = "Sign off", action_id: str = "signoff", **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": "item-1",
        **extra,
    }


GOOD_BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Readiness", "emoji": True}},
    section("*3 blockers*", block_id="summary", accessory=button("Re-run", "rerun")),
    {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": "*DB*"}, {"type": "mrkdwn", "text": "PASS"}],
    },
    {"type": "divider"},
    {
        "type": "actions",
        "block_id": "item-actions",
        "elements": [
            button(style="primary"),
            {
                "type": "static_select",
                "action_id": "vote",
                "placeholder": {"type": "plain_text", "text": "Vote"},
                "options": [
                    {"text": {"type": "plain_text", "text": "SES"}, "value": "ses"},
                    {"text": {"type": "plain_text", "text": "SendGrid"}, "value": "sendgrid"},
                ],
            },
        ],
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "checked 2 min ago"}]},
]

GOOD_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "signoff_modal",
    "title": {"type": "plain_text", "text": "Sign off"},
    "submit": {"type": "plain_text", "text": "Sign off"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "private_metadata": "item-1",
    "blocks": [
        section("Sign off *Backups tested*?"),
        {
            "type": "input",
            "block_id": "evidence",
            "label": {"type": "plain_text", "text": "Evidence"},
            "element": {"type": "plain_text_input", "action_id": "note", "multiline": True},
            "optional": True,
        },
    ],
}


# -- signatures ------------------------------------------------------------------------------


def test_signature_is_accepted_by_slack_sdk(signing_secret: str) -> None:
    body, _ = slash_command(text="status")
    headers = sign(signing_secret, body)
    assert SignatureVerifier(signing_secret).is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("tamper", "age"),
    [
        pytest.param("body", 0, id="tampered-body"),
        pytest.param("secret", 0, id="other-secret"),
        pytest.param(None, 6 * 60, id="stale-timestamp"),
        pytest.param(None, -6 * 60, id="future-timestamp"),
    ],
)
def test_signature_is_rejected_by_slack_sdk(
    signing_secret: str, tamper: str | None, age: int
) -> None:
    body, _ = slash_command(text="status")
    secret = WRONG_SECRET if tamper == "secret" else signing_secret
    headers = sign(secret, body, ts=int(time.time()) - age)
    sent = body.replace("status", "gate") if tamper == "body" else body
    assert not SignatureVerifier(signing_secret).is_valid_request(sent, headers)


def test_signature_matches_the_documented_basestring(signing_secret: str) -> None:
    # The v0 scheme is the contract; slack_sdk's own generator must agree byte for byte.
    verifier = SignatureVerifier(signing_secret)
    headers = sign(signing_secret, "a=1&b=2", ts=1_700_000_000)
    expected = verifier.generate_signature(timestamp="1700000000", body="a=1&b=2")
    assert headers["X-Slack-Signature"] == expected


# -- fake Web API ------------------------------------------------------------------------------


def test_post_message_and_update_are_recorded(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    posted = client.chat_postMessage(channel="C123", text="Checking…", blocks=GOOD_BLOCKS)
    assert posted["ok"] and posted["channel"] == "C123"
    updated = client.chat_update(
        channel="C123", ts=posted["ts"], text="Ready", blocks=[section("Ready")]
    )
    assert updated["ts"] == posted["ts"]

    first, second = (
        fake_slack.calls_to("chat.postMessage")[0],
        fake_slack.calls_to("chat.update")[0],
    )
    assert first.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert first.headers["content-type"].startswith("application/json")
    assert first.payload["channel"] == "C123" and first.blocks == GOOD_BLOCKS
    assert second.text == "Ready" and second.data["ts"] == posted["ts"]
    current = fake_slack.message("C123", posted["ts"])
    assert current is not None and current["text"] == "Ready" and "edited" in current


def test_ts_are_unique_and_increasing(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    stamps = [client.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(5)]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 5


def test_post_to_a_user_answers_with_the_dm_channel(fake_slack: FakeSlack) -> None:
    posted = fake_slack.client().chat_postMessage(channel="U999", text="hi")
    assert posted["channel"] == "D999"


@pytest.mark.parametrize(
    ("method", "kwargs", "error"),
    [
        ("chat_update", {"channel": "C123", "ts": "1.2", "text": "x"}, "message_not_found"),
        pytest.param(
            "chat_postMessage",
            {"channel": "C123"},
            "no_text",
            marks=pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing"),
        ),
        ("usergroups_users_list", {"usergroup": "S404"}, "no_such_subteam"),
        ("views_open", {"trigger_id": "", "view": {"type": "modal"}}, "invalid_arguments"),
        ("api_call", {"api_method": "chat.meMessage"}, "unknown_method"),
    ],
)
def test_slack_errors_for_what_slack_would_refuse(
    fake_slack: FakeSlack, method: str, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as raised:
        getattr(fake_slack.client(), method)(**kwargs)
    assert raised.value.response["error"] == error
    assert len(fake_slack.calls) == 1  # refused calls are recorded too


def test_calls_without_a_token_are_not_authed(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        WebClient(base_url=fake_slack.api_url).auth_test()
    assert raised.value.response["error"] == "not_authed"


def test_auth_test_has_what_bolt_needs(fake_slack: FakeSlack) -> None:
    answer = fake_slack.client().auth_test()
    assert answer["user_id"] == BOT_USER_ID and answer["bot_id"] and answer["team_id"]
    assert "chat:write" in answer.headers["x-oauth-scopes"]


def test_rate_limit_is_answered_with_retry_after(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        fake_slack.client().chat_postMessage(channel="C1", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"
    # Only the next call fails.
    assert fake_slack.client().chat_postMessage(channel="C1", text="x")["ok"]


def test_rate_limit_retry_handler_retries_after_429(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=0)
    client = fake_slack.client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 200]


def test_server_error_and_ok_false_errors(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("users.info", status=500)
    fake_slack.error_next("conversations.info", error="channel_not_found")
    client = fake_slack.client()
    with pytest.raises(SlackApiError) as server_error:
        client.users_info(user="U1")
    assert server_error.value.response.status_code == 500
    with pytest.raises(SlackApiError) as not_found:
        client.conversations_info(channel="C404")
    assert not_found.value.response.status_code == 200
    assert not_found.value.response["error"] == "channel_not_found"


def test_hang_does_not_block_other_calls(fake_slack: FakeSlack) -> None:
    fake_slack.hang("users.info", 30)
    slow = threading.Thread(target=lambda: fake_slack.client().users_info(user="U1"), daemon=True)
    slow.start()
    fake_slack.wait_for("users.info")  # the hanging request has arrived and is being held
    assert fake_slack.client().chat_postMessage(channel="C1", text="meanwhile")["ok"]
    assert slow.is_alive()
    fake_slack.stop()  # releases the held answer
    slow.join(timeout=5)
    assert not slow.is_alive()


def test_wait_for_times_out_with_what_it_saw(fake_slack: FakeSlack) -> None:
    fake_slack.client().auth_test()
    with pytest.raises(SlackCallTimeout, match=r"chat\.update.*auth\.test"):
        fake_slack.wait_for("chat.update", timeout=0.05)


def test_wait_quiet_waits_for_answers_in_progress(fake_slack: FakeSlack) -> None:
    fake_slack.client().auth_test()
    fake_slack.wait_quiet(quiet=0.01)
    fake_slack.hang("users.info", 30)
    slow = threading.Thread(target=lambda: fake_slack.client().users_info(user="U1"), daemon=True)
    slow.start()
    fake_slack.wait_for("users.info")
    with pytest.raises(SlackCallTimeout, match="1 being answered"):
        fake_slack.wait_quiet(quiet=0.01, timeout=0.1)
    fake_slack.stop()
    slow.join(timeout=5)


def test_wait_for_waits_for_calls_from_other_threads(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    senders = [
        threading.Thread(target=client.chat_postMessage, kwargs={"channel": "C1", "text": str(i)})
        for i in range(3)
    ]
    for sender in senders:
        sender.start()
    calls = fake_slack.wait_for("chat.postMessage", count=3)
    assert sorted(c.text or "" for c in calls) == ["0", "1", "2"]
    assert fake_slack.wait_for("chat.postMessage", where=lambda c: c.text == "2")[0].text == "2"
    for sender in senders:
        sender.join()
    fake_slack.clear()
    assert fake_slack.calls == []


def test_users_usergroups_and_channels_are_configurable(fake_slack: FakeSlack) -> None:
    fake_slack.set_user("U1", "alice", is_admin=True, tz="America/New_York")
    fake_slack.set_usergroup("S1", ["U1", "U2"])
    fake_slack.set_channel("C9", "launch-room")
    client = fake_slack.client()
    alice = client.users_info(user="U1")["user"]
    assert (alice["id"], alice["name"], alice["is_admin"], alice["tz"]) == (
        "U1",
        "alice",
        True,
        "America/New_York",
    )
    assert alice["real_name"] == "Alice"
    assert client.users_info(user="U2")["user"]["is_admin"] is False
    assert client.usergroups_users_list(usergroup="S1")["users"] == ["U1", "U2"]
    assert client.conversations_info(channel="C9")["channel"]["name"] == "launch-room"
    assert fake_slack.calls_to("users.info")[0].payload == {"user": "U1"}


def test_views_open_update_and_publish(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    opened = client.views_open(trigger_id="1.2.abc", view=GOOD_MODAL)["view"]
    assert opened["id"] and opened["callback_id"] == "signoff_modal"
    changed = {**GOOD_MODAL, "blocks": [section("Saved")]}
    assert client.views_update(view_id=opened["id"], view=changed)["view"]["id"] == opened["id"]
    home = {"type": "home", "blocks": [section("Home")]}
    first = client.views_publish(user_id="U1", view=home)["view"]["id"]
    again = client.views_publish(user_id="U1", view={**home, "blocks": [section("Home 2")]})
    assert again["view"]["id"] == first
    published = fake_slack.home_view("U1")
    assert published is not None and published["blocks"] == [section("Home 2")]
    assert fake_slack.calls_to("views.open")[0].view == GOOD_MODAL


def test_files_upload_v2_end_to_end(fake_slack: FakeSlack) -> None:
    answer = fake_slack.client().files_upload_v2(
        content="# Post-mortem\n", filename="postmortem.md", title="Post-mortem", channel="C123"
    )
    file_id = answer["file"]["id"]
    assert [c.method for c in fake_slack.calls] == [
        "files.getUploadURLExternal",
        FILE_UPLOAD,
        "files.completeUploadExternal",
    ]
    uploaded = fake_slack.uploaded_file(file_id)
    assert uploaded is not None
    assert uploaded["content"] == b"# Post-mortem\n" and uploaded["completed"]
    assert uploaded["channel_id"] == "C123" and uploaded["title"] == "Post-mortem"
    assert fake_slack.calls_to("files.completeUploadExternal")[0].data["files"][0]["id"] == file_id


def test_response_url_posts_are_recorded(fake_slack: FakeSlack) -> None:
    url = fake_slack.response_url("abc")
    sent = WebhookClient(url).send(text="pong", response_type="ephemeral", blocks=[section("pong")])
    assert (sent.status_code, sent.body) == (200, "ok")
    (call,) = fake_slack.calls_to(RESPONSE_URL)
    assert call.path == "/response/abc"
    assert call.text == "pong" and call.data["response_type"] == "ephemeral"
    assert call.blocks == [section("pong")]


def test_fake_refuses_invalid_blocks_like_slack(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as raised:
        fake_slack.client().chat_postMessage(channel="C1", text="x", blocks=[section("x" * 3001)])
    assert raised.value.response["error"] == "invalid_blocks"
    assert any("3001" in m for m in raised.value.response["response_metadata"]["messages"])
    rejected = WebhookClient(fake_slack.response_url()).send(text="x", blocks=[{"type": "nope"}])
    assert rejected.status_code == 400


def test_form_encoded_json_fields_are_kept_and_decoded(fake_slack: FakeSlack) -> None:
    fake_slack.client().api_call(
        "chat.postMessage", data={"channel": "C1", "text": "x", "blocks": json.dumps([section()])}
    )
    (call,) = fake_slack.calls_to("chat.postMessage")
    assert isinstance(call.payload["blocks"], str)
    assert call.blocks == [section()]


# -- signed requests into a real Bolt app ------------------------------------------------------


@pytest.fixture
def bolt_app(fake_slack: FakeSlack, signing_secret: str) -> App:
    """A tiny real Bolt app wired to the fake, one listener per payload kind."""
    app = App(signing_secret=signing_secret, client=fake_slack.client())
    seen: dict[str, Any] = {}
    app.seen = seen  # type: ignore[attr-defined]

    @app.command("/ping")
    def ping(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(text=f"pong {command['text']}")

    @app.action("signoff")
    def signoff(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        ack()
        seen["action"] = (body["user"]["id"], action["value"], body["container"]["message_ts"])
        respond(text="signed", replace_original=False)

    @app.action("home_rerun")
    def rerun(ack: Any, body: dict[str, Any]) -> None:
        ack()
        seen["home_action"] = body["view"]["type"]

    @app.view("signoff_modal")
    def submitted(ack: Any, view: dict[str, Any], body: dict[str, Any]) -> None:
        ack()
        seen["submission"] = (view["state"]["values"], view["private_metadata"], body["user"]["id"])

    @app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [section("Home")]}
        )

    return app


def test_bolt_runs_a_signed_slash_command(
    bolt_app: App, fake_slack: FakeSlack, signing_secret: str
) -> None:
    body, ctype = slash_command("/ping", "hello", response_url=fake_slack.response_url())
    response = bolt_app.dispatch(bolt_request(body, sign(signing_secret, body, content_type=ctype)))
    assert response.status == 200
    (reply,) = fake_slack.wait_for(RESPONSE_URL)
    assert reply.text == "pong hello"
    assert validate_outbound(fake_slack.calls) == []


@pytest.mark.parametrize("ts_offset", [0, -10 * 60], ids=["bad-signature", "stale"])
def test_bolt_refuses_unsigned_requests(
    bolt_app: App, fake_slack: FakeSlack, signing_secret: str, ts_offset: int
) -> None:
    body, _ = slash_command("/ping", response_url=fake_slack.response_url())
    secret = WRONG_SECRET if ts_offset == 0 else signing_secret
    headers = sign(secret, body, ts=int(time.time()) + ts_offset)
    assert bolt_app.dispatch(bolt_request(body, headers)).status == 401
    assert fake_slack.calls_to(RESPONSE_URL) == []


def test_bolt_parses_the_interaction_builders(
    bolt_app: App, fake_slack: FakeSlack, signing_secret: str
) -> None:
    seen = bolt_app.seen  # type: ignore[attr-defined]
    deliveries = [
        block_actions(
            "signoff",
            "item-1",
            user_id="U7",
            message_ts="1700000000.000200",
            response_url=fake_slack.response_url(),
        ),
        block_actions("home_rerun", "db", container="view"),
        view_submission(
            "signoff_modal", {"evidence": {"note": "restored in 40 min"}}, private_metadata="item-1"
        ),
    ]
    for body, ctype in deliveries:
        response = bolt_app.dispatch(
            bolt_request(body, sign(signing_secret, body, content_type=ctype))
        )
        assert response.status == 200
    fake_slack.wait_for(RESPONSE_URL)
    assert seen["action"] == ("U7", "item-1", "1700000000.000200")
    assert seen["home_action"] == "home"
    values, metadata, user = seen["submission"]
    assert values["evidence"]["note"] == {"type": "plain_text_input", "value": "restored in 40 min"}
    assert (metadata, user) == ("item-1", "U123")


def test_bolt_over_http_with_event_and_retry_headers(
    bolt_app: App, fake_slack: FakeSlack, signing_secret: str
) -> None:
    body, ctype = app_home_opened("U5")
    with wsgi_server(SlackRequestHandler(bolt_app)) as base:
        url = f"{base}/slack/events"
        status, _, elapsed = post(url, body, sign(signing_secret, body, content_type=ctype))
        assert status == 200 and elapsed > 0
        fake_slack.wait_for("views.publish")
        retried, _, _ = post(url, body, sign(signing_secret, body, content_type=ctype), retry_num=1)
        assert retried == 200
        bad, _, _ = post(url, body, sign(WRONG_SECRET, body))
        assert bad == 401
    home = fake_slack.home_view("U5")
    assert home is not None and home["blocks"] == [section("Home")]


def test_builders_give_fresh_ids_unless_given() -> None:
    a, b = (parse_qs(slash_command().body)["trigger_id"][0] for _ in range(2))
    assert a != b
    events = [json.loads(app_home_opened().body)["event_id"] for _ in range(2)]
    assert events[0] != events[1]
    fixed = json.loads(app_home_opened(event_id="Ev1", event_time=1_700_000_000).body)
    assert (fixed["event_id"], fixed["event_time"]) == ("Ev1", 1_700_000_000)
    action = json.loads(
        parse_qs(block_actions("x", trigger_id="t1", action_ts="9.1").body)["payload"][0]
    )
    assert action["trigger_id"] == "t1" and action["actions"][0]["action_ts"] == "9.1"


# -- payload validation ------------------------------------------------------------------------


def message(method: str = "chat.postMessage", **payload: Any) -> Call:
    return Call(method, {"channel": "C1", **payload})


def test_good_payloads_have_no_problems() -> None:
    calls = [
        message(text="Readiness", blocks=GOOD_BLOCKS),
        message("chat.update", ts="1.1", text="Readiness", blocks=GOOD_BLOCKS),
        message("chat.postEphemeral", user="U1", text="Only you", blocks=[section()]),
        Call(RESPONSE_URL, {"text": "pong", "blocks": [section()]}),
        Call(RESPONSE_URL, {"delete_original": True}),
        Call("views.open", {"trigger_id": "t", "view": GOOD_MODAL}),
        Call("views.publish", {"user_id": "U1", "view": {"type": "home", "blocks": GOOD_BLOCKS}}),
        Call("users.info", {"user": "U1"}),
    ]
    assert validate_outbound(calls) == []


TOO_MANY = [section(str(i)) for i in range(51)]


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (message(text="x", blocks=TOO_MANY), "51 blocks (max 50)"),
        (message(text="x", blocks=[section("x" * 3001)]), "3001 characters (max 3000)"),
        (
            message(
                text="x",
                blocks=[{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            ),
            "(max 150)",
        ),
        (message(text="x", blocks=[section(accessory=button("b" * 76))]), "(max 75)"),
        (message(text="x", blocks=[section(accessory=button(action_id="a" * 256))]), "action_id"),
        (message(text="x" * 40_001), "40001 characters (max 40000)"),
        (message("chat.update", ts="1.1", blocks=[section()]), "no top-level text"),
        (message(text="x", blocks=[{"type": "carousel_of_doom"}]), "unknown block type"),
        (message(text="x", blocks=[section(acessory=button())]), "acessory"),
        (message(text="x", blocks=[section("")]), "empty mrkdwn"),
        (message(text="x", blocks=[section(block_id="a"), section(block_id="a")]), "used twice"),
        (
            message(text="x", blocks=[{"type": "actions", "elements": [button(), button()]}]),
            "action_id 'signoff' twice",
        ),
        (message(text="x", blocks="[not json"), "expected a list"),
        (message(), "no text, blocks or attachments"),
        (
            Call("views.publish", {"view": {"type": "home", "blocks": [section()] * 101}}),
            "101 blocks (max 100)",
        ),
        (Call("views.open", {"view": {**GOOD_MODAL, "title": None}}), "without a title"),
        (Call("views.open", {"view": {**GOOD_MODAL, "submit": None}}), "no submit"),
        (
            Call(
                "views.open",
                {"view": {**GOOD_MODAL, "title": {"type": "plain_text", "text": "t" * 25}}},
            ),
            "title is 25 characters",
        ),
        (
            Call("views.open", {"view": {**GOOD_MODAL, "type": "sheet"}}),
            "expected 'modal' or 'home'",
        ),
        (Call(RESPONSE_URL, {"text": "x", "blocks": TOO_MANY}), "(max 50)"),
    ],
)
def test_bad_payloads_are_reported(call: Call, problem: str) -> None:
    problems = validate_outbound([call])
    assert any(problem in p for p in problems), problems


def test_text_can_be_required_for_more_methods() -> None:
    calls = [message(blocks=[section()])]
    assert validate_outbound(calls) == []
    assert validate_outbound(calls, text_required_for=["chat.postMessage"])


def test_secrets_are_found_without_being_quoted(fake_slack: FakeSlack) -> None:
    secret = "hunter2-db-password-not-real"  # pragma: allowlist secret
    client = fake_slack.client()
    client.chat_postMessage(
        channel="C1", text="all good", blocks=[section(f"dsn: pg://u:{secret}@db")]
    )
    client.api_call("chat.postMessage", data={"channel": "C1", "text": f"oops {secret}"})
    WebhookClient(fake_slack.response_url()).send(text="clean")
    found = scan_for_secrets(fake_slack.calls, ["", "not-present-anywhere", secret])
    assert found == [
        "call 0 chat.postMessage: secret #2 found in payload.blocks[0].text.text",
        "call 1 chat.postMessage: secret #2 found in payload.text",
    ]
    assert all(secret not in line for line in found)


def test_bot_token_in_authorization_is_not_a_leak(fake_slack: FakeSlack) -> None:
    fake_slack.client().chat_postMessage(channel="C1", text="hi")
    assert scan_for_secrets(fake_slack.calls, [BOT_TOKEN]) == []
    fake_slack.client().chat_postMessage(channel="C1", text=f"token is {BOT_TOKEN}")
    assert scan_for_secrets(fake_slack.calls, [BOT_TOKEN]) == [
        "call 1 chat.postMessage: secret #0 found in payload.text"
    ]


def test_secrets_in_uploaded_files_are_found(fake_slack: FakeSlack) -> None:
    secret = "jwt-secret-not-real-123"  # pragma: allowlist secret
    fake_slack.client().files_upload_v2(content=f"JWT_SECRET={secret}\n", filename="export.txt")
    assert scan_for_secrets(fake_slack.calls, [secret]) == [
        f"call 1 {FILE_UPLOAD}: secret #0 found in raw body"
    ]
