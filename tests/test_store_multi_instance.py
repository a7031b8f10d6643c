"""Two `preflight serve --http` instances on one PostgreSQL database, behind no proxy: each
request goes to the instance the test picks. Real processes, real HTTP, signed requests, a fake
Slack Web API; the store is read back directly afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from store import Store
from tests.support.pg import PgCluster, fresh_store_url
from tests.support.slack_app import SIGNING_SECRET
from tests.support.slack_fake import BOT_TOKEN, FakeSlack
from tests.support.slack_requests import block_actions, post, sign, slash_command

ROOT = Path(__file__).resolve().parents[1]
PREFLIGHT = str(Path(sys.executable).parent / "preflight")
DECISION, OPTION = "email-service", "aws-ses"
ITEMS = [
    "phase-3-status/all-tests-passing",
    "phase-3-status/all-phase-3-endpoints-functional",
    "automated-tests/unit-test-suite-created",
    "automated-tests/integration-test-suite-created",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Instance:
    """One `preflight serve --http` process."""

    def __init__(self, db_url: str, api_url: str, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "PREFLIGHT_SLACK_API_URL": api_url,
            "PREFLIGHT_DB": db_url,
        }
        env.pop("SLACK_APP_TOKEN", None)
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [PREFLIGHT, "serve", "--http", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the instance exited while starting"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("the instance did not start listening")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def instances(
    pg_store_cluster: PgCluster, fake_slack: FakeSlack, tmp_path: Path
) -> Iterator[tuple[str, list[Instance]]]:
    url = fresh_store_url(pg_store_cluster)
    both = [Instance(url, fake_slack.api_url, tmp_path / f"instance-{n}.log") for n in (0, 1)]
    try:
        for instance in both:
            instance.wait_ready()
        yield url, both
    finally:
        for instance in both:
            instance.stop()


def _vote(fake_slack: FakeSlack, user: str) -> str:
    body, _ = block_actions(
        "decide_vote:0",
        f"{DECISION}|{OPTION}",
        user_id=user,
        response_url=fake_slack.response_url(),
    )
    return body


def test_100_concurrent_voters_over_two_instances_make_100_votes(
    instances: tuple[str, list[Instance]], fake_slack: FakeSlack
) -> None:
    url, both = instances
    users = [f"U{n:05d}" for n in range(100)]

    def vote(n: int) -> int:
        body = _vote(fake_slack, users[n])
        status, _, _ = post(both[n % 2].url, body, sign(SIGNING_SECRET, body), timeout=30)
        return status

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(vote, range(100)))
    assert statuses == [200] * 100
    with Store.open(url) as store:
        assert store.votes(DECISION) == dict.fromkeys(users, OPTION)
        assert len(store.vote_history(DECISION)) == 100


def test_a_slack_retry_on_the_other_instance_counts_once(
    instances: tuple[str, list[Instance]], fake_slack: FakeSlack
) -> None:
    url, (first, second) = instances
    body = _vote(fake_slack, "URETRY")
    headers = sign(SIGNING_SECRET, body)
    assert post(first.url, body, headers, timeout=30)[0] == 200
    assert post(second.url, body, headers, retry_num=1, timeout=30)[0] == 200
    assert post(second.url, body, headers, retry_num=2, timeout=30)[0] == 200
    command, _ = slash_command(
        text=f"signoff {ITEMS[0]}", user_id="URETRY", response_url=fake_slack.response_url()
    )
    command_headers = sign(SIGNING_SECRET, command)
    assert post(second.url, command, command_headers, timeout=30)[0] == 200
    assert post(first.url, command, command_headers, retry_num=1, timeout=30)[0] == 200
    with Store.open(url) as store:
        assert [v.user for v in store.vote_history(DECISION)] == ["URETRY"]
        history = store.signoff_history(ITEMS[0])
        assert [(e["user"], e["action"]) for e in history] == [("URETRY", "signoff")]


def test_an_instance_killed_mid_stream_loses_no_acknowledged_write(
    instances: tuple[str, list[Instance]], fake_slack: FakeSlack
) -> None:
    url, both = instances
    acked_signoffs: list[tuple[str, str]] = []
    acked_votes: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(1, 1_000_000))

    def stream(target: Instance) -> None:
        while not stop.is_set():
            with lock:
                n = next(counter)
            user = f"U{n:05d}"
            body, _ = slash_command(
                text=f"signoff {ITEMS[n % 4]}", user_id=user, response_url=fake_slack.response_url()
            )
            try:
                status, text, _ = post(target.url, body, sign(SIGNING_SECRET, body), timeout=10)
                if status == 200 and "Signed off" in text:
                    with lock:
                        acked_signoffs.append((ITEMS[n % 4], user))
                body = _vote(fake_slack, user)
                if post(target.url, body, sign(SIGNING_SECRET, body), timeout=10)[0] == 200:
                    with lock:
                        acked_votes.append(user)
            except Exception:
                return  # this instance is gone

    writers = [threading.Thread(target=stream, args=(both[n % 2],)) for n in range(4)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 120
    while len(acked_signoffs) < 60:
        assert time.monotonic() < deadline and all(i.proc.poll() is None for i in both)
        time.sleep(0.01)
    both[0].proc.send_signal(signal.SIGKILL)
    both[0].proc.wait(10)
    killed_at = len(acked_signoffs)
    while len(acked_signoffs) < killed_at + 20:  # the survivor keeps serving
        assert time.monotonic() < deadline and both[1].proc.poll() is None
        time.sleep(0.01)
    stop.set()
    for w in writers:
        w.join(15)

    with Store.open(url) as store:
        standing = store.signoffs()
        for item, user in acked_signoffs:
            assert user in {s.user for s in standing.get(item, [])}, (item, user)
        votes = store.votes(DECISION)
        assert all(votes.get(user) == OPTION for user in acked_votes)
    assert acked_votes
