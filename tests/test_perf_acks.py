"""The ack path's speed-ups keep their promises (issue 11): the caching redactor masks exactly
what the redactor masks, and the request thread wakes as soon as the listener acks."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import pytest

from bot.app import CachingRedactor, RedactingAck
from checks.redact import Redactor
from tests.support.slack_app import SlackApp

SECRET = "canary-Pa55-not-real-0123456789"
ENV = {"DB_PASSWORD": SECRET, "PREFLIGHT_API_URL": "http://127.0.0.1:9"}
TEXTS = [
    f"password is {SECRET}",
    f"url postgres://u:{SECRET}@127.0.0.1/db",
    "AKIAIOSFODNN7EXAMPLE in a log line",
    "nothing to hide here",
    "",
]


@pytest.mark.parametrize("text", TEXTS)
def test_caching_redactor_masks_like_the_redactor(text: str) -> None:
    plain, caching = Redactor.from_env(ENV), CachingRedactor.from_env(ENV)
    assert caching.text(text) == plain.text(text)
    assert caching.text(text) == plain.text(text)  # from the cache this time
    payload = {"text": text, "blocks": [{"type": "section", "text": {"text": text}}]}
    assert caching(payload) == plain(payload)
    assert SECRET not in str(caching(payload))


def test_the_request_thread_wakes_on_ack() -> None:
    ack = RedactingAck(Redactor())

    def listener() -> None:
        time.sleep(0.05)
        ack(text="ok")

    worker = threading.Thread(target=listener)
    started = time.perf_counter()
    worker.start()
    response = ack.response  # Bolt's request thread looks here
    waited = time.perf_counter() - started
    worker.join()
    assert response is not None and response.status == 200
    assert waited >= 0.04


def test_only_the_request_thread_waits() -> None:
    ack = RedactingAck(Redactor(), wait_s=5)
    seen: list[object] = []
    other = threading.Thread(target=lambda: seen.append(ack.response))
    started = time.perf_counter()
    other.start()
    other.join(1)
    assert not other.is_alive() and seen == [None]
    assert time.perf_counter() - started < 1


def test_an_ack_never_called_gives_up_after_the_wait() -> None:
    ack = RedactingAck(Redactor(), wait_s=0.05)
    assert ack.response is None
    ack.response = None  # Bolt may reset it; nothing is woken by that
    assert ack.response is None


def test_a_slash_command_runs_in_the_request_thread_and_other_requests_in_the_pool(
    slack: SlackApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slash-command listeners ack and hand slow work off, so they run where the request
    arrived; App Home (whose listener calls views.publish) keeps Bolt's listener pool."""
    from handlers import home
    from handlers import preflight as preflight_handler

    seen: dict[str, str] = {}

    def probe(inv: Any) -> None:
        seen["command"] = threading.current_thread().name
        inv.reply("probed")

    real_home_view = home.home_view

    def home_view(*args: Any, **kwargs: Any) -> Any:
        seen["home"] = threading.current_thread().name
        return real_home_view(*args, **kwargs)

    monkeypatch.setitem(preflight_handler.SUBCOMMANDS, "probe", probe)
    monkeypatch.setattr(home, "home_view", home_view)
    assert slack.reply("probe")["text"] == "probed"
    slack.home()
    slack.settle()
    assert seen["command"] == threading.current_thread().name
    assert seen["home"].startswith("bolt-listener")
    assert slack.fake.calls_to("views.publish")


def _commits_during(slack: SlackApp, fn: Any) -> int:
    """How many write transactions the store's writer connection commits while fn runs."""
    seen: list[str] = []
    conn = slack.store.db.conn
    conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    return sum(1 for s in seen if s.strip().upper() == "COMMIT")


def test_a_vote_its_audit_entry_and_its_dedupe_claim_commit_once(
    slack: SlackApp, caplog: pytest.LogCaptureFixture
) -> None:
    def vote() -> None:
        response = slack.command("email SES", command="/decide", user="UVOTER", trigger_id="T.v1")
        assert "Your vote" in json.loads(response.body)["text"]

    assert _commits_during(slack, vote) == 1
    assert slack.store.votes("email-service") == {"UVOTER": "aws-ses"}
    assert [e.action for e in slack.store.audit_log()][:1] == ["vote"]
    # The same request again (a retry, a replay): nothing applied, nothing said.
    with caplog.at_level(logging.INFO, logger="preflight.app"):
        again = slack.command("email sendgrid", command="/decide", user="UVOTER", trigger_id="T.v1")
    assert again.status == 200 and again.body == ""
    assert slack.store.votes("email-service") == {"UVOTER": "aws-ses"}
    assert [e.action for e in slack.store.audit_log()].count("vote") == 1
    assert "duplicate delivery cmd:T.v1 ignored" in caplog.text


@pytest.mark.parametrize("text", ["item no-such-item", "help", "email postmark"])
def test_a_command_that_writes_nothing_is_claimed_when_it_answers(
    slack: SlackApp, text: str
) -> None:
    command = "/decide" if text.startswith("email") else "/preflight"
    first = slack.command(text, command=command, trigger_id="T.r1")
    assert first.status == 200 and json.loads(first.body)["text"]  # answered (maybe an error)
    again = slack.command(text, command=command, trigger_id="T.r1")
    assert again.status == 200 and again.body == ""  # the replay is silent
    assert slack.store.claim_request("seen:cmd:T.r1") is False


def test_a_listener_running_inline_never_waits_for_its_own_ack() -> None:
    """The error path of an inline listener reads ack.response in its own thread: nobody else
    will ack, so it must not wait (it waited Bolt's 3 s before a duplicate got its answer)."""
    from bot import app as app_module

    seen: list[object] = []

    def listener() -> None:
        ack = RedactingAck(Redactor(), wait_s=3600)  # made and read on this very thread
        seen.append(ack.response)

    def request_thread() -> None:
        app_module.ListenerPool(1, "t").submit(listener)

    app_module._inline.active = False
    worker = threading.Thread(
        target=lambda: (setattr(app_module._inline, "active", True), request_thread()),
        daemon=True,  # a regression would leave it waiting an hour: never hold the run up
    )
    worker.start()
    worker.join(5)
    assert not worker.is_alive() and seen == [None]


def test_the_first_status_imports_nothing_in_its_ack(tmp_path: Any) -> None:
    """The app discovers the checks when it is built: the first `/preflight status` after a
    start on an existing store imported every check's libraries (boto3, psycopg, dnspython…)
    inside its ack, 0.32-0.38 s. A fresh interpreter, since this one has them all already."""
    import subprocess
    import sys
    from pathlib import Path

    from bot.services import Services
    from bot.settings import Settings

    db = str(tmp_path / "s.db")
    Services.from_settings(Settings(preflight_db=db), env={}).store.close()  # imported once
    script = f"""
import os, sys
from slack_sdk import WebClient
from bot.app import build_app, shutdown
from bot.services import Services
from bot.settings import Settings
from checks import registry
from tests.support.slack_fake import FakeSlack
from tests.support.slack_requests import bolt_request, sign, slash_command
fake = FakeSlack().start()
services = Services.from_settings(
    Settings(preflight_db={db!r}, slack_signing_secret="s-not-real"), env={{}}
)
assert registry._discovered is None, "opening the store discovered the checks already"
app = build_app(services, client=WebClient(token="xoxb-not-real", base_url=fake.api_url),
                token_verification_enabled=False)
before = set(sys.modules)
body, _ = slash_command("/preflight", "status", response_url=fake.response_url())
response = app.dispatch(bolt_request(body, sign("s-not-real", body)))
assert response.status == 200 and "Checking" in response.body, response.body
print(sorted(m for m in set(sys.modules) - before
             if m.split(".")[0] in ("checks", "boto3", "botocore", "psycopg", "dns", "httpx")))
shutdown(app, timeout=20)
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
