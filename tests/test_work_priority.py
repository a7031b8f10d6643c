"""Work after the ack runs below the acks' CPU priority (bot/app.py, _run_below_acks), and so do
the threads it starts, such as a status run's checks."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from bot.app import build_app, shutdown
from bot.services import Services
from bot.settings import Settings
from tests.support.slack_app import make_settings
from tests.support.slack_fake import FakeSlack

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _work_priorities(tmp_path: Path, fake_slack: FakeSlack, **settings: int) -> tuple[int, int]:
    """The niceness of a work thread and of a thread it starts."""
    services = Services.from_settings(make_settings(tmp_path, fake_slack, **settings), env={})
    app = build_app(services)
    try:

        def work() -> tuple[int, int]:
            seen: list[int] = []
            child = threading.Thread(target=lambda: seen.append(_nice()))
            child.start()
            child.join()
            return _nice(), seen[0]

        return app._preflight_work.submit(work).result(10)  # type: ignore[attr-defined, no-any-return]
    finally:
        shutdown(app)
        services.store.close()


def test_work_threads_and_what_they_start_run_below_the_acks(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    base = _nice()
    default = Settings.model_fields["preflight_work_nice"].default
    assert default == 19
    work, child = _work_priorities(tmp_path, fake_slack, preflight_work_nice=default)
    assert work == child == min(19, base + 19)
    assert _nice() == base  # the request threads (here, this one) keep theirs


def test_zero_keeps_the_work_at_the_acks_priority(tmp_path: Path, fake_slack: FakeSlack) -> None:
    assert _work_priorities(tmp_path, fake_slack, preflight_work_nice=0) == (_nice(), _nice())
