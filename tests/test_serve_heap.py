"""Serving starts with the startup heap frozen (bot/serve.py, freeze_startup_heap): full
collections no longer walk the modules and the app, and no garbage is kept for good. Each run
in a child process: freezing is for the life of a process, and the suite's own must not be."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot import serve
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


# A process that has built the app, as `preflight serve` has when it starts serving.
APP = """
from pydantic import SecretStr
from bot.app import build_app
from bot.serve import freeze_startup_heap
from bot.services import Services
from bot.settings import Settings

settings = Settings(
    slack_bot_token=SecretStr("xoxb-test-not-real"),
    slack_signing_secret=SecretStr("test-signing-secret-not-real"),
    preflight_slack_api_url="http://127.0.0.1:9",  # never called
    preflight_db=":memory:",
)
app = build_app(Services.from_settings(settings, env={}), token_verification_enabled=False)
"""


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", APP + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_heap_is_frozen_and_garbage_from_before_is_not() -> None:
    out = _run(
        """
        import gc, weakref

        class Node:
            pass

        cycle = Node(); cycle.me = cycle  # garbage only a collection can free
        gone = weakref.ref(cycle)
        del cycle
        gc.disable()  # nothing but freeze_startup_heap may collect it
        frozen = freeze_startup_heap()
        print(frozen, gone() is None, gc.get_freeze_count() == frozen)
        """
    )
    frozen, garbage_freed, counted = out.split()
    assert int(frozen) > 20_000  # the modules and the app, not a handful
    assert garbage_freed == "True"
    assert counted == "True"


def test_a_full_collection_then_walks_only_what_came_after() -> None:
    out = _run(
        """
        import gc
        gc.collect()
        before = len(gc.get_objects(generation=2))
        freeze_startup_heap()
        after = len(gc.get_objects(generation=2))
        print(before, after)
        """
    )
    before, after = map(int, out.split())
    assert after < before // 20


@pytest.mark.parametrize("http", [True, False])
def test_both_modes_freeze_before_they_serve(monkeypatch: pytest.MonkeyPatch, http: bool) -> None:
    calls: list[str] = []

    class Server:
        def run(self) -> None:
            calls.append("serve")

        start = run

    def freeze() -> int:
        calls.append("freeze")
        return 0

    monkeypatch.setattr(serve, "freeze_startup_heap", freeze)
    monkeypatch.setattr(serve, "make_http_server", lambda *a, **k: Server())
    monkeypatch.setattr(serve, "socket_mode_handler", lambda *a, **k: Server())
    settings = Settings(
        slack_signing_secret=SecretStr("test-signing-secret-not-real"),  # pragma: allowlist secret
        slack_app_token=SecretStr("xapp-test-not-real"),
    )
    serve._serve(object(), settings, http=http, port=0)  # type: ignore[arg-type]
    assert calls == ["freeze", "serve"]
