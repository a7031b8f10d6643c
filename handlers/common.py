"""What every listener shares: the parsed invocation and the one way to answer a person."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient

from bot import messages as m
from bot import views
from bot.errors import AmbiguousRef, PreflightError, StoreError
from bot.services import Services

log = logging.getLogger("preflight.handlers")


@dataclass
class Invocation:
    """One slash command, parsed: who, where, the subcommand and the rest of the text."""

    ack: Ack
    respond: Respond
    client: WebClient
    context: BoltContext
    user: str
    channel: str
    sub: str
    args: str
    trigger_id: str
    request_key: str

    @property
    def services(self) -> Services:
        return self.context["services"]

    @property
    def work(self) -> Executor:
        return self.context["work"]

    def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """The ack itself carries the answer: ephemeral, immediate, nothing else to fail."""
        self.ack(response_type="ephemeral", text=text, blocks=blocks or views.plain(text))

    def later(self, fn: Callable[[], None]) -> None:
        """Slow work after the ack, off Bolt's listener pool (see bot/app.py)."""
        self.work.submit(_logged(fn, self.respond, self.context))


def parse(
    ack: Ack,
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    command: dict[str, Any],
    help_text: Callable[[str | None], str],
) -> Invocation | None:
    """Split the command text; answer empty, huge and help input here (returns None then)."""
    text = command.get("text") or ""
    user = command.get("user_id") or ""
    channel = command.get("channel_id") or ""
    if len(text) > m.MAX_COMMAND_TEXT:
        ack(response_type="ephemeral", text=m.too_long(len(text)))
        return None
    words = text.split()
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        ack(response_type="ephemeral", text=help_text(None), blocks=views.plain(help_text(None)))
        return None
    sub = words[0].lower()
    args = text.strip()[len(words[0]) :].strip()
    trigger_id = command.get("trigger_id") or ""
    return Invocation(
        ack,
        respond,
        client,
        context,
        user,
        channel,
        sub,
        args,
        trigger_id,
        request_key=f"cmd:{trigger_id}" if trigger_id else "",
    )


@contextmanager
def answering(inv: Invocation) -> Iterator[None]:
    """Domain errors become a short ephemeral reply; anything else goes to @app.error."""
    try:
        yield
    except AmbiguousRef as exc:
        inv.reply(m.ambiguous(str(exc), exc.candidates))
    except (PreflightError, StoreError) as exc:
        inv.reply(m.escape(str(exc)))


def _logged(fn: Callable[[], None], respond: Respond, context: BoltContext) -> Callable[[], None]:
    """Work after the ack has no Bolt error handler: log it and tell the user with a ref."""

    def run() -> None:
        try:
            fn()
        except Exception:
            ref = context.get("correlation_id", "-")
            log.exception("background work failed (ref %s)", ref)
            try:
                respond(response_type="ephemeral", text=m.unexpected_error(ref))
            except Exception:
                log.warning("could not tell the user about ref %s", ref, exc_info=True)

    return run
