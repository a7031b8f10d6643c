"""HTTP mode probed as an attacker would, over real HTTP against `preflight serve`'s server.

Every refused request must leave no trace: no Web API call, no response_url call, nothing in the
store, nothing of its body in any log line, and /healthz keeps answering.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.http_guard import MAX_BODY_BYTES
from tests.support.slack_app import SIGNING_SECRET, SlackApp
from tests.support.slack_requests import FORM, JSON, block_actions, post, sign, slash_command

MARKER = "BODY-MARKER-9f3c"  # appears in every hostile body: must never reach a log
TABLES = (
    "signoff_events",
    "vote_events",
    "decision_events",
    "runbook_runs",
    "audit_log",
    "processed_requests",
    "assignment_events",
)


@pytest.fixture
def url(slack: SlackApp, slack_http: str) -> str:
    slack.fake.clear()  # the app's own start-up call (auth.test) is not a request's doing
    return f"{slack_http}/slack/events"


def _counts(slack: SlackApp) -> dict[str, int]:
    db = slack.store.db
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _command(slack: SlackApp, text: str = "signoff phase-3-status/all-tests-passing") -> str:
    body, _ = slash_command(text=f"{text} {MARKER}", response_url=slack.fake.response_url())
    return body


def _assert_no_trace(slack: SlackApp, before: dict[str, int], caplog: Any) -> None:
    time.sleep(0.2)  # anything the request set off in the background would have started
    slack.settle()
    assert slack.fake.calls == [], [c.method for c in slack.fake.calls]
    assert _counts(slack) == before
    assert not [r for r in caplog.records if MARKER in r.getMessage()]


def _headers(body: str, **overrides: str) -> dict[str, str]:
    headers = sign(SIGNING_SECRET, body)
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("no signature headers", {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""}),
        ("timestamp not a number", {"X-Slack-Request-Timestamp": "abc"}),
        ("empty timestamp", {"X-Slack-Request-Timestamp": ""}),
        ("negative timestamp", {"X-Slack-Request-Timestamp": "-1"}),
        ("huge timestamp", {"X-Slack-Request-Timestamp": "9" * 400}),
        ("stale timestamp", {"X-Slack-Request-Timestamp": str(int(time.time()) - 301)}),
        ("future timestamp", {"X-Slack-Request-Timestamp": str(int(time.time()) + 600)}),
        ("wrong signature", {"X-Slack-Signature": "v0=" + "0" * 64}),
        ("signature without v0", {"X-Slack-Signature": "0" * 67}),
        ("signature of another secret", {}),
    ],
)
def test_unverified_requests_get_401_and_leave_no_trace(
    slack: SlackApp, url: str, caplog: Any, case: str, change: dict[str, str]
) -> None:
    caplog.set_level(logging.DEBUG)
    body = _command(slack)
    headers = _headers(body, **change) if change else sign("another-secret", body)
    before = _counts(slack)
    status, text, _ = post(url, body, headers)
    assert status == 401, (case, text)
    assert MARKER not in text
    _assert_no_trace(slack, before, caplog)


def test_a_malformed_timestamp_cannot_make_the_bot_call_a_response_url_or_slack(
    slack: SlackApp, url: str, caplog: Any
) -> None:
    """The reported forgery: the error handler used the unverified body's response_url and
    channel. Here the body names both, and a wrong-signature interaction payload too."""
    caplog.set_level(logging.DEBUG)
    before = _counts(slack)
    for body in (
        _command(slack),
        block_actions("rerun_checks", response_url=slack.fake.response_url())[0],
    ):
        headers = _headers(body, **{"X-Slack-Request-Timestamp": "abc"})
        assert post(url, body, headers)[0] == 401
    _assert_no_trace(slack, before, caplog)


def test_a_verified_request_still_works_and_a_replay_applies_once(
    slack: SlackApp, url: str
) -> None:
    body, _ = slash_command(
        text="signoff phase-3-status/all-tests-passing", response_url=slack.fake.response_url()
    )
    headers = sign(SIGNING_SECRET, body)
    first = post(url, body, headers)
    replay = post(url, body, headers)
    assert first[0] == 200 and "Signed off" in first[1]
    assert replay[0] == 200
    assert slack.store.signoff_count() == 1


def test_oversized_bodies_get_413_declared_or_chunked(
    slack: SlackApp, url: str, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    before = _counts(slack)
    big = MARKER + "x" * (MAX_BODY_BYTES + 10)
    # Declared length over the cap (even correctly signed): refused unread.
    assert post(url, big, sign(SIGNING_SECRET, big))[0] == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield (MARKER + "y" * 100_000).encode()

    response = httpx.post(url, content=chunks(), headers=sign(SIGNING_SECRET, "x"), timeout=30)
    assert response.status_code == 413
    _assert_no_trace(slack, before, caplog)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("[1, 2, 3]", JSON),
        ("{not json", JSON),
        ("payload=%7Bnot-json", FORM),
        ("payload=%5B1%5D", FORM),
        ("hello=world", FORM),
        ("\udcff", FORM),
    ],
)
def test_malformed_signed_bodies_get_400_not_500(
    slack: SlackApp, url: str, caplog: Any, body: str, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    before = _counts(slack)
    raw = body.encode("utf-8", "surrogateescape")
    headers = sign(SIGNING_SECRET, raw.decode("latin-1"), content_type=content_type)
    # Sign the exact bytes sent: the signature covers bytes, not a decoded string.
    import hashlib
    import hmac

    ts = headers["X-Slack-Request-Timestamp"]
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256)
    headers["X-Slack-Signature"] = "v0=" + digest.hexdigest()
    response = httpx.post(url, content=raw, headers=headers, timeout=10)
    assert response.status_code == 400, response.text
    _assert_no_trace(slack, before, caplog)
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_only_post_reaches_the_events_path(slack: SlackApp, url: str) -> None:
    assert httpx.get(url).status_code == 405
    assert httpx.put(url, content=b"x").status_code == 405


def test_healthz_and_signed_acks_answer_while_hostile_requests_arrive(
    slack: SlackApp, url: str, caplog: Any
) -> None:
    """Unsigned bodies built to make a backtracking regex explode, sent concurrently: nobody
    parses or logs them, so health checks and signed commands keep being answered."""
    caplog.set_level(logging.DEBUG)
    hostile = [
        "a://" + ":" * 900_000 + MARKER,
        "password=" * 100_000 + MARKER,
        "Bearer " + "A" * 900_000 + MARKER,
    ]
    errors: list[str] = []

    def attack(body: str) -> None:
        for _ in range(3):
            status = post(url, body, {"Content-Type": FORM}, timeout=30)[0]
            if status != 401:
                errors.append(f"unsigned answered {status}")

    attackers = [threading.Thread(target=attack, args=(b,)) for b in hostile]
    for t in attackers:
        t.start()
    health = url.replace("/slack/events", "/healthz")
    answered = []
    for i in range(5):
        assert httpx.get(health, timeout=30).text == "ok\n"
        body, _ = slash_command(text="help", response_url=slack.fake.response_url())
        status, text, _ = post(url, body, sign(SIGNING_SECRET, body), timeout=30)
        answered.append(status)
        assert "/preflight" in text, i
    for t in attackers:
        t.join(timeout=60)
    assert answered == [200] * 5
    assert errors == []
    assert not [r for r in caplog.records if MARKER in r.getMessage()]


def test_the_refusal_log_line_names_the_reason_and_never_the_body(
    slack: SlackApp, url: str, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    body = _command(slack)
    post(url, body, _headers(body, **{"X-Slack-Request-Timestamp": "abc"}))
    refusals = [r.getMessage() for r in caplog.records if r.name == "preflight.http"]
    assert len(refusals) == 1
    assert "malformed timestamp" in refusals[0]
    assert MARKER not in json.dumps(refusals)
