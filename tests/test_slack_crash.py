"""A crash never loses an acknowledged sign-off or vote: the bot runs in its own process over
real HTTP, acks a stream of sign-offs and votes, and is killed with SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from store import Store
from tests.support.slack_app import SIGNING_SECRET
from tests.support.slack_fake import FakeSlack
from tests.support.slack_requests import block_actions, post, sign, slash_command

ROOT = Path(__file__).resolve().parents[1]

SERVER = """
import sys
from pydantic import SecretStr
from bot.app import build_app
from bot.serve import make_http_server
from bot.services import Services
from bot.settings import Settings
api_url, db, secret = sys.argv[1:4]
settings = Settings(slack_bot_token=SecretStr("xoxb-crash-test-not-real"),
                    slack_signing_secret=SecretStr(secret), preflight_slack_api_url=api_url,
                    preflight_db=db)
app = build_app(Services.from_settings(settings, env={}))
server = make_http_server(app, host="127.0.0.1", port=0, threads=8)
print(server.effective_port, flush=True)
server.run()
"""


def test_acknowledged_signoffs_and_votes_survive_sigkill(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, fake_slack.api_url, str(db), SIGNING_SECRET],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    url = f"http://127.0.0.1:{proc.stdout.readline().strip()}/slack/events"
    items = [
        "phase-3-status/all-tests-passing",
        "phase-3-status/all-phase-3-endpoints-functional",
        "automated-tests/unit-test-suite-created",
        "automated-tests/integration-test-suite-created",
    ]
    acked_signoffs: list[tuple[str, str]] = []
    acked_votes: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            user = f"U{n:05d}"
            body, _ = slash_command(
                text=f"signoff {items[n % 4]}", user_id=user, response_url=fake_slack.response_url()
            )
            try:
                status, text, _ = post(url, body, sign(SIGNING_SECRET, body), timeout=5)
            except Exception:
                return  # the server is gone
            if status == 200 and "Signed off" in text:
                acked_signoffs.append((items[n % 4], user))
            body, _ = block_actions(
                "decide_vote:0",
                "email-service|aws-ses",
                user_id=user,
                response_url=fake_slack.response_url(),
            )
            try:
                status, _, _ = post(url, body, sign(SIGNING_SECRET, body), timeout=5)
            except Exception:
                return
            if status == 200:
                acked_votes.append(user)

    writers = [threading.Thread(target=stream) for _ in range(4)]
    for w in writers:
        w.start()
    while len(acked_signoffs) < 60:
        assert proc.poll() is None
        threading.Event().wait(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stop.set()
    for w in writers:
        w.join(10)

    with Store.open(db) as store:
        standing = store.signoffs()
        for item, user in acked_signoffs:
            assert user in {s.user for s in standing.get(item, [])}, (item, user)
        votes = store.votes("email-service")
        assert all(votes.get(user) == "aws-ses" for user in acked_votes)
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(acked_signoffs) >= 60 and acked_votes
