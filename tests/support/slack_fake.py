"""A fake Slack Web API: a threaded HTTP server on a free loopback port that records every call.

Point the app's client at it with `WebClient(token=..., base_url=fake.api_url)` and give Slack
payloads a `response_url=fake.response_url()`. Every request is recorded as a `Call`; tests read
them with `calls_to()` or block on `wait_for()` (Bolt works after the ack on other threads).

It answers the methods Preflight uses with minimal bodies shaped like Slack's, keeps the state
those methods imply (posted messages, opened views, uploaded files) so a test can read the
current message or App Home, and rejects what Slack would reject: no token (`not_authed`),
`chat.update` of a message it never saw (`message_not_found`), invalid blocks (`invalid_blocks`).
Faults are injected per method: `fail_next` (HTTP 429/500), `error_next` (200 with ok false),
`hang` (slow answer; other requests are served meanwhile).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from slack_sdk import WebClient

RESPONSE_URL = "response_url"
"""Method name recorded for posts to a response_url."""
FILE_UPLOAD = "file_upload"
"""Method name recorded for the raw upload to a files.getUploadURLExternal URL."""

BOT_TOKEN = "xoxb-test-bot-token-not-real"  # pragma: allowlist secret
TEAM_ID = "T123"
BOT_USER_ID = "UBOT123"
BOT_ID = "BBOT123"
APP_ID = "A123"
BOT_SCOPES = (
    "commands,chat:write,chat:write.public,users:read,usergroups:read,channels:read,files:write"
)

_HTTP_ERRORS = {429: "ratelimited", 500: "fatal_error", 503: "service_unavailable"}
_FIRST_TS = 1_700_000_000


class SlackCallTimeout(AssertionError):
    """The expected Slack calls did not arrive in time."""


@dataclass(frozen=True)
class Call:
    """One request the fake received.

    `payload` is the body as sent: the JSON object, or form fields as strings (so a form-encoded
    `blocks` stays a JSON string there). `data` is the same with those JSON-holding fields
    (blocks, attachments, view, files, metadata) parsed; read `data` unless the encoding matters.
    Header names are lower-case.
    """

    method: str
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    path: str = ""
    at: float = field(default_factory=time.time)
    raw: bytes = b""
    status: int = 200
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data:
            object.__setattr__(self, "data", decode_json_fields(self.payload))

    @property
    def text(self) -> str | None:
        value = self.data.get("text")
        return value if isinstance(value, str) else None

    @property
    def blocks(self) -> list[Any] | None:
        value = self.data.get("blocks")
        return value if isinstance(value, list) else None

    @property
    def view(self) -> dict[str, Any] | None:
        value = self.data.get("view")
        return value if isinstance(value, dict) else None

    @property
    def token(self) -> str | None:
        """The token the call was made with (Authorization header, else a `token` field)."""
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ")
        token = self.payload.get("token")
        return token if isinstance(token, str) else None


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Bucket:
    """A method's rate limit: `rate` calls a second, `burst` at once (a token bucket)."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """0 when a call may pass (and takes its token), else seconds until one may."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None = None


class FakeSlack:
    """The fake Slack Web API server. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        token: str | None = None,
        team_id: str = TEAM_ID,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        reject_invalid_blocks: bool = True,
    ) -> None:
        """`token`: when set, calls with another token get `invalid_auth` (any token otherwise)."""
        self.token = token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.reject_invalid_blocks = reject_invalid_blocks
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._calls: list[Call] = []
        self._in_flight = 0
        self._last_arrival = time.monotonic()
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._hangs: dict[str, deque[float]] = defaultdict(deque)
        self._limits: dict[str, _Bucket] = {}
        self._ids = itertools.count(1)
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._home_views: dict[str, str] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        """Bind a free 127.0.0.1 port and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        # A short poll interval keeps stop() fast: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging answers are released at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """Base URL for `WebClient(base_url=...)`, ending in `/api/`."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        """A response_url on this server; posts to it are recorded as method `response_url`."""
        return f"{self.base_url}/response/{name}"

    def client(self, token: str = BOT_TOKEN, **kwargs: Any) -> WebClient:
        """A slack_sdk WebClient pointed at this fake."""
        return WebClient(token=token, base_url=self.api_url, **kwargs)

    # -- recorded calls --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until `count` calls to `method` (matching `where`) arrived; return them all."""

        def matching() -> list[Call]:
            return [c for c in self._calls if c.method == method and (where is None or where(c))]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(matching()) >= count, timeout=timeout):
                seen = ", ".join(c.method for c in self._calls) or "none"
                raise SlackCallTimeout(
                    f"expected {count} call(s) to {method} within {timeout}s, "
                    f"got {len(matching())}; calls so far: {seen}"
                )
            return matching()

    def wait_quiet(self, quiet: float = 0.3, timeout: float = 15.0) -> None:
        """Block until no request is being answered and none has arrived for `quiet` seconds.

        For "the app has finished its work after the ack" when the test cannot name the last
        call it expects; prefer `wait_for` when it can.
        """
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                now = time.monotonic()
                idle = now - self._last_arrival
                if self._in_flight == 0 and idle >= quiet:
                    return
                if now >= deadline:
                    raise SlackCallTimeout(
                        f"Slack calls still arriving after {timeout}s "
                        f"({self._in_flight} being answered, {len(self._calls)} recorded)"
                    )
                wait = quiet - idle if self._in_flight == 0 else quiet
                self._arrived.wait(max(0.01, min(wait, deadline - now)))

    def clear(self) -> None:
        """Forget recorded calls (state such as messages, views and users is kept)."""
        with self._lock:
            self._calls.clear()

    # -- fault injection -------------------------------------------------------------------

    def fail_next(
        self, method: str, status: int = 429, retry_after: int = 1, times: int = 1
    ) -> None:
        """Answer the next `times` calls to `method` with HTTP `status`.

        429 comes with a `Retry-After` header and `{"ok": false, "error": "ratelimited"}`.
        """
        error = _HTTP_ERRORS.get(status, "fatal_error")
        fault = _Fault(status, error, retry_after if status == 429 else None)
        with self._lock:
            self._faults[method].extend([fault] * times)

    def error_next(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        """Answer the next `times` calls to `method` with 200 and `{"ok": false, "error": ...}`."""
        with self._lock:
            self._faults[method].extend([_Fault(200, error)] * times)

    def rate_limit(self, method: str, per_second: float, burst: int | None = None) -> None:
        """Limit `method` to `per_second` calls a second with bursts of `burst` (default: one
        second's worth), as Slack's tiers do; a call over the limit gets HTTP 429 with
        `Retry-After` (whole seconds, as Slack sends it)."""
        size = float(burst if burst is not None else max(1, int(per_second)))
        with self._lock:
            self._limits[method] = _Bucket(per_second, size, size, time.monotonic())

    def minimum_seconds(self, method: str, calls: int) -> float:
        """The least time `calls` calls to `method` can take under its rate limit."""
        bucket = self._limits[method]
        return max(0.0, (calls - bucket.burst) / bucket.rate)

    def hang(self, method: str, seconds: float, times: int = 1) -> None:
        """Delay the answer to the next `times` calls to `method` (other requests go on)."""
        with self._lock:
            self._hangs[method].extend([seconds] * times)

    # -- configurable data and state -------------------------------------------------------

    def set_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/London",
        email: str | None = None,
    ) -> None:
        """What users.info answers for `user_id` (unknown users get a plain default member)."""
        name = name or user_id.lower()
        user = _default_user(user_id, self.team_id) | {
            "name": name,
            "real_name": real_name or name.title(),
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_bot": is_bot,
            "deleted": deleted,
            "tz": tz,
        }
        user["profile"] = {
            "real_name": user["real_name"],
            "display_name": name,
            **({"email": email} if email else {}),
        }
        with self._lock:
            self._users[user_id] = user

    def set_usergroup(self, group_id: str, user_ids: list[str]) -> None:
        """Members usergroups.users.list answers for `group_id` (unknown: no_such_subteam)."""
        with self._lock:
            self._usergroups[group_id] = list(user_ids)

    def answer(self, method: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Answer `method` with handler(payload) (e.g. apps.connections.open for Socket Mode)."""
        with self._lock:
            self._methods[method] = handler

    def set_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> None:
        """What conversations.info answers for `channel_id` (unknown ids get a derived name)."""
        with self._lock:
            self._channels[channel_id] = _channel(channel_id, name, is_private)

    def add_message(
        self, channel: str, ts: str, text: str = "", blocks: list[Any] | None = None
    ) -> None:
        """Seed a message the app may `chat.update` (as if it had posted it earlier)."""
        with self._lock:
            self._messages[(channel, ts)] = _message(
                text, blocks, ts, self.bot_user_id, self.bot_id
            )

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current state of a posted message (after any updates), or None."""
        with self._lock:
            found = self._messages.get((channel, ts))
            return dict(found) if found else None

    def view(self, view_id: str) -> dict[str, Any] | None:
        """The current state of an opened or published view, or None."""
        with self._lock:
            found = self._views.get(view_id)
            return dict(found) if found else None

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for `user_id`, or None."""
        with self._lock:
            view_id = self._home_views.get(user_id)
            return self.view(view_id) if view_id else None

    def uploaded_to(self, channel: str) -> list[dict[str, Any]]:
        """Completed uploads shared in `channel` (by channel_id or in channels)."""
        with self._lock:
            return [
                f
                for f in self._files.values()
                if f["completed"] and (f.get("channel_id") == channel or channel in f["channels"])
            ]

    def uploaded_file(self, file_id: str) -> dict[str, Any] | None:
        """An uploaded file: id, name, title, length, content (bytes), channel_id, completed."""
        with self._lock:
            found = self._files.get(file_id)
            return dict(found) if found else None

    # -- request handling (called from server threads) -------------------------------------

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        url = urlsplit(path)
        method, payload = self._route(url.path, headers, raw)
        payload.update({k: v for k, v in parse_qsl(url.query) if k not in payload})
        with self._lock:
            fault = self._faults[method].popleft() if self._faults.get(method) else None
            bucket = self._limits.get(method)
            if fault is None and bucket is not None:
                wait = bucket.take(time.monotonic())
                if wait:
                    fault = _Fault(429, "ratelimited", max(1, math.ceil(wait)))
            delay = self._hangs[method].popleft() if self._hangs.get(method) else 0.0
            try:
                reply = self._reply(method, payload, headers, fault, raw)
            except Exception as e:  # a bug in the fake must fail the call, not drop it
                reply = _json_reply({"ok": False, "error": f"fake_error: {e!r}"}, 500)
            call = Call(
                method=method,
                payload=payload,
                headers=headers,
                path=path,
                raw=raw,
                status=reply.status,
            )
            self._calls.append(call)
            self._in_flight += 1
            self._last_arrival = time.monotonic()
            self._arrived.notify_all()
        if delay:
            self._stopping.wait(delay)
        return reply

    def _answered(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._arrived.notify_all()

    def _route(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[str, dict[str, Any]]:
        if path.startswith("/api/"):
            return path.removeprefix("/api/"), _decode_body(headers, raw)
        if path.startswith("/response/"):
            return RESPONSE_URL, _decode_body(headers, raw)
        if path.startswith("/upload/v1/"):
            return FILE_UPLOAD, {"file_id": path.removeprefix("/upload/v1/"), "length": len(raw)}
        return "unknown_path", {}

    def _reply(
        self,
        method: str,
        payload: dict[str, Any],
        headers: dict[str, str],
        fault: _Fault | None,
        raw: bytes,
    ) -> _Reply:
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _json_reply({"ok": False, "error": fault.error}, fault.status, extra)
        if method == RESPONSE_URL:
            return self._response_url(payload)
        if method == FILE_UPLOAD:
            return self._file_upload(payload["file_id"], raw)
        if method == "unknown_path":
            return _Reply(404, b"Not Found", "text/plain; charset=utf-8")
        token = _token_of(headers, payload)
        if token is None:
            return _json_reply({"ok": False, "error": "not_authed"})
        if self.token is not None and token != self.token:
            return _json_reply({"ok": False, "error": "invalid_auth"})
        answer = self._methods.get(method)
        if answer is None:
            return _json_reply({"ok": False, "error": "unknown_method"})
        data = decode_json_fields(payload)
        invalid = self._invalid_blocks(method, data)
        if invalid is not None:
            return _json_reply(invalid)
        body = answer(data)
        extra = {"x-oauth-scopes": BOT_SCOPES} if method == "auth.test" else {}
        return _json_reply(body, 200, extra)

    def _invalid_blocks(self, method: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's answer when it would refuse the blocks or view, else None."""
        # Imported here: slack_payloads imports this module, and importing it at the top would
        # load it before pytest registers it as a plugin (no assertion rewriting there).
        from tests.support.slack_payloads import (
            MESSAGE_METHODS,
            VIEW_METHODS,
            validate_blocks,
            validate_view,
        )

        if not self.reject_invalid_blocks:
            return None
        if method in MESSAGE_METHODS and "blocks" in data:
            problems, error = validate_blocks(data["blocks"]), "invalid_blocks"
        elif method in VIEW_METHODS and "view" in data:
            problems, error = validate_view(data["view"]), "invalid_arguments"
        else:
            return None
        if not problems:
            return None
        messages = [f"[ERROR] {p}" for p in problems]
        return {"ok": False, "error": error, "response_metadata": {"messages": messages}}

    def _next_ts(self) -> str:
        n = next(self._ids)
        return f"{_FIRST_TS + n // 10_000}.{(n % 10_000) * 100:06d}"

    # -- Web API methods (called with the lock held) ---------------------------------------

    def _auth_test(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://preflight-test.slack.com/",
            "team": "Preflight Test",
            "user": "preflight",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, data: dict[str, Any]) -> dict[str, Any]:
        channel = data.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(data.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        # Posting to a user id opens the DM; Slack answers with the DM channel's id.
        channel = _dm_channel(str(channel))
        ts = self._next_ts()
        message = _message(
            data.get("text", ""), data.get("blocks"), ts, self.bot_user_id, self.bot_id
        )
        if data.get("thread_ts"):
            message["thread_ts"] = data["thread_ts"]
        self._messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, data: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(data.get("channel", "")), str(data.get("ts", ""))
        current = self._messages.get((channel, ts))
        if current is None:
            return {"ok": False, "error": "message_not_found"}
        for key in ("text", "blocks", "attachments"):
            if key in data:
                current[key] = data[key]
        current["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": current.get("text", ""),
            "message": dict(current),
        }

    def _chat_post_ephemeral(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not data.get("user"):
            return {"ok": False, "error": "user_not_found"}
        if not any(data.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_delete(self, data: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(data.get("channel", "")), str(data.get("ts", ""))
        if self._messages.pop((channel, ts), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _views_open(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("trigger_id"):
            return _missing("trigger_id")
        if not isinstance(data.get("view"), dict):
            return _missing("view")
        return {"ok": True, "view": self._store_view(f"V{next(self._ids):08d}", data["view"])}

    def _views_update(self, data: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(data.get("view"), dict):
            return _missing("view")
        view_id = data.get("view_id")
        if not view_id and data.get("external_id"):
            view_id = next(
                (i for i, v in self._views.items() if v.get("external_id") == data["external_id"]),
                None,
            )
        if not view_id:
            return _missing("view_id")
        if view_id not in self._views:
            return {"ok": False, "error": "not_found"}
        return {"ok": True, "view": self._store_view(str(view_id), data["view"])}

    def _views_publish(self, data: dict[str, Any]) -> dict[str, Any]:
        user_id = data.get("user_id")
        if not user_id:
            return _missing("user_id")
        if not isinstance(data.get("view"), dict):
            return _missing("view")
        view_id = self._home_views.get(str(user_id)) or f"V{next(self._ids):08d}"
        self._home_views[str(user_id)] = view_id
        return {"ok": True, "view": self._store_view(view_id, data["view"])}

    def _store_view(self, view_id: str, sent: dict[str, Any]) -> dict[str, Any]:
        view = {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": APP_ID,
            "bot_id": self.bot_id,
            "callback_id": "",
            "private_metadata": "",
            "external_id": "",
            "state": {"values": {}},
            "hash": f"{_FIRST_TS}.{next(self._ids):08d}",
            "root_view_id": view_id,
            "previous_view_id": None,
            **sent,
        }
        self._views[view_id] = view
        return dict(view)

    def _users_info(self, data: dict[str, Any]) -> dict[str, Any]:
        user_id = data.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        user = self._users.get(str(user_id)) or _default_user(str(user_id), self.team_id)
        return {"ok": True, "user": user}

    def _usergroups_users_list(self, data: dict[str, Any]) -> dict[str, Any]:
        users = self._usergroups.get(str(data.get("usergroup", "")))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _conversations_info(self, data: dict[str, Any]) -> dict[str, Any]:
        channel_id = data.get("channel")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel_id = str(channel_id)
        found = self._channels.get(channel_id)
        return {
            "ok": True,
            "channel": found or _channel(channel_id, f"channel-{channel_id.lower()}"),
        }

    def _files_get_upload_url(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("filename"):
            return _missing("filename")
        if not str(data.get("length", "")).isdigit():
            return _missing("length")
        file_id = f"F{next(self._ids):08d}"
        self._files[file_id] = {
            "id": file_id,
            "name": data["filename"],
            "title": data["filename"],
            "length": int(data["length"]),
            "content": None,
            "channel_id": None,
            "completed": False,
            "channels": [],
        }
        return {
            "ok": True,
            "upload_url": f"{self.base_url}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    def _file_upload(self, file_id: str, raw: bytes) -> _Reply:
        found = self._files.get(file_id)
        if found is None:
            return _Reply(404, b"Not Found", "text/plain; charset=utf-8")
        found["content"] = raw
        return _Reply(200, f"OK - {len(raw)}".encode(), "text/plain; charset=utf-8")

    def _files_complete_upload(self, data: dict[str, Any]) -> dict[str, Any]:
        files = data.get("files")
        if not isinstance(files, list) or not files:
            return _missing("files")
        done = []
        for item in files:
            found = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if found is None or found["content"] is None:
                return {"ok": False, "error": "file_not_found"}
            found["completed"] = True
            found["channel_id"] = data.get("channel_id")
            found["channels"] = [c for c in str(data.get("channels") or "").split(",") if c]
            found["thread_ts"] = data.get("thread_ts")
            found["title"] = item.get("title") or found["name"]
            done.append({"id": found["id"], "title": found["title"]})
        return {"ok": True, "files": done}

    def _response_url(self, payload: dict[str, Any]) -> _Reply:
        if self._invalid_blocks(RESPONSE_URL, decode_json_fields(payload)) is not None:
            return _Reply(400, b"invalid_blocks", "text/plain; charset=utf-8")
        return _Reply(200, b"ok", "text/plain; charset=utf-8")


def decode_json_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of a form-encoded payload with its JSON-holding fields (blocks, view, ...) parsed."""
    decoded = dict(payload)
    for key in ("blocks", "attachments", "view", "files", "metadata"):
        value = decoded.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # Malformed JSON is left as sent; validation then reports it as a non-list.
            with contextlib.suppress(ValueError):
                decoded[key] = json.loads(value)
    return decoded


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = fake._handle(self.path, headers, raw)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            finally:
                fake._answered()

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; the calls are recorded instead

    return Handler


def _decode_body(headers: dict[str, str], raw: bytes) -> dict[str, Any]:
    content_type = headers.get("content-type", "")
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type or (not content_type and text.startswith("{")):
        try:
            decoded = json.loads(text) if text else {}
        except ValueError:
            return {}
        return decoded if isinstance(decoded, dict) else {"_body": decoded}
    if "x-www-form-urlencoded" in content_type or not content_type:
        return dict(parse_qsl(text, keep_blank_values=True))
    return {}


def _token_of(headers: dict[str, str], payload: dict[str, Any]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.startswith("Bearer ") and auth.removeprefix("Bearer ").strip():
        return auth.removeprefix("Bearer ").strip()
    token = payload.get("token")
    return token if isinstance(token, str) and token else None


def _json_reply(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> _Reply:
    return _Reply(status, json.dumps(body).encode(), headers=headers or {})


def _missing(argument: str) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": [f"[ERROR] missing required field: {argument}"]},
    }


def _dm_channel(channel: str) -> str:
    return f"D{channel[1:]}" if channel[:1] in ("U", "W") else channel


def _message(text: Any, blocks: Any, ts: str, bot_user_id: str, bot_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": text if isinstance(text, str) else "",
        "user": bot_user_id,
        "bot_id": bot_id,
        "ts": ts,
    }
    if blocks is not None:
        message["blocks"] = blocks
    return message


def _default_user(user_id: str, team_id: str) -> dict[str, Any]:
    name = user_id.lower()
    return {
        "id": user_id,
        "team_id": team_id,
        "name": name,
        "deleted": False,
        "real_name": name.title(),
        "tz": "Europe/London",
        "tz_label": "British Summer Time",
        "tz_offset": 3600,
        "profile": {"real_name": name.title(), "display_name": name},
        "is_admin": False,
        "is_owner": False,
        "is_bot": False,
        "is_app_user": False,
    }


def _channel(channel_id: str, name: str, is_private: bool = False) -> dict[str, Any]:
    return {
        "id": channel_id,
        "name": name,
        "is_channel": not is_private,
        "is_group": is_private,
        "is_im": channel_id.startswith("D"),
        "is_private": is_private,
        "is_archived": False,
        "is_member": True,
    }


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started FakeSlack, stopped after the test."""
    with FakeSlack() as fake:
        yield fake
