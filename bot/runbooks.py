"""Runbook runs: which step a button may still act on, the status a *Notify* button posts, and
the run's timeline written up as the first draft of a post-mortem."""

from __future__ import annotations

from collections.abc import Callable

from bot.errors import StaleStep
from bot.messages import escape
from bot.model import Runbook
from store import RunbookRun

Names = Callable[[str], str]  # user id -> display name (bot/people.py); identity without Slack


def _same(user: str) -> str:
    return user


def current_step(runbook: Runbook, run: RunbookRun) -> int | None:
    """The first step not yet done or skipped; None when all are or the run has ended."""
    if run.ended_at is not None:
        return None
    settled = run.step_states()
    return next((i for i in range(len(runbook.steps)) if i not in settled), None)


def ensure_current(runbook: Runbook, run: RunbookRun, step: int) -> None:
    """StaleStep (nothing changed, and why) unless `step` is the current step of a live run:
    a late click on *Run checks* or *Notify* must not act for a step that is behind us."""
    if run.ended_at is not None:
        raise StaleStep(f"Run {run.id} has ended; nothing changed.")
    current = current_step(runbook, run)
    if step == current:
        return
    now = f" The current step is {current + 1}." if current is not None else ""
    settled = run.step_states().get(step)
    if settled is not None:
        verb = "done" if settled.action == "done" else "skipped"
        raise StaleStep(f"Step {step + 1} was already {verb}; nothing changed.{now}")
    raise StaleStep(f"Step {step + 1} is not the current step; nothing changed.{now}")


def status_line(runbook: Runbook, run: RunbookRun) -> str:
    """One mrkdwn line on where a run stands, for a channel that was not following it."""
    current = current_step(runbook, run)
    done = len(run.step_states())
    where = (
        "ended"
        if run.ended_at
        else f"on step {current + 1} of {len(runbook.steps)}: *{escape(runbook.steps[current])}*"
        if current is not None
        else "all steps settled"
    )
    return (
        f":rotating_light: Runbook *{escape(runbook.title)}* (run {run.id}, started by "
        f"<@{run.started_by}> at {run.started_at:%H:%M} UTC) is {where} — "
        f"{done}/{len(runbook.steps)} steps settled."
    )


def timeline_markdown(runbook: Runbook, run: RunbookRun, names: Names = _same) -> str:
    """The post-mortem draft; `names` turns user ids into the names people know."""

    def who(user: str | None) -> str:
        return _cell(names(user)) if user else "?"

    lines = [
        f"# Post-mortem draft: {runbook.title}",
        "",
        f"* Run: {run.id}",
        f"* Started: {run.started_at:%Y-%m-%d %H:%M:%S} UTC by {who(run.started_by)}",
    ]
    if run.ended_at:
        minutes = (run.ended_at - run.started_at).total_seconds() / 60
        lines.append(
            f"* Ended: {run.ended_at:%Y-%m-%d %H:%M:%S} UTC by {who(run.ended_by)} "
            f"({minutes:.0f} min)"
        )
    lines += [
        "",
        "## Timeline",
        "",
        "| Time (UTC) | Step | What | Who | Note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in run.events:
        step = runbook.steps[e.step] if 0 <= e.step < len(runbook.steps) else "?"
        note = _cell(e.note)
        lines.append(
            f"| {e.at:%H:%M:%S} | {e.step + 1}. {_cell(step)} | {e.action} | {who(e.user)} "
            f"| {note} |"
        )
    settled = run.step_states()
    open_steps = [f"{i + 1}. {s}" for i, s in enumerate(runbook.steps) if i not in settled]
    lines += ["", "## Steps not done", ""] + ([f"* {s}" for s in open_steps] or ["* none"])
    lines += [
        "",
        "## What happened",
        "",
        "_To be written._",
        "",
        "## What we change",
        "",
        "_To be written._",
    ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
