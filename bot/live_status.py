"""The live `/preflight status` message: posted once, then updated as check results arrive.

Runs after the ack, in the work pool. Updates are throttled to one a second (Slack's chat.update
tier allows about that per channel) and the last one always carries the final verdict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import messages as m
from bot import views
from bot.errors import UnknownCheck
from bot.services import Services
from checks.base import Check, Result

log = logging.getLogger("preflight.status")
UPDATE_INTERVAL_S = 1.0


def checks_for_section(services: Services, section: str | None) -> list[Check]:
    """All checks, or those bound to items of the checklist sections matching `section`."""
    from checks import registry

    checks = registry.all_checks()
    if not section:
        return list(checks.values())
    needle = section.lower()
    titles = [t for t in services.checklist.sections if needle in t.lower()]
    if not titles:
        raise UnknownCheck(
            f"No section matches “{section[:80]}”. Sections: "
            + ", ".join(t.title() for t in services.checklist.sections)
        )
    ids = {c for i in services.checklist.items if i.section in titles for c in i.checks}
    return [checks[c] for c in sorted(ids) if c in checks]


def run(
    client: WebClient,
    services: Services,
    channel: str,
    user: str,
    section: str | None,
    checks: list[Check],
    respond: Callable[..., Any],
) -> None:
    before = services.readiness()
    results: list[Result] = []
    try:
        posted = client.chat_postMessage(
            channel=channel,
            text=f"Checking {len(checks)} checks…",
            blocks=views.status_progress(len(checks), results, before),
        )
        ts = posted["ts"]
        channel = posted["channel"]
    except SlackApiError as exc:
        # Not in the channel (or it is a DM we can't post in): answer privately at the end.
        log.info("cannot post status in %s: %s", channel, exc.response.get("error"))
        ts = None

    lock = threading.Lock()
    last = time.monotonic()

    def on_result(result: Result) -> None:
        nonlocal last
        with lock:
            results.append(result)
            if ts is None or time.monotonic() - last < UPDATE_INTERVAL_S:
                return
            last = time.monotonic()
            snapshot = list(results)
        _update(client, channel, ts, f"Checking {len(checks)} checks… {len(snapshot)} done",
                views.status_progress(len(checks), snapshot, before))

    final_results = services.run_checks(checks, on_result=on_result)
    readiness = services.readiness()
    blocks = views.status_final(readiness, final_results, section)
    text = m.headline(readiness)
    if ts is None or not _update(client, channel, ts, text, blocks):
        respond(response_type="ephemeral", text=text, blocks=blocks, replace_original=False)


def _update(client: WebClient, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> bool:
    """chat.update with text and blocks together; False when Slack would not take it."""
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        return True
    except SlackApiError as exc:
        log.warning("chat.update failed: %s", exc.response.get("error"))
        return False
