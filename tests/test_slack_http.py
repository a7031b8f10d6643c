"""HTTP mode over a real socket: the production WSGI server (waitress) in a thread."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.slack_app import BOT_TOKEN, SIGNING_SECRET, SlackApp
from tests.support.slack_fake import FakeSlack
from tests.support.slack_requests import app_home_opened, post, sign, slash_command


@pytest.fixture
def http_url(slack_http: str) -> str:
    return slack_http


def test_healthz_and_unknown_paths(http_url: str) -> None:
    assert httpx.get(f"{http_url}/healthz").text == "ok\n"
    assert httpx.get(f"{http_url}/nope").status_code == 404


def test_signed_command_over_http_is_answered_and_unsigned_is_401(
    slack: SlackApp, http_url: str
) -> None:
    body, _ = slash_command(
        text="signoff phase-3-status/all-tests-passing", response_url=slack.fake.response_url()
    )
    status, text, _ = post(f"{http_url}/slack/events", body, sign(SIGNING_SECRET, body))
    assert status == 200 and "Signed off" in text
    bad = sign("wrong-secret", body)
    assert post(f"{http_url}/slack/events", body, bad)[0] == 401
    stale = sign(SIGNING_SECRET, body, ts=int(time.time()) - 600)
    assert post(f"{http_url}/slack/events", body, stale)[0] == 401
    assert slack.store.signoff_count() == 1


def test_a_retried_event_over_http_publishes_home_once(slack: SlackApp, http_url: str) -> None:
    body, _ = app_home_opened("U123")
    headers = sign(SIGNING_SECRET, body)
    assert post(f"{http_url}/slack/events", body, headers)[0] == 200
    assert post(f"{http_url}/slack/events", body, headers, retry_num=1)[0] == 200
    assert post(f"{http_url}/slack/events", body, headers, retry_num=2)[0] == 200
    slack.settle()
    assert len(slack.fake.calls_to("views.publish")) == 1


def test_preflight_serve_http_runs_answers_and_stops_on_sigterm(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """The real entry point: `preflight serve --http`, as the Docker image would run it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": "",
        "PREFLIGHT_SLACK_API_URL": fake_slack.api_url,
        "PREFLIGHT_DB": str(tmp_path / "serve.db"),
    }
    exe = Path(sys.executable).with_name("preflight")
    proc = subprocess.Popen(
        [str(exe), "serve", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        body, _ = slash_command(text="gate", response_url=fake_slack.response_url())
        status, text, _ = post(f"{base}/slack/events", body, sign(SIGNING_SECRET, body))
        assert status == 200 and "BLOCKED" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert BOT_TOKEN not in stderr and SIGNING_SECRET not in stderr
    # A clean start warns about nothing: Bolt's "`token` will be unused" (SLACK_BOT_TOKEN is
    # set and the client carries it) used to greet every start.
    assert " WARNING " not in stderr, stderr
