"""Builds the one Bolt `App` that both Socket Mode and HTTP mode serve.

Two thread pools, on purpose: Bolt's listener pool only parses, acks and answers quick
commands; slow work (running checks, uploads, digests) goes to a separate bounded work pool.
With Bolt's default single pool of 5, five slow `/preflight status` runs would hold every thread
and the sixth request would miss Slack's 3-second ack deadline.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_bolt.middleware.request_verification import RequestVerification
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
from bot.lanes import AckLanes
from bot.people import People
from bot.services import Services
from bot.settings import SLACK_API_TIMEOUT_S
from checks import registry
from checks.redact import Redactor
from store import DuplicateRequest

log = logging.getLogger("preflight.app")
USERGROUP_CACHE_S = 300
# Longest a request thread waits for its listener's ack in one look; Bolt gives up after its
# ack timeout (3 s) and answers for itself.
ACK_WAIT_S = 3.0
SWITCH_INTERVAL_S = 0.001  # see _shorten_gil_switch


class RedactingWebClient(WebClient):
    """Every payload to Slack passes the redactor once more, whoever built it: a secret that
    slipped into a view or a message is masked here rather than posted."""

    def __init__(self, *args: Any, redactor: Redactor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redactor = redactor

    def api_call(
        self,
        api_method: str,
        *,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        return super().api_call(
            api_method,
            data=self._payload(data),
            params=self._payload(params),
            json=self._payload(json),
            **kwargs,
        )

    def _payload(self, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        if not payload:
            return payload
        redacted: dict[str, Any] = self.redactor(payload)
        if "token" in payload:  # the credential of the call itself (apps.connections.open)
            redacted["token"] = payload["token"]
        return redacted

    def files_upload_v2(self, **kwargs: Any) -> Any:
        # The file's bytes go to an upload URL outside api_call: redact them here.
        for key in ("content", "title", "initial_comment"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = self.redactor.text(kwargs[key])
        return super().files_upload_v2(**kwargs)


class RedactingRespond:
    """Bolt's respond() (posts to the request's response_url), redacted like the client."""

    def __init__(self, respond: Callable[..., Any], redactor: Redactor) -> None:
        self._respond = respond
        self._redact = redactor

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._respond(*self._redact(list(args)), **self._redact(kwargs))


# A slash command's listener runs in its request thread: `active` from the middleware until
# ListenerPool takes it, `running` while the listener runs (see ListenerPool).
_inline = threading.local()


class RedactingAck(Ack):
    """Bolt's ack(), whose body (the ephemeral answer of a command) is redacted first.

    It also wakes the request thread the moment it is called. Bolt's HTTP path runs the
    listener on the listener pool and polls `ack.response` every 10 ms from the request
    thread, so every ack that was not ready at the first look came back up to 10 ms late;
    here that look waits on an event instead (only on the thread that made this ack, the
    request thread, and never longer than Bolt's own ack timeout).
    """

    def __init__(
        self,
        redactor: Redactor,
        wait_s: float = ACK_WAIT_S,
        settle: Callable[[], bool] | None = None,
        step_aside: Callable[[], None] | None = None,
    ) -> None:
        self._acked = threading.Event()
        self._owner = threading.get_ident()
        self._wait_s = wait_s
        super().__init__()
        self._redact = redactor
        self._settle = settle  # the request's deferred dedupe claim, claimed before answering
        self._step_aside = step_aside  # gives up the request's ack lane while it waits

    @property
    def response(self) -> BoltResponse | None:
        found = self._response
        if (
            found is None
            and threading.get_ident() == self._owner
            and self._wait_s > 0
            # A listener running inline in this very thread has nobody else to ack for it.
            and not getattr(_inline, "running", False)
        ):
            if self._step_aside is not None and not self._acked.is_set():
                self._step_aside()  # waiting on the pool is not CPU work: let the next go
            self._acked.wait(self._wait_s)
            found = self._response
        return found

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        self._response = value
        if value is not None:
            self._acked.set()

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        if self._settle is not None and not self._settle():
            raise DuplicateRequest("request already claimed")  # answered with silence
        return super().__call__(*self._redact(list(args)), **self._redact(kwargs))


class CachingRedactor(Redactor):
    """The redactor, remembering its last answers: a command's answer repeats the same strings
    (an item's text, a section title, button labels) request after request, and masking is a
    pure function of the string, so a repeat costs a dict look-up instead of a regex scan.
    The cache lives in this process's memory, which holds the secrets themselves anyway."""

    def __init__(self, secrets: Any = None, size: int = 4096) -> None:
        super().__init__(secrets)
        self._masked = functools.lru_cache(maxsize=size)(super().text)

    def text(self, value: str) -> str:
        return self._masked(value)


def web_client(services: Services) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After), 5xx and connection errors, and
    redacts everything it sends."""
    token = services.settings.slack_bot_token
    return RedactingWebClient(
        redactor=CachingRedactor.from_env(services.env),
        token=token.get_secret_value() if token else None,
        base_url=services.settings.preflight_slack_api_url,
        timeout=SLACK_API_TIMEOUT_S,
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
    wait for it) instead of cutting a status update off half-way. Its threads run `nice`
    steps below the request threads (see _run_below_acks)."""

    def __init__(self, workers: int, name: str, nice: int = 0) -> None:
        super().__init__(
            max_workers=workers,
            thread_name_prefix=name,
            initializer=_run_below_acks,
            initargs=(nice,),
        )
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


class ListenerPool(WorkPool):
    """Bolt's listener executor. A slash command's listener runs in the request's own thread:
    it acks and hands anything slow to the work pool (Invocation.later), so a hop to another
    thread bought nothing but two wake-ups and GIL hand-offs per request, which under load cost
    more than the command itself (perf, issue 11: /preflight item at c=50 went from 0.5-0.75
    to 0.9 of a bare Bolt app's throughput). Actions, views and events keep the pool: some of
    their listeners call Slack after acking, and their ack must not wait for that."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if not getattr(_inline, "active", False):
            return super().submit(fn, *args, **kwargs)
        _inline.active = False  # one listener per request
        future: Future[Any] = Future()
        _inline.running = True
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # as a pool thread would: the caller reads the future
            future.set_exception(exc)
        finally:
            _inline.running = False
        return future


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


VERIFIED = "preflight_verified"


class QuietRequestVerification(RequestVerification):
    """Bolt's signature check, minus two flaws: it logged every refused body at INFO, and a
    timestamp that is not a number raised, sending the unverified body to the error handler.
    It also marks the context verified, the only thing the error handler trusts a body on."""

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        if req.mode == "socket_mode":  # the app token authenticated the WebSocket itself
            req.context[VERIFIED] = True
            return next()
        timestamp = req.headers.get("x-slack-request-timestamp", [""])[0]
        signature = req.headers.get("x-slack-signature", [""])[0]
        ok = (
            timestamp.isascii()
            and timestamp.isdigit()
            and len(timestamp) <= 12
            and self.verifier.is_valid(req.raw_body, timestamp, signature)
        )
        if not ok:
            log.warning("refused a request with a missing, stale or wrong signature")
            return BoltResponse(status=401, body={"error": "invalid request"})
        req.context[VERIFIED] = True
        return next()


def _quiet_token_from_client(record: logging.LogRecord) -> bool:
    """Drops Bolt's "As you gave `client` as well, `token` will be unused." It is logged at
    WARNING whenever SLACK_BOT_TOKEN is set, which is how Preflight is configured, and the
    client Preflight gives Bolt carries that very token: a warning at every start that only
    teaches people to ignore warnings."""
    return "`token` will be unused" not in record.getMessage()


def _swap_verification(app: App, secret: str) -> None:
    """Put QuietRequestVerification where Bolt put its own, so it still runs first."""
    middleware = app._middleware_list  # Bolt has no public way to replace a built-in
    for i, mw in enumerate(middleware):
        if type(mw) is RequestVerification:
            middleware[i] = QuietRequestVerification(secret)


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


def _run_below_acks(nice: int) -> None:
    """Lower this thread's CPU priority by `nice` (Linux keeps one per thread; the threads it
    starts, such as a status run's checks, inherit it). Work after the ack then takes the CPU
    when the request threads leave it: a status run's checks, its readiness and forty channel
    posts took 80 ms of CPU at once, and every ack in flight waited on them. `/preflight
    status`, twelve closed-loop runs of 1,000 requests at each level (both stores, two bench
    runs each way): median p99 12.5 ms at the same priority, 9.4 ms at 19 steps below at
    c=10; 44 and 34 ms at c=50."""
    if nice <= 0 or sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:  # a sandbox that forbids it: the work still runs, at full priority
        log.debug("cannot lower the work threads' priority: %s", exc)


def _shorten_gil_switch() -> None:
    """Acks are latency-bound: every store call releases the GIL, and getting it back from a
    busy thread waits out the switch interval (5 ms by default). A listener does a few
    store calls before it acks, so at the default its ack queued behind busy threads
    (one A/B run of `/preflight item` at c=10: 0.73 → 0.88 of a bare Bolt app's throughput;
    later runs were within the machine's noise)."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)


class _Prepare(Middleware):
    """Every request: put the services and redacting Slack helpers into the context, then
    drop a retried or repeated delivery (acknowledged and otherwise ignored).

    One class-based middleware rather than two decorated functions: Bolt inspects a function
    middleware's signature to build its arguments on every request, which cost more than
    what the middleware does (perf, issue 11)."""

    def __init__(
        self,
        services: Services,
        client: WebClient,
        redactor: Redactor,
        unsigned: bool,
        work: WorkPool,
        usergroups: UsergroupCache,
        status_runs: live_status.StatusRuns,
        people: Callable[[str], str],
        lanes: AckLanes,
    ) -> None:
        self.services = services
        self.people = people
        self.lanes = lanes
        self.client = client
        self.redactor = redactor
        self.unsigned = unsigned
        self.work = work
        self.usergroups = usergroups
        self.status_runs = status_runs

    def process(
        self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        context, services = req.context, self.services
        store = services.store
        # Whatever this thread's last request left: see ListenerPool and defer_request_claim.
        _inline.active = False
        store.defer_request_claim(None)
        # Another process (`preflight import`) may have made a new checklist current.
        services.refresh()
        if context.respond is not None:
            context["respond"] = RedactingRespond(context.respond, self.redactor)
        command, key = bool(req.body.get("command")), request_key(req.body)
        # The ack's own body (an ephemeral answer) is a payload to Slack too. A slash command's
        # dedupe claim rides in its first write, or is made when it acks (see
        # StoreBase.defer_request_claim); anything else is claimed below, before its listener.
        context["ack"] = RedactingAck(
            self.redactor,
            settle=store.settle_request_claim if command and key else None,
            step_aside=self.lanes.step_aside,
        )
        # Bolt hands listeners a fresh plain WebClient per request; ours redacts. It is shared
        # across threads safely because nothing changes its token after start.
        context["client"] = self.client
        context["services"] = services
        context["work"] = self.work
        context["usergroups"] = self.usergroups
        context["status_runs"] = self.status_runs
        context["names"] = self.people  # user id -> display name (users.info, cached)
        context["correlation_id"] = uuid.uuid4().hex[:10]
        if self.unsigned:
            # No signing secret: only Socket Mode (authenticated by the app token) or an
            # in-process dispatch by the tests reaches here.
            context[VERIFIED] = True
        # A retried or repeated delivery is acknowledged and otherwise ignored.
        if key is not None and command:
            store.defer_request_claim("seen:" + key)
        elif key is not None and not store.claim_request("seen:" + key):
            log.info(
                "duplicate delivery %s ignored (retry %s)",
                key,
                req.headers.get("x-slack-retry-num", ["-"])[0],
            )
            return BoltResponse(status=200, body="")
        # Bolt runs the listener after the whole middleware chain, in this thread: the flag
        # stays up until ListenerPool takes it (once), so no later submit can see it.
        _inline.active = command
        return next()


def build_app(
    services: Services,
    *,
    client: WebClient | None = None,
    token_verification_enabled: bool = True,
    listener_workers: int | None = None,
    work_workers: int | None = None,
) -> App:
    settings = services.settings
    _shorten_gil_switch()
    # Discovering the checks imports their libraries (boto3 alone takes 0.15 s): pay it now,
    # not in the ack of the first `/preflight status`, which took 0.32-0.38 s for it.
    registry.all_checks()
    # Serving commits on every request: keep SQLite's WAL checkpoints off the request path.
    services.store.checkpoint_in_background()
    for name in ("slack_bolt", "slack_sdk"):
        # At DEBUG these log request bodies and headers; never let them, whatever the root level.
        if logging.getLogger(name).getEffectiveLevel() < logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    client = client or web_client(services)
    secret = settings.slack_signing_secret
    listeners = ListenerPool(
        listener_workers or settings.preflight_listener_workers, "bolt-listener"
    )
    logging.getLogger("slack_bolt.App").addFilter(_quiet_token_from_client)  # once: same object
    app = App(
        client=client,
        signing_secret=secret.get_secret_value() if secret else None,
        token_verification_enabled=token_verification_enabled,
        listener_executor=listeners,
        # Socket Mode has no signature; HTTP mode always verifies (Bolt answers 401 otherwise).
        request_verification_enabled=secret is not None,
    )
    if secret is not None:
        _swap_verification(app, secret.get_secret_value())
    work = WorkPool(
        work_workers or settings.preflight_work_workers,
        "preflight-work",
        nice=settings.preflight_work_nice,
    )
    usergroups = UsergroupCache(client)
    people = People(client)
    status_runs = live_status.StatusRuns()

    redactor = CachingRedactor.from_env(services.env)
    # Two turns on SQLite: one left the CPU idle while its holder waited on a commit's write
    # (c=50: 0.75 of the throughput without lanes; two: 0.9, with the same short tail). Four on
    # PostgreSQL, where a request also waits on round trips: `/decide` at c=10 made 295-327
    # req/s with one turn, 485-570 with two, four or eight (see bot/lanes.py).
    lanes = AckLanes(2 if services.store.backend == "sqlite" else 4)

    app.middleware(
        _Prepare(
            services, client, redactor, secret is None, work, usergroups, status_runs, people, lanes
        )
    )

    @app.error
    def on_error(error: Exception, body: dict[str, Any], context: BoltContext) -> BoltResponse:
        ref = context.get("correlation_id") or uuid.uuid4().hex[:10]
        if not context.get(VERIFIED):
            # Never act on a body nobody vouched for: no response_url, no postEphemeral.
            log.warning("refused an unverified request (%s)", type(error).__name__)
            return BoltResponse(status=401, body={"error": "invalid request"})
        if isinstance(error, DuplicateRequest):  # a slash command's retry, found at its write
            log.info("duplicate delivery %s ignored", request_key(body))
            return BoltResponse(status=200, body="")
        lanes.step_aside()  # telling the user is a call to Slack, not CPU work
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
    app._preflight_lanes = lanes  # type: ignore[attr-defined]  # taken by bot.serve.wsgi_app
    return app


def _tell_user(client: WebClient, body: dict[str, Any], text: str) -> None:
    """Best effort: the error reaches the user privately, or at least the log."""
    try:
        url = body.get("response_url")
        if url:
            from slack_sdk.webhook import WebhookClient

            WebhookClient(url, timeout=SLACK_API_TIMEOUT_S).send(
                text=text, response_type="ephemeral"
            )
            return
        user = body.get("user_id") or (body.get("user") or {}).get("id")
        channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
        if user and channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
    except Exception:
        log.warning("could not deliver the error message", exc_info=True)
