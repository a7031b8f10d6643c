"""The real Preflight Bolt app wired to the fake Slack Web API, for scenario tests.

`slack` gives a `SlackApp`: the app, its services and store, and helpers that send signed
requests in-process (`command`, `action`, `submit`, `home`) or over real HTTP (`http_app`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App, BoltResponse

from bot.app import build_app, shutdown, wait_idle
from bot.services import Services
from bot.settings import Settings
from tests.support.dns_server import LocalDNS
from tests.support.slack_fake import FakeSlack
from tests.support.slack_payloads import scan_for_secrets, validate_blocks, validate_outbound
from tests.support.slack_requests import (
    app_home_opened,
    block_actions,
    bolt_request,
    sign,
    slash_command,
    view_submission,
)

BOT_TOKEN = "xoxb-000000000000-preflight-test-not-real"
SIGNING_SECRET = "preflight-signing-secret-not-real"
DB_PASSWORD = "db-password-not-real-7f3a"
API_TOKEN = "api-token-not-real-91c2"
DECIDER = "UDECIDER1"
ADMIN = "UADMIN01"

# The environment the checks see: secrets to scan for later, and targets that fail fast on
# loopback so a test never waits for (or reaches) anything real.
CHECK_ENV = {
    "DB_HOST": "127.0.0.1",
    "DB_PORT": "9",
    "DB_USER": "preflight",
    "DB_PASSWORD": DB_PASSWORD,
    "DB_NAME": "app",
    "PREFLIGHT_API_URL": "http://127.0.0.1:9",
    "PREFLIGHT_API_TOKEN": API_TOKEN,
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
}
SECRETS = [BOT_TOKEN, SIGNING_SECRET, DB_PASSWORD, API_TOKEN]


@dataclass
class SlackApp:
    app: App
    services: Services
    fake: FakeSlack
    responses: list[dict[str, Any]] = field(default_factory=list)  # every ack body we sent

    @property
    def store(self) -> Any:
        return self.services.store

    def dispatch(self, body: str, *, headers: dict[str, str] | None = None) -> BoltResponse:
        response = self.app.dispatch(bolt_request(body, headers or sign(SIGNING_SECRET, body)))
        if response.body:
            try:
                self.responses.append(json.loads(response.body))
            except ValueError:
                self.responses.append({"text": response.body})
        return response

    def command(
        self,
        text: str,
        command: str = "/preflight",
        user: str = "U123",
        channel: str = "C123",
        **kw: Any,
    ) -> BoltResponse:
        body, _ = slash_command(
            command,
            text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(),
            **kw,
        )
        return self.dispatch(body)

    def reply(self, text: str, command: str = "/preflight", **kw: Any) -> dict[str, Any]:
        """The ack body of a command (the ephemeral answer)."""
        response = self.command(text, command, **kw)
        assert response.status == 200, response.body
        return json.loads(response.body) if response.body else {}

    def action(self, action_id: str, value: str | None = None, **kw: Any) -> BoltResponse:
        kw.setdefault("response_url", self.fake.response_url())
        body, _ = block_actions(action_id, value, **kw)
        return self.dispatch(body)

    def submit(self, callback_id: str, values: dict[str, Any], **kw: Any) -> BoltResponse:
        body, _ = view_submission(callback_id, values, **kw)
        return self.dispatch(body)

    def home(self, user: str = "U123") -> BoltResponse:
        body, _ = app_home_opened(user)
        return self.dispatch(body)

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until the work the app does after its acks has finished."""
        assert wait_idle(self.app, timeout), "background work did not finish"


def make_settings(tmp_path: Path, fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        preflight_slack_api_url=fake.api_url,
        preflight_db=str(tmp_path / "preflight.db"),
        preflight_deciders=[DECIDER],
        preflight_admins=[ADMIN],
        preflight_check_timeout=3.0,
        # The suite shares its machine: background work at the lowest priority would make the
        # tests' waits for it depend on what else runs there. test_work_priority covers it.
        preflight_work_nice=0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def slack(tmp_path: Path, fake_slack: FakeSlack, dns_server: LocalDNS) -> Iterator[SlackApp]:
    # A local DNS server with an empty zone: dns_records and email_dns get fast answers.
    env = {**CHECK_ENV, "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver}
    services = Services.from_settings(make_settings(tmp_path, fake_slack), env=env)
    app = build_app(services)
    harness = SlackApp(app, services, fake_slack)
    try:
        yield harness
        harness.settle()
        # Every payload of every scenario: valid Block Kit within Slack's limits, no secret.
        assert validate_outbound(fake_slack.calls) == []
        for reply in harness.responses:
            if reply.get("blocks"):
                assert validate_blocks(reply["blocks"]) == []
        assert scan_for_secrets(fake_slack.calls, SECRETS) == []
        assert not [s for s in SECRETS if s in json.dumps(harness.responses)]
    finally:
        shutdown(app, timeout=20)
        services.store.close()


@pytest.fixture
def slack_http(slack: SlackApp) -> Iterator[str]:
    """`slack`'s app behind the production HTTP server (waitress, with the request guard) on a
    free loopback port; yields the base URL."""
    from bot.serve import make_http_server

    with serving(make_http_server(slack.app, host="127.0.0.1", port=0, threads=8)) as url:
        yield url


@contextmanager
def serving(server: Any) -> Iterator[str]:
    """Run a waitress server in a thread; yields its base URL, closes it on the way out."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)
