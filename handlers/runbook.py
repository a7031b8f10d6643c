"""/runbook: walk the on-call engineer through a runbook, one step at a time, on the record."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import messages as m
from bot import views
from bot.errors import RunAlreadyActive
from bot.model import Runbook
from bot.people import same
from bot.runbooks import current_step, timeline_markdown
from bot.services import RunbookRun, Services, next_step
from bot.settings import SLACK_API_TIMEOUT_S
from checks.base import utcnow
from handlers.common import Invocation, answering, parse

log = logging.getLogger("preflight.runbook")


def command(
    ack: Ack, respond: Respond, client: WebClient, context: BoltContext, command: dict[str, Any]
) -> None:
    if not (command.get("text") or "").strip():
        # The on-call engineer's first question: which runbooks are there?
        services = context["services"]
        text, blocks = runbook_list(services.checklist.runbooks)
        ack(response_type="ephemeral", text=text, blocks=blocks)
        return
    inv = parse(ack, respond, client, context, command, m.help_runbook)
    if inv is None:
        return
    with answering(inv):
        handler = SUBCOMMANDS.get(inv.sub) or ALIASES.get(inv.sub)
        if handler is not None:  # sub is lower-case, so the "NAME" placeholder never matches
            handler(inv)
        else:
            start(inv)


def runbook_list(runbooks: Sequence[Runbook]) -> tuple[str, list[dict[str, Any]]]:
    lines = [f"• `{r.id}` — {m.escape(r.title)} ({len(r.steps)} steps)" for r in runbooks]
    body = "\n".join(lines) or "This checklist has no runbooks."
    return "Runbooks", views.plain(
        f"*Runbooks*\n{body}\n`/runbook NAME` starts one here; `/runbook help` for the rest."
    )


def list_(inv: Invocation) -> None:
    inv.reply(*runbook_list(inv.services.checklist.runbooks))


def start(inv: Invocation) -> None:
    ref = " ".join([inv.sub, inv.args]).strip()
    try:
        runbook, run = inv.services.start_run(ref, inv.user, channel=inv.channel, source="slack")
    except RunAlreadyActive as exc:
        already_active(inv, exc.run)
        return
    inv.ack(response_type="ephemeral", text=f"Starting {runbook.title}…")
    inv.later(lambda: publish(inv.client, inv.services, runbook, run, inv.respond))


def already_active(inv: Invocation, run: RunbookRun) -> None:
    """Answer a second start (often a retry after Slack was slow) with what really happened
    to the first: its message posted, still on its way, or never confirmed (posted again)."""
    services = inv.services
    runbook = services.runbook(run.runbook_id)
    head = m.run_already_active(run.id, runbook.title, run.started_by)
    if run.thread_ts and run.channel:
        inv.reply(f"{head} {m.run_thread_link(run.channel, run.thread_ts)}")
        return
    age = (utcnow() - run.started_at).total_seconds()
    # Until the client gives up on the first post (plus a moment), it may still land.
    if age < (inv.client.timeout or SLACK_API_TIMEOUT_S) + 1:
        inv.reply(f"{head} Its message is still on its way: Slack has not answered yet.")
        return
    inv.reply(f"{head} Slack never confirmed its message, so it is being posted again now.")
    inv.later(lambda: publish(inv.client, services, runbook, run, inv.respond))


def publish(
    client: WebClient,
    services: Services,
    runbook: Runbook,
    run: RunbookRun,
    respond: Callable[..., Any] | None = None,
) -> None:
    """Post (first time) or update the run's message in its channel."""
    current = current_step(runbook, run)  # None once ended: no step stays current
    blocks = views.runbook_message(runbook, run, current)
    state = "ended" if run.ended_at else f"step {current + 1}" if current is not None else "done"
    text = f"Runbook {runbook.title}: {state}"
    try:
        if run.thread_ts and run.channel:
            client.chat_update(channel=run.channel, ts=run.thread_ts, text=text, blocks=blocks)
        elif run.channel:
            posted = client.chat_postMessage(channel=run.channel, text=text, blocks=blocks)
            # Stored however late Slack answered: the run's thread is where steps are told.
            services.set_run_message(run.id, posted["channel"], posted["ts"])
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.info("cannot show run %s in channel: %s", run.id, error)
        if respond is not None:
            if error in ("not_in_channel", "channel_not_found"):
                text = f"{m.not_in_channel('post the run here')} {text}"
            respond(response_type="ephemeral", text=text, blocks=blocks)
    except OSError as exc:  # timeouts and resets: Slack may or may not have posted it
        log.warning("run %s: Slack did not answer (%s)", run.id, type(exc).__name__)
        if respond is not None:
            respond(response_type="ephemeral", text=m.run_not_confirmed(run.id), blocks=blocks)


def show_step(
    client: WebClient,
    services: Services,
    runbook: Runbook,
    run: RunbookRun,
    text: str,
    respond: Callable[..., Any] | None = None,
) -> None:
    """After a step event: update the run's message and say who did what in its thread."""
    publish(client, services, runbook, run, respond)
    note_in_thread(client, run, text)


def note_in_thread(client: WebClient, run: RunbookRun, text: str) -> None:
    if not (run.channel and run.thread_ts):
        return
    try:
        client.chat_postMessage(channel=run.channel, thread_ts=run.thread_ts, text=text)
    except SlackApiError as exc:
        log.info("cannot reply in run %s thread: %s", run.id, exc.response.get("error"))


def _act(inv: Invocation, action: str, note: str) -> None:
    services = inv.services
    runbook, run = services.active_run(inv.channel)
    step = next_step(runbook, run)
    runbook, run = services.step(
        run.id, action, inv.user, note, source="slack", request_key=inv.request_key or None
    )
    settled = step if step is not None else 0
    inv.reply(f"Step {settled + 1} {'noted' if action == 'note' else action}.")
    text = event_text(action, settled, runbook, inv.user, note)
    inv.later(lambda: show_step(inv.client, services, runbook, run, text, inv.respond))


def event_text(action: str, step: int, runbook: Runbook, user: str, note: str) -> str:
    verb = {
        "done": ":white_check_mark: done",
        "skip": ":fast_forward: skipped",
        "note": ":memo: note",
    }[action]
    title = runbook.steps[step] if 0 <= step < len(runbook.steps) else ""
    suffix = f": {m.escape(note)}" if note else ""
    return f"Step {step + 1} ({m.escape(title)}) {verb} by <@{user}>{suffix}"


def next_(inv: Invocation) -> None:
    _act(inv, "done", inv.args)


def skip(inv: Invocation) -> None:
    _act(inv, "skip", inv.args)


def note(inv: Invocation) -> None:
    if not inv.args:
        inv.reply("Usage: `/runbook note TEXT`.")
        return
    _act(inv, "note", inv.args)


def status(inv: Invocation) -> None:
    runbook, run = inv.services.active_run(inv.channel)
    inv.reply(
        f"Runbook {runbook.title}", views.runbook_message(runbook, run, next_step(runbook, run))
    )


def end(inv: Invocation) -> None:
    services = inv.services
    runbook, run = services.active_run(inv.channel)
    runbook, run = services.end_run(
        run.id, inv.user, source="slack", groups=inv.context.get("usergroups"), trusted=False
    )
    draft = timeline_markdown(runbook, run, inv.context.get("names") or same)
    inv.reply(f"Run {run.id} of {runbook.title} ended. The post-mortem draft is in the thread.")

    def finish() -> None:
        publish(inv.client, services, runbook, run, inv.respond)
        if run.channel:
            try:
                inv.client.files_upload_v2(
                    channel=run.channel,
                    thread_ts=run.thread_ts,
                    content=draft,
                    filename=f"postmortem-run-{run.id}.md",
                    title=f"Post-mortem draft: {runbook.title}",
                )
            except SlackApiError as exc:
                log.info("cannot upload the draft: %s", exc.response.get("error"))
                inv.respond(response_type="ephemeral", text=f"```{views.clip(draft, 2900)}```")

    inv.later(finish)


SUBCOMMANDS: dict[str, Callable[[Invocation], None]] = {
    "list": list_,
    "NAME": start,
    "next": next_,
    "skip": skip,
    "note": note,
    "status": status,
    "end": end,
    "help": lambda inv: inv.reply(m.help_runbook()),
}
ALIASES = {"done": next_}
