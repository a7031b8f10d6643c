"""Builds the one Bolt `App` that both Socket Mode and HTTP mode serve.

Two thread pools, on purpose: Bolt's listener pool only parses, acks and answers quick
commands; slow work (running checks, uploads, digests) goes to a separate bounded work pool.
With Bolt's default single pool of 5, five slow `/preflight status` runs would hold every thread
and the sixth request would miss Slack's 3-second ack deadline.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

import handlers
from bot import live_status
from bot import messages as m
from bot.services import Services

log = logging.getLogger("preflight.app")
WEB_API_TIMEOUT_S = 10
USERGROUP_CACHE_S = 300


def web_client(services: Services) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After), 5xx and connection errors."""
    token = services.settings.slack_bot_token
    return WebClient(
        token=token.get_secret_value() if token else None,
        base_url=services.settings.preflight_slack_api_url,
        timeout=WEB_API_TIMEOUT_S,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class UsergroupCache:
    """Members of Slack user groups, for decider/admin lists that name a group (S...)."""

    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, group_id: str) -> set[str]:
        with self._lock:
            hit = self._cache.get(group_id)
            if hit and time.monotonic() - hit[0] < USERGROUP_CACHE_S:
                return hit[1]
        try:
            users: set[str] = set(
                self._client.usergroups_users_list(usergroup=group_id).get("users", [])
            )
        except SlackApiError:
            log.warning("cannot read user group %s; treating it as empty", group_id)
            users = set()
        with self._lock:
            self._cache[group_id] = (time.monotonic(), users)
        return users


class WorkPool(ThreadPoolExecutor):
    """A thread pool that knows what is in flight, so shutdown can drain it (and tests can
    wait for it) instead of cutting a status update off half-way."""

    def __init__(self, workers: int, name: str) -> None:
        super().__init__(max_workers=workers, thread_name_prefix=name)
        self._pending: set[Future[Any]] = set()
        self._pending_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def idle(self) -> bool:
        with self._pending_lock:
            return not self._pending

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running (work may submit more work)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._pending_lock:
                pending = list(self._pending)
            if not pending:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            wait(pending, timeout=remaining)


def wait_idle(app: App, timeout: float = 30) -> bool:
    """Wait until the app's listeners and the work they handed off have all finished."""
    deadline = time.monotonic() + timeout
    pools: list[WorkPool] = [app._preflight_listeners, app._preflight_work]  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        if all(p.wait_idle(max(0.0, deadline - time.monotonic())) for p in pools) and all(
            p.idle() for p in pools
        ):
            return True
    return False


def shutdown(app: App, timeout: float = 30) -> None:
    """Drain in-flight work (a half-posted status or runbook step), then stop the pools."""
    wait_idle(app, timeout)
    for pool in (app._preflight_listeners, app._preflight_work):  # type: ignore[attr-defined]
        pool.shutdown(wait=False, cancel_futures=True)


def request_key(body: dict[str, Any]) -> str | None:
    """What identifies one user action across Slack's retries and double clicks."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("type") == "block_actions":
        action = (body.get("actions") or [{}])[0]
        user = (body.get("user") or {}).get("id")
        return f"action:{user}:{action.get('action_ts')}:{action.get('action_id')}"
    if body.get("type") == "view_submission":
        view = body.get("view") or {}
        return f"view:{view.get('id')}:{view.get('hash')}"
    if body.get("command") and body.get("trigger_id"):
        return f"cmd:{body['trigger_id']}"
    return None


def build_app(
    services: Services,
    *,
    client: WebClient | None = None,
    token_verification_enabled: bool = True,
    listener_workers: int | None = None,
    work_workers: int | None = None,
) -> App:
    settings = services.settings
    for name in ("slack_bolt", "slack_sdk"):
        # At DEBUG these log request bodies and headers; never let them, whatever the root level.
        if logging.getLogger(name).getEffectiveLevel() < logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    client = client or web_client(services)
    secret = settings.slack_signing_secret
    listeners = WorkPool(listener_workers or settings.preflight_listener_workers, "bolt-listener")
    app = App(
        client=client,
        signing_secret=secret.get_secret_value() if secret else None,
        token_verification_enabled=token_verification_enabled,
        listener_executor=listeners,
        # Socket Mode has no signature; HTTP mode always verifies (Bolt answers 401 otherwise).
        request_verification_enabled=secret is not None,
    )
    work = WorkPool(work_workers or settings.preflight_checks_workers, "preflight-work")
    usergroups = UsergroupCache(client)
    status_runs = live_status.StatusRuns()

    @app.middleware
    def inject(
        context: BoltContext, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        # Another process (`preflight import`) may have made a new checklist current.
        services.refresh()
        context["services"] = services
        context["work"] = work
        context["usergroups"] = usergroups
        context["status_runs"] = status_runs
        context["correlation_id"] = uuid.uuid4().hex[:10]
        return next()

    @app.middleware
    def dedupe(
        request: BoltRequest, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        """A retried or repeated delivery is acknowledged and otherwise ignored."""
        key = request_key(body)
        if key is not None and not services.store.claim_request("seen:" + key):
            log.info(
                "duplicate delivery %s ignored (retry %s)",
                key,
                request.headers.get("x-slack-retry-num", ["-"])[0],
            )
            return BoltResponse(status=200, body="")
        return next()

    @app.error
    def on_error(error: Exception, body: dict[str, Any], context: BoltContext) -> BoltResponse:
        ref = context.get("correlation_id") or uuid.uuid4().hex[:10]
        log.error(
            "unhandled %s (ref %s)",
            type(error).__name__,
            ref,
            exc_info=(type(error), error, error.__traceback__),
        )
        _tell_user(client, body, m.unexpected_error(ref))
        return BoltResponse(status=200, body="")

    handlers.register(app)
    # For shutdown() and wait_idle(); Bolt's App has no place of its own for them.
    app._preflight_work = work  # type: ignore[attr-defined]
    app._preflight_listeners = listeners  # type: ignore[attr-defined]
    return app


def _tell_user(client: WebClient, body: dict[str, Any], text: str) -> None:
    """Best effort: the error reaches the user privately, or at least the log."""
    try:
        url = body.get("response_url")
        if url:
            from slack_sdk.webhook import WebhookClient

            WebhookClient(url, timeout=WEB_API_TIMEOUT_S).send(text=text, response_type="ephemeral")
            return
        user = body.get("user_id") or (body.get("user") or {}).get("id")
        channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
        if user and channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
    except Exception:
        log.warning("could not deliver the error message", exc_info=True)
