"""Requests as Slack sends them: signed, in the documented payload shapes, in-process or over HTTP.

    body, ctype = slash_command(text="status", response_url=fake_slack.response_url())
    response = app.dispatch(bolt_request(body, sign(signing_secret, body, content_type=ctype)))

Every builder fills realistic defaults and gives each call fresh ids (trigger_id, action_ts,
event_id) unless they are passed in, so two builds are two distinct Slack deliveries.
The default `response_url` is a closed loopback port: a test that forgets to pass the fake's
URL fails fast instead of reaching Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from slack_bolt import BoltRequest

from tests.support.slack_fake import APP_ID, BOT_ID, BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "test-signing-secret-not-real"  # pragma: allowlist secret
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
UNSET_RESPONSE_URL = "http://127.0.0.1:9/response/unset"
"""Port 9 (discard) is closed on loopback: posting here fails at once and never leaves the host."""

TEAM_DOMAIN = "preflight-test"
USER_ID = "U123"
CHANNEL_ID = "C123"
MESSAGE_TS = "1700000000.000100"

_serial = itertools.count(1)


class SlackBody(NamedTuple):
    """A request body and its Content-Type; unpacks as `body, content_type = ...`."""

    body: str
    content_type: str


def sign(
    secret: str, body: str, ts: int | None = None, content_type: str | None = None
) -> dict[str, str]:
    """Headers Slack would send with `body`: timestamp, v0 HMAC-SHA256 signature, Content-Type.

    Written out here rather than borrowed from slack_sdk so the tests check Bolt's verifier
    against an independent implementation of Slack's documented scheme.
    """
    timestamp = str(int(time.time()) if ts is None else ts)
    basestring = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), basestring, hashlib.sha256).hexdigest()
    if content_type is None:
        content_type = JSON if body.lstrip().startswith("{") else FORM
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def bolt_request(body: str, headers: dict[str, str]) -> BoltRequest:
    """A BoltRequest for `app.dispatch()`, as Bolt's HTTP adapters would build it."""
    return BoltRequest(body=body, headers=dict(headers))


def post(
    url: str,
    body: str,
    headers: dict[str, str],
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
    timeout: float = 10.0,
) -> tuple[int, str, float]:
    """POST over real HTTP; returns (status, response text, elapsed seconds).

    With `retry_num`, adds the headers Slack sends when it redelivers a request it thinks failed.
    They are outside the signature, as with Slack.
    """
    sent = dict(headers)
    if retry_num is not None:
        sent["X-Slack-Retry-Num"] = str(retry_num)
        sent["X-Slack-Retry-Reason"] = retry_reason
    started = time.perf_counter()
    response = httpx.post(url, content=body.encode(), headers=sent, timeout=timeout)
    return response.status_code, response.text, time.perf_counter() - started


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def wsgi_server(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app (e.g. `slack_bolt.adapter.wsgi.SlackRequestHandler(app)`) on a free
    loopback port in a thread; yields the base URL `http://127.0.0.1:PORT`."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- payload builders ------------------------------------------------------------------------


def new_trigger_id() -> str:
    """A fresh trigger_id in Slack's shape (`<n>.<n>.<hex>`)."""
    return f"{1_000_000_000 + next(_serial)}.738474920.{uuid.uuid4().hex[:20]}"


def new_action_ts() -> str:
    """A fresh, increasing action_ts/event_ts (`<seconds>.<micros>`)."""
    return f"{int(time.time())}.{next(_serial) % 1_000_000:06d}"


def new_event_id() -> str:
    """A fresh event_id (`Ev` + 9 upper-case characters)."""
    return f"Ev{uuid.uuid4().hex[:9].upper()}"


def slash_command(
    command: str = "/preflight",
    text: str = "status",
    *,
    user_id: str = USER_ID,
    user_name: str = "tester",
    channel_id: str = CHANNEL_ID,
    channel_name: str = "launch",
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> SlackBody:
    """A slash command invocation (form-encoded, as Slack posts it)."""
    fields = {
        "token": "verification-token-not-real",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return SlackBody(urlencode(fields), FORM)


def block_actions(
    action_id: str,
    value: str | None = None,
    *,
    user_id: str = USER_ID,
    user_name: str = "tester",
    block_id: str = "actions",
    action_type: str = "button",
    action_text: str = "Button",
    action: dict[str, Any] | None = None,
    container: str = "message",
    channel_id: str = CHANNEL_ID,
    channel_name: str = "launch",
    message_ts: str = MESSAGE_TS,
    message_text: str = "",
    message_blocks: list[Any] | None = None,
    is_ephemeral: bool = False,
    view: dict[str, Any] | None = None,
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str | None = None,
    action_ts: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> SlackBody:
    """A block_actions interaction (form-encoded `payload=` JSON).

    `container="message"` is a click in a channel message (with `channel`, `message` unless
    ephemeral, and `response_url`); `container="view"` is a click in a modal or the App Home
    (with `view`, no response_url). `action` adds or overrides fields of the action itself,
    e.g. `{"selected_option": {...}}` for a select menu.
    """
    clicked: dict[str, Any] = {
        "type": action_type,
        "action_id": action_id,
        "block_id": block_id,
        "action_ts": action_ts or new_action_ts(),
    }
    if action_type == "button":
        clicked["text"] = {"type": "plain_text", "text": action_text, "emoji": True}
    if value is not None:
        clicked["value"] = value
    clicked.update(action or {})
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-not-real",
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "actions": [clicked],
    }
    if container == "view":
        shown = _view(view or {"type": "home", "blocks": []}, team_id)
        payload["container"] = {"type": "view", "view_id": shown["id"]}
        payload["view"] = shown
    elif container == "message":
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        payload["channel"] = {"id": channel_id, "name": channel_name}
        if not is_ephemeral:
            payload["message"] = {
                "type": "message",
                "subtype": "bot_message",
                "text": message_text,
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "ts": message_ts,
                "blocks": message_blocks or [],
            }
        payload["state"] = {"values": {}}
        payload["response_url"] = response_url
    else:
        raise ValueError(f"container must be 'message' or 'view', not {container!r}")
    return SlackBody(urlencode({"payload": json.dumps(payload)}), FORM)


def view_submission(
    callback_id: str,
    state_values: dict[str, dict[str, Any]] | None = None,
    *,
    private_metadata: str = "",
    user_id: str = USER_ID,
    user_name: str = "tester",
    view_id: str | None = None,
    blocks: list[Any] | None = None,
    title: str = "Preflight",
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> SlackBody:
    """A modal submission (form-encoded `payload=` JSON).

    `state_values` is `{block_id: {action_id: value}}`; a plain string value stands for a
    plain_text_input, anything else is passed through as the element's state.
    """
    values = {
        block: {
            action: {"type": "plain_text_input", "value": state}
            if isinstance(state, str)
            else state
            for action, state in actions.items()
        }
        for block, actions in (state_values or {}).items()
    }
    view = _view(
        {
            "id": view_id or f"V{next(_serial):08d}",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "blocks": blocks or [],
            "state": {"values": values},
        },
        team_id,
    )
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "verification-token-not-real",
        "trigger_id": trigger_id or new_trigger_id(),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return SlackBody(urlencode({"payload": json.dumps(payload)}), FORM)


def app_home_opened(
    user_id: str = USER_ID,
    *,
    event_id: str | None = None,
    event_time: int | None = None,
    channel: str | None = None,
    tab: str = "home",
    view: dict[str, Any] | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
) -> SlackBody:
    """An `app_home_opened` Events API delivery (JSON `event_callback`)."""
    event_time = int(time.time()) if event_time is None else event_time
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": channel or f"D{user_id[1:]}",
        "tab": tab,
        "event_ts": f"{event_time}.{next(_serial) % 1_000_000:06d}",
    }
    if view is not None:
        event["view"] = _view(view, team_id)
    payload = {
        "token": "verification-token-not-real",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex[:24]}",
    }
    return SlackBody(json.dumps(payload), JSON)


def _view(view: dict[str, Any], team_id: str) -> dict[str, Any]:
    """A view as Slack echoes it back in payloads: the app's fields plus Slack's own."""
    view_id = view.get("id") or f"V{next(_serial):08d}"
    return {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": [],
        "private_metadata": "",
        "callback_id": "",
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
        "clear_on_close": False,
        "notify_on_close": False,
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": APP_ID,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
        **view,
    }


@pytest.fixture
def signing_secret() -> str:
    """The signing secret the test app and the signed requests share (obviously fake)."""
    return SIGNING_SECRET
