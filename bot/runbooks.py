"""A runbook run's timeline, written up as the first draft of a post-mortem."""

from __future__ import annotations

from bot.model import Runbook
from store import RunbookRun


def timeline_markdown(runbook: Runbook, run: RunbookRun) -> str:
    lines = [
        f"# Post-mortem draft: {runbook.title}",
        "",
        f"* Run: {run.id}",
        f"* Started: {run.started_at:%Y-%m-%d %H:%M:%S} UTC by {run.started_by}",
    ]
    if run.ended_at:
        minutes = (run.ended_at - run.started_at).total_seconds() / 60
        lines.append(
            f"* Ended: {run.ended_at:%Y-%m-%d %H:%M:%S} UTC by {run.ended_by} ({minutes:.0f} min)"
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
        note = e.note.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {e.at:%H:%M:%S} | {e.step + 1}. {step} | {e.action} | {e.user} | {note} |")
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
