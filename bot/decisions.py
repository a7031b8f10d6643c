"""Decision records: a closed decision written up in the MADR layout.

https://adr.github.io/madr/ — status, deciders, date, context, considered options, outcome.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.model import Decision
from store import DecisionState


def tally(decision: Decision, votes: Mapping[str, str]) -> list[tuple[str, int, list[str]]]:
    """(option label, count, voters) for every option, most votes first, ties in document order."""
    rows = [
        (
            o.label,
            sum(1 for v in votes.values() if v == o.id),
            sorted(u for u, v in votes.items() if v == o.id),
        )
        for o in decision.options
    ]
    return sorted(rows, key=lambda r: -r[1])


def option_label(decision: Decision, option_id: str | None) -> str | None:
    if option_id is None:
        return None
    return next((o.label for o in decision.options if o.id == option_id), option_id)


def record_markdown(decision: Decision, state: DecisionState, votes: Mapping[str, str]) -> str:
    chosen = option_label(decision, state.chosen)
    date = state.closed_at.strftime("%Y-%m-%d") if state.closed_at else "—"
    lines = [
        f"# {decision.topic}",
        "",
        f"* Status: {'accepted' if state.status == 'accepted' else 'proposed'}",
        f"* Deciders: {', '.join(state.deciders) or '—'}",
        f"* Date: {date}",
    ]
    if state.supersedes:
        lines.append(f"* Supersedes: {option_label(decision, state.supersedes)}")
    lines += [
        "",
        "## Context and Problem Statement",
        "",
        decision.question,
        "",
        "## Considered Options",
        "",
    ]
    lines += [f"* {o.label}" for o in decision.options]
    lines += ["", "## Decision Outcome", ""]
    if chosen:
        why = f", because {state.rationale}" if state.rationale else ""
        lines.append(f'Chosen option: "{chosen}"{why}.')
    else:
        lines.append("Not decided yet.")
    lines += ["", "## Votes", "", "| Option | Votes | Voters |", "| --- | --- | --- |"]
    lines += [
        f"| {label} | {count} | {', '.join(voters) or '—'} |"
        for label, count, voters in tally(decision, votes)
    ]
    return "\n".join(lines) + "\n"
