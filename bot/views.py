"""Block Kit layouts. Built with slack_sdk.models so every payload is validated as it is made.

Slack's limits are enforced here, not hoped for: 50 blocks a message, 100 a view, 3000
characters a section, 150 a header. Long lists are summarised with a "… and N more" line.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    ConversationFilter,
    ConversationSelectElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot import messages as m
from bot.model import Checklist, Decision, Item, Runbook, StepDetail
from bot.readiness import BlockerGroup, GroupKind, ItemState, ItemStatus, Readiness, fingerprint
from checks.base import Result, Status

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER = 150
MAX_OPTIONS = 100

# action ids: the handlers register exactly these
RERUN = "preflight_rerun"
SHOW_SECTION = "preflight_show_section"
SIGNOFF_OPEN = "preflight_signoff_open"
SIGNOFF_ITEM = "preflight_signoff_item"
SIGNOFF_MODAL = "preflight_signoff_modal"
VOTE = "decide_vote"
RUNBOOK_STEP = "runbook_step"  # value: "{run_id}:{step}:{done|skip}"
RUNBOOK_NOTE_OPEN = "runbook_note_open"
RUNBOOK_NOTE_MODAL = "runbook_note_modal"
RUNBOOK_CHECKS = "runbook_checks"  # value: "{run_id}:{step}"; the checks come from the step
RUNBOOK_NOTIFY = "runbook_notify"  # action id ":{n}", value "{run_id}:{step}:{n}" (n-th channel)
RUNBOOK_START = "runbook_start"  # App Home: value = runbook id; opens a channel picker
RUNBOOK_START_MODAL = "runbook_start_modal"
MAX_STEP_DETAIL_BLOCKS = 6  # sections of one step's text and commands in the run's message
MAX_NOTIFY_BUTTONS = 3
MAX_HOME_SIGNOFF_BUTTONS = 10  # waiting items shown with their own *Sign off* button
MAX_HOME_RECENT = 5
ACCEPT_OPEN = "preflight_accept_open"  # value: "{item id or check id}|{result fingerprint}"
ACCEPT_MODAL = "preflight_accept_modal"
SECTION_HEADER = " — "  # "Preflight readiness — SECTION": a status message filtered to a section
MAX_ACCEPT_BUTTONS = 5  # WARN groups offered an Accept risk button in one status message


def _same(user: str) -> str:
    return user


def clip(text: str, limit: int = MAX_SECTION_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str, accessory: Any = None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text) or " "), accessory=accessory)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, MAX_HEADER), emoji=True))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text))])


def lines_to_sections(lines: Sequence[str], max_blocks: int) -> list[SectionBlock]:
    """Pack lines into as few sections as fit 3000 characters; summarise what can't fit."""
    blocks: list[SectionBlock] = []
    current: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        line = clip(line, 500)
        if current and size + len(line) + 1 > MAX_SECTION_TEXT:
            if len(blocks) + 1 == max_blocks:
                current.append(f"… and {len(lines) - index} more")
                break
            blocks.append(section("\n".join(current)))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current and len(blocks) < max_blocks:
        blocks.append(section(clip("\n".join(current))))
    return blocks


def to_dicts(blocks: Iterable[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


# ---- /preflight status -----------------------------------------------------------------


def result_line(r: Result) -> str:
    return f"{m.STATUS_EMOJI[r.status]} *{r.check_id}* {m.escape(r.summary)}"


def blocker_line(s: ItemState) -> str:
    return f"• `{s.item.id}` {m.escape(s.item.text)} — _{m.escape(s.reason)}_"


def group_lines(group: BlockerGroup) -> str:
    """A blocker group in Slack: the cause, how many items it holds, and what to do next."""
    ids = ", ".join(f"`{m.escape(i)}`" for i in group.item_ids[:3])
    more = f" and {group.count - 3} more" if group.count > 3 else ""
    held = f"\n    {ids}{more}" if group.count else ""
    return (
        f"• *{m.escape(m.group_line(group, width=400))}*{held}"
        f"\n    ↳ {m.escape(m.next_action(group, slack=True))}"
    )


def accept_value(ref: str, result_fingerprint: str) -> str:
    return f"{ref}|{result_fingerprint}"[:2000]


def accept_button(ref: str, result_fingerprint: str) -> ButtonElement:
    return ButtonElement(
        text="Accept risk", action_id=ACCEPT_OPEN, value=accept_value(ref, result_fingerprint)
    )


def blocker_blocks(groups: Sequence[BlockerGroup], total_items: int, top: int) -> list[Block]:
    """Top blockers, grouped by cause; WARN groups carry an *Accept risk* button."""
    blocks: list[Block] = [section(f"*Top blockers* ({total_items} items, {len(groups)} causes)")]
    lines: list[str] = []
    buttons = 0
    for g in groups[:top]:
        if g.kind is GroupKind.WARNING and g.check_id and buttons < MAX_ACCEPT_BUTTONS:
            if lines:
                blocks += lines_to_sections(lines, max_blocks=3)
                lines = []
            ref = g.check_id if g.count > 1 else g.item_ids[0]
            blocks.append(
                section(group_lines(g), accessory=accept_button(ref, g.fingerprint or ""))
            )
            buttons += 1
        else:
            lines.append(group_lines(g))
    if len(groups) > top:
        lines.append(
            f"… and {len(groups) - top} more causes: `/preflight status SECTION` narrows it"
        )
    if lines:
        blocks += lines_to_sections(lines, max_blocks=3)
    return blocks


def extras_lines(readiness: Readiness, section: str | None = None) -> list[str]:
    """Overridden items and advisory results: shown, never hidden in a count. With a section,
    only that section's items and the checks bound to them."""
    needle = section.lower() if section else None
    own = (
        {c for st in readiness.items if needle in st.item.section.lower() for c in st.item.checks}
        if needle
        else None
    )
    lines = [
        f":large_orange_diamond: `{m.escape(s.item.id)}` *OVERRIDDEN* — {m.escape(s.reason)}"
        for s in readiness.overridden
        if needle is None or needle in s.item.section.lower()
    ]
    lines += [
        f":information_source: advisory (does not block): {result_line(r)}"
        for r in readiness.advisories
        if own is None or r.check_id in own
    ]
    return lines


def status_progress(
    total: int, finished: Sequence[Result], readiness: Readiness
) -> list[dict[str, Any]]:
    """The message while checks are still running: stored summary plus what has come in."""
    blocks: list[Block] = [
        header("Preflight readiness — checking…"),
        section(f"*{m.escape(m.headline(readiness))}* (before this run)"),
        section(f":hourglass_flowing_sand: Checking {total} checks… {len(finished)}/{total} done"),
    ]
    done_lines = [result_line(r) for r in finished]
    blocks += lines_to_sections(done_lines, max_blocks=MAX_MESSAGE_BLOCKS - len(blocks))
    return to_dicts(blocks)


def status_final(
    readiness: Readiness,
    results: Sequence[Result],
    sections_filter: str | None = None,
    top: int = 10,
) -> list[dict[str, Any]]:
    if sections_filter:
        # Only the checks that verify this section's items: a run of every check (joined by a
        # section's status request) must not count or list the others.
        needle = sections_filter.lower()
        own = {
            c for st in readiness.items if needle in st.item.section.lower() for c in st.item.checks
        }
        results = [r for r in results if r.check_id in own]
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    summary = ", ".join(f"{n} {s.value.lower()}" for s, n in counts.items() if n)
    blocks: list[Block] = [
        header(
            "Preflight readiness"
            + (f"{SECTION_HEADER}{sections_filter}" if sections_filter else "")
        ),
        section(f"*{m.escape(m.headline(readiness))}*\nChecks: {summary or 'none ran'}"),
    ]
    shown = [
        s
        for s in readiness.sections
        if not sections_filter or sections_filter.lower() in s.title.lower()
    ]
    progress = [
        f"`{m.bar(s.percent)}` {m.escape(s.title.title())} ({s.done}/{s.applicable})" for s in shown
    ]
    blocks += lines_to_sections(progress, max_blocks=3)
    groups = list(readiness.blocker_groups)
    if sections_filter:
        needle = sections_filter.lower()
        narrowed = (
            dataclasses.replace(
                g, items=tuple(s for s in g.items if needle in s.item.section.lower())
            )
            for g in groups
        )
        groups = [g for g in narrowed if g.items]
    if groups:
        held = sum(g.count for g in groups)
        blocks += blocker_blocks(groups, held, top)
    extras = extras_lines(readiness, sections_filter)
    if extras:
        blocks += lines_to_sections(extras, max_blocks=3)
    # A failure already named as a blocker's cause is not repeated.
    grouped = {g.check_id for g in readiness.blocker_groups if g.check_id}
    failing = [
        r
        for r in results
        if r.status in (Status.FAIL, Status.ERROR, Status.UNKNOWN) and r.check_id not in grouped
    ]
    if failing:
        blocks.append(section("*Checks that need attention*"))
        blocks += lines_to_sections([result_line(r) for r in failing], max_blocks=10)
    blocks.append(status_actions(readiness))
    blocks.append(
        context(
            f"Decisions: {len(readiness.decisions_open)} open, "
            f"{len(readiness.decisions_closed)} closed · Runbooks: {readiness.runbooks} · "
            f"<!date^{int(readiness.computed_at.timestamp())}^{{date_short_pretty}} {{time}}|"
            f"{readiness.computed_at:%Y-%m-%d %H:%M} UTC>"
        )
    )
    return to_dicts(blocks[:MAX_MESSAGE_BLOCKS])


def status_actions(readiness: Readiness) -> ActionsBlock:
    options = [
        Option(text=clip(s.title.title(), 75), value=s.title[:150]) for s in readiness.sections
    ][:MAX_OPTIONS]
    elements: list[Any] = [
        ButtonElement(text="Re-run checks", action_id=RERUN, value="all", style="primary"),
    ]
    if options:
        elements.append(
            StaticSelectElement(placeholder="Show section", action_id=SHOW_SECTION, options=options)
        )
    elements.append(ButtonElement(text="Sign off", action_id=SIGNOFF_OPEN, value="-"))
    return ActionsBlock(elements=elements)


def check_results(results: Sequence[Result]) -> list[dict[str, Any]]:
    blocks: list[Block] = [header(f"Checks: {len(results)} run")]
    lines = []
    for r in results:
        line = result_line(r)
        if r.status not in (Status.PASS, Status.SKIPPED) and r.remediation:
            line += f"\n    ↳ {m.escape(r.remediation)}"
        lines.append(line)
    blocks += lines_to_sections(lines, max_blocks=MAX_MESSAGE_BLOCKS - 1)
    return to_dicts(blocks)


# ---- /preflight item -------------------------------------------------------------------


_rendered: dict[tuple[int, int, int], tuple[Any, ...]] = {}
_rendered_lock = threading.Lock()


def item_detail(
    state: ItemState, checklist: Checklist, names: Callable[[str], str] = _same
) -> list[dict[str, Any]]:
    """An item: its state and evidence; who signed off and who accepted a risk, by name.
    Rendered once per state: readiness is computed once per change and its ItemStates are
    immutable and shared, so `/preflight item` asked again before the next change gets the same
    blocks (perf, issue 11). The list is a copy; the dicts in it are shared: do not change them."""
    key = (id(state), id(checklist), id(names))
    with _rendered_lock:
        hit = _rendered.get(key)
    if hit is not None and hit[0] is state and hit[1] is checklist and hit[2] is names:
        return list(hit[3])
    blocks = _item_detail(state, checklist, names)
    with _rendered_lock:
        if len(_rendered) >= 512:  # a bound; the states of an old readiness are not asked again
            _rendered.clear()
        _rendered[key] = (state, checklist, names, blocks)  # the refs keep the ids unique
    return list(blocks)


def _item_detail(
    state: ItemState, checklist: Checklist, names: Callable[[str], str]
) -> list[dict[str, Any]]:
    item = state.item
    blocks: list[Block] = [
        header(clip(item.text.replace("*", ""), MAX_HEADER)),
        section(
            f"`{item.id}`\n*Section:* {m.escape(' › '.join(item.path) or item.section)}\n"
            f"*Kind:* {item.kind.value} · *State:* {_state_label(state)} — {m.escape(state.reason)}"
            + (f"\n*Condition:* {m.escape(item.condition)}" if item.condition else "")
            + (
                "\n:information_source: Claimed: the document "
                + ("ticks it" if item.checked and "✅" not in item.text else "marks it ✅")
                + "; a claim is not done until someone signs it off."
                if item.claimed
                else ""
            )
        ),
    ]
    if item.details:
        blocks.append(section("\n".join(f"• {m.escape(d)}" for d in item.details)))
    if state.results:
        blocks.append(section("*Evidence*"))
        blocks += lines_to_sections([result_line(r) for r in state.results], max_blocks=5)
    if state.acceptances or state.advisories:
        lines = [
            f"• WARN of *{m.escape(a.check_id)}* accepted by {m.escape(names(a.user))}: "
            f"{m.escape(a.reason)}"
            for a in state.acceptances
        ] + [f"• advisory (does not block): {result_line(r)}" for r in state.advisories]
        blocks += lines_to_sections(lines, max_blocks=2)
    if state.signoffs:
        lines = [
            f"• {m.escape(names(s.user))} at {s.at:%Y-%m-%d %H:%M} UTC"
            + (f": {m.escape(s.note)}" if s.note else "")
            + (f" (not applicable: {m.escape(s.na_reason)})" if s.na_reason else "")
            for s in state.signoffs
        ]
        blocks += lines_to_sections(["*Sign-offs*", *lines], max_blocks=3)
    blocks += how_to_verify(item, checklist)
    buttons: list[Any] = [
        ButtonElement(text="Sign off", action_id=SIGNOFF_ITEM, value=item.id[:2000])
    ]
    if item.checks:
        buttons.append(
            ButtonElement(text="Re-run checks", action_id=RERUN, value=",".join(item.checks)[:2000])
        )
    if state.status is ItemStatus.WARNING and state.cause is not None:
        buttons.append(accept_button(item.id, fingerprint(state.cause)))
    blocks.append(ActionsBlock(elements=buttons))
    return to_dicts(blocks[:MAX_MESSAGE_BLOCKS])


def how_to_verify(item: Item, checklist: Checklist) -> list[Block]:
    """The checklist's own verification commands for the item's subsection (at most two)."""
    verify = [
        v
        for v in checklist.verify_blocks
        if v.section_path and v.section_path[-1] == (item.path[-1] if item.path else item.section)
    ]
    return [
        section(f"*How to verify ({m.escape(v.label)})*\n{m.code_block(clip(v.code, 2800))}")
        for v in verify[:2]
    ]


def assignment_message(state: ItemState, checklist: Checklist, by: str) -> list[dict[str, Any]]:
    """The direct message an assignee gets: the item, where it sits, how to verify it (the
    checklist's commands, the bound checks) and a *Sign off* button."""
    item = state.item
    blocks: list[Block] = [
        section(m.assigned_to_you(item.id, item.text, by)),
        section(
            f"*Section:* {m.escape(' › '.join(item.path) or item.section)}\n"
            f"*State:* {_state_label(state)} — {m.escape(state.reason)}"
        ),
    ]
    if item.details:
        blocks.append(section("\n".join(f"• {m.escape(d)}" for d in item.details)))
    blocks += how_to_verify(item, checklist)
    if item.checks:
        checks = ", ".join(f"`{c}`" for c in item.checks)
        blocks.append(
            section(
                f"*Checks bound to it:* {checks} — `/preflight check {item.checks[0]}` runs one"
            )
        )
    blocks.append(
        ActionsBlock(
            elements=[ButtonElement(text="Sign off", action_id=SIGNOFF_ITEM, value=item.id[:2000])]
        )
    )
    return to_dicts(blocks[:MAX_MESSAGE_BLOCKS])


def _state_label(state: ItemState) -> str:
    if state.status is ItemStatus.OVERRIDDEN:
        return "*OVERRIDDEN* :large_orange_diamond:"
    return state.status.value


def accept_modal(ref: str, result_fingerprint: str, summary: str, channel: str) -> View:
    """Accept one WARN result with a reason; the result's fingerprint travels along, so a
    result that changed in between is not accepted unseen."""
    return View(
        type="modal",
        callback_id=ACCEPT_MODAL,
        title="Accept risk",
        submit="Accept",
        close="Cancel",
        private_metadata=f"{ref}|{result_fingerprint}|{channel}"[:3000],
        blocks=[
            section(
                f"*{m.escape(summary)}*\nThe item passes while the check says exactly this; "
                "any other result blocks again."
            ),
            InputBlock(
                block_id="reason",
                label="Why is this risk acceptable?",
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000),
            ),
        ],
    )


def signoff_modal(item: Item | None, channel: str = "") -> View:
    """Sign-off with an evidence note; the item id is asked for when not known. The channel it
    was opened from rides along, so the confirmation goes back there."""
    blocks: list[Block] = []
    if item is None:
        blocks.append(
            InputBlock(
                block_id="item",
                label="Item id",
                element=PlainTextInputElement(
                    action_id="value",
                    max_length=200,
                    placeholder="e.g. domain-dns/ssl-certificate-obtained",
                ),
            )
        )
    else:
        blocks.append(section(f"*{m.escape(item.text)}*\n`{item.id}`"))
    blocks.append(
        InputBlock(
            block_id="note",
            label="Evidence note",
            optional=True,
            element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000),
        )
    )
    return View(
        type="modal",
        callback_id=SIGNOFF_MODAL,
        title="Sign off",
        submit="Sign off",
        close="Cancel",
        blocks=blocks,
        private_metadata=f"{item.id if item else ''}|{channel}"[:3000],
    )


# ---- App Home ---------------------------------------------------------------------------


def home(
    readiness: Readiness,
    waiting: Sequence[ItemState],
    decisions: Sequence[tuple[Decision, str | None]],
    runs: Sequence[tuple[int, Runbook, int]],
    *,
    names: Callable[[str], str] = _same,
    starters: Mapping[int, str] | None = None,
    recent: Sequence[Any] = (),
    runbooks: Sequence[Runbook] = (),
) -> View:
    """App Home: readiness, what waits on this user (each with *Sign off*), open decisions,
    active runs (who started them, by name), recent sign-offs (by name), and buttons to sign
    off or start a runbook."""
    blocks: list[Block] = [
        header("Preflight"),
        section(f"*{m.escape(m.headline(readiness))}*"),
    ]
    blocks += lines_to_sections(
        [
            f"`{m.bar(s.percent)}` {m.escape(s.title.title())} ({s.done}/{s.applicable})"
            for s in readiness.sections
        ],
        max_blocks=2,
    )
    buttons: list[Any] = [ButtonElement(text="Sign off", action_id=SIGNOFF_OPEN, value="-")]
    if runbooks:
        buttons.append(ButtonElement(text="Start runbook", action_id=RUNBOOK_START, value="-"))
    blocks.append(ActionsBlock(elements=buttons))
    blocks.append(DividerBlock())
    blocks.append(section(f"*Waiting on you* ({len(waiting)})"))
    if waiting:
        for s in waiting[:MAX_HOME_SIGNOFF_BUTTONS]:
            blocks.append(
                section(
                    blocker_line(s),
                    accessory=ButtonElement(
                        text="Sign off", action_id=SIGNOFF_ITEM, value=s.item.id[:2000]
                    ),
                )
            )
        rest = waiting[MAX_HOME_SIGNOFF_BUTTONS:]
        if rest:
            blocks += lines_to_sections(
                [blocker_line(s) for s in rest[:30]]
                + ([f"… and {len(rest) - 30} more"] if len(rest) > 30 else []),
                max_blocks=5,
            )
    else:
        blocks.append(context("Nothing assigned to you is open."))
    blocks.append(DividerBlock())
    blocks.append(section(f"*Open decisions* ({len(decisions)})"))
    for decision, my_vote in decisions[:20]:
        mine = f"your vote: {m.escape(my_vote)}" if my_vote else "you have not voted"
        blocks.append(section(f"*{m.escape(decision.topic)}* — {mine}"))
        blocks += vote_buttons(decision)[:1]  # the Vote buttons (25 options are plenty)
    if runs:
        starters = starters or {}
        blocks.append(DividerBlock())
        blocks.append(section("*Active runbook runs*"))
        blocks += lines_to_sections(
            [
                f"• {m.escape(rb.title)} (run {rid}): {done}/{len(rb.steps)} steps"
                + (f", started by {m.escape(names(starters[rid]))}" if rid in starters else "")
                for rid, rb, done in runs
            ],
            max_blocks=5,
        )
    if recent:
        blocks.append(DividerBlock())
        blocks += lines_to_sections(
            ["*Recent sign-offs*"]
            + [
                f"• `{m.escape(s.item_id)}` by {m.escape(names(s.user))} "
                f"at {s.at:%Y-%m-%d %H:%M} UTC"
                for s in recent[:MAX_HOME_RECENT]
            ],
            max_blocks=2,
        )
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS])


def plain(text: str) -> list[dict[str, Any]]:
    """A single mrkdwn section, for short ephemeral replies. Built as the dict itself: most
    acks carry one, and slack_sdk's block objects validate and serialise field by field (a
    fifth of a `/decide` ack's CPU; perf, issue 11). Equal to to_dicts([section(text)])."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text) or " "}}]


def vote_buttons(decision: Decision) -> list[ActionsBlock]:
    """One button per option (Slack allows 25 elements per actions block)."""
    buttons = [
        ButtonElement(
            text=clip(o.label, 75), action_id=f"{VOTE}:{i}", value=f"{decision.id}|{o.id}"[:2000]
        )
        for i, o in enumerate(decision.options)
    ]
    return [ActionsBlock(elements=buttons[i : i + 25]) for i in range(0, len(buttons), 25)]


def decision_poll(
    decision: Decision,
    is_open: bool,
    rows: Sequence[tuple[str, int, Sequence[str]]],
    quorum: int,
    outcome: str | None = None,
) -> list[dict[str, Any]]:
    """The channel's poll of one decision: question, tally with voters (already rendered as
    names or mentions), quorum, and the option buttons while it is open; `outcome` (mrkdwn)
    replaces the buttons once it is decided."""
    votes = sum(count for _, count, _ in rows)
    blocks: list[Block] = [
        header(f"Decision: {decision.topic}"),
        section(m.escape(decision.question)),
    ]
    lines = []
    for label, count, voters in rows:
        share = round(100 * count / votes) if votes else 0
        who = f" — {', '.join(voters)}" if voters else ""
        lines.append(f"`{m.bar(share)}` *{m.escape(label)}*: {count}{who}")
    blocks += lines_to_sections(lines, max_blocks=3)
    blocks.append(context(m.poll_quorum(votes, quorum)))
    if is_open:
        blocks += vote_buttons(decision)
        blocks.append(context(f"Or type `/decide {decision.id} OPTION`; a vote can change."))
    elif outcome:
        blocks.append(section(outcome))
    return to_dicts(blocks[:MAX_MESSAGE_BLOCKS])


# ---- runbooks ---------------------------------------------------------------------------


def runbook_message(runbook: Runbook, run: Any, current: int | None) -> list[dict[str, Any]]:
    """The run's root message: every step with its state; for the current one what to do (its
    text and exact commands) and its buttons. An ended run has no current step."""
    if run.ended_at:
        current = None  # an ended run has no step in progress
    states = run.step_states()
    lines = []
    for i, step in enumerate(runbook.steps):
        event = states.get(i)
        if event is not None:
            mark = ":white_check_mark:" if event.action == "done" else ":fast_forward:"
            lines.append(f"{mark} {i + 1}. {m.escape(step)} — <@{event.user}> {event.at:%H:%M} UTC")
        elif i == current:
            lines.append(f":arrow_forward: *{i + 1}. {m.escape(step)}*")
        else:
            lines.append(f":white_circle: {i + 1}. {m.escape(step)}")
    state = (
        "ended"
        if run.ended_at
        else f"step {current + 1} of {len(runbook.steps)}"
        if current is not None
        else "all steps settled"
    )
    blocks: list[Block] = [
        header(f"Runbook: {runbook.title}"),
        context(
            f"Run {run.id} · started by <@{run.started_by}> "
            f"at {run.started_at:%Y-%m-%d %H:%M} UTC · {state}"
        ),
    ]
    blocks += lines_to_sections(lines, max_blocks=30)
    if current is not None and not run.ended_at:
        detail = runbook.detail(current)
        blocks.append(DividerBlock())
        blocks += step_detail_blocks(current, runbook.steps[current], detail)
        blocks.append(step_actions(run.id, current, detail))
    return to_dicts(blocks[:MAX_MESSAGE_BLOCKS])


def step_detail_blocks(step: int, title: str, detail: StepDetail) -> list[Block]:
    """What a step says to do: its paragraphs and links as mrkdwn, each command as a copyable
    code block (its label above it); where a part was taken from in the checklist is named."""
    texts = [f"*Step {step + 1}: {m.escape(title)}*"]
    for part in detail.parts:
        if part.kind == "code":
            label = f"*{m.escape(part.label)}*\n" if part.label else ""
            text = label + m.code_block(clip(part.text, MAX_SECTION_TEXT - len(label) - 10))
        else:
            text = m.mrkdwn(part.text)
        if part.derived:
            text += f"\n_from the {m.escape(part.derived)}_"
        texts.append(text)
    if detail.checks:
        texts.append("Checks for this step: " + ", ".join(f"`{c}`" for c in detail.checks))
    blocks: list[Block] = []
    for n, text in enumerate(texts):
        if len(blocks) == MAX_STEP_DETAIL_BLOCKS - 1 and n < len(texts) - 1:
            blocks.append(context(f"… and {len(texts) - n} more parts: see the runbook's source"))
            break
        blocks.append(section(text))
    return blocks


def step_actions(run_id: int, step: int, detail: StepDetail) -> ActionsBlock:
    elements: list[Any] = [
        ButtonElement(
            text="Done",
            action_id=f"{RUNBOOK_STEP}:done",
            style="primary",
            value=f"{run_id}:{step}:done",
        ),
        ButtonElement(text="Skip", action_id=f"{RUNBOOK_STEP}:skip", value=f"{run_id}:{step}:skip"),
        ButtonElement(text="Add note", action_id=RUNBOOK_NOTE_OPEN, value=f"{run_id}:{step}"),
    ]
    if detail.checks:
        elements.append(
            ButtonElement(text="Run checks", action_id=RUNBOOK_CHECKS, value=f"{run_id}:{step}")
        )
    for n, channel in enumerate(detail.notify[:MAX_NOTIFY_BUTTONS]):
        elements.append(
            ButtonElement(
                text=clip(f"Notify {channel}", 75),
                action_id=f"{RUNBOOK_NOTIFY}:{n}",
                value=f"{run_id}:{step}:{n}",
            )
        )
    return ActionsBlock(elements=elements)


def runbook_note_modal(run_id: int, step: int) -> View:
    return View(
        type="modal",
        callback_id=RUNBOOK_NOTE_MODAL,
        title="Runbook note",
        submit="Add",
        close="Cancel",
        private_metadata=f"{run_id}:{step}",
        blocks=[
            InputBlock(
                block_id="note",
                label=f"Note on step {step + 1}",
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000),
            )
        ],
    )


def runbook_start_modal(runbooks: Sequence[Runbook], selected: str | None = None) -> View:
    """From App Home: which runbook, and the channel its run (and thread) will live in."""
    options = [
        Option(text=clip(f"{r.title} ({len(r.steps)} steps)", 75), value=r.id[:150])
        for r in runbooks
    ][:MAX_OPTIONS]
    initial = next((o for o in options if o.value == selected), None)
    return View(
        type="modal",
        callback_id=RUNBOOK_START_MODAL,
        title="Start runbook",
        submit="Start",
        close="Cancel",
        blocks=[
            InputBlock(
                block_id="runbook",
                label="Runbook",
                element=StaticSelectElement(
                    action_id="value", options=options, initial_option=initial
                ),
            ),
            InputBlock(
                block_id="channel",
                label="Channel for the run and its thread",
                element=ConversationSelectElement(
                    action_id="value",
                    filter=ConversationFilter(include=["public", "private"]),
                ),
            ),
        ],
    )
