"""Every sentence Preflight says to a person, in one place: easy to review, easy to test.

Functions return plain text (mrkdwn-safe where noted); Block Kit layout lives in bot/views.py.
Anything a user typed is escaped before it is echoed, so nobody can make the bot say
`<!channel>` or post a link.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.readiness import BlockerGroup, Gate, GroupKind, ItemState, ItemStatus, Readiness
from checks.base import Status

STATUS_EMOJI = {
    Status.PASS: ":large_green_circle:",
    Status.WARN: ":large_yellow_circle:",
    Status.FAIL: ":red_circle:",
    Status.ERROR: ":warning:",
    Status.UNKNOWN: ":grey_question:",
    Status.SKIPPED: ":white_circle:",
}
STATUS_STYLE = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "red",
    Status.ERROR: "magenta",
    Status.UNKNOWN: "cyan",
    Status.SKIPPED: "dim",
}
MAX_ECHO = 80  # characters of user input repeated back at most


def escape(text: str) -> str:
    """Slack's three control characters, so user text can't mention, link or format as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD_LINK = re.compile(r"\[([^\[\]\n]{1,300})\]\(((?:https?://|mailto:)[^\s()<>|]{1,1000})\)")
_MD_BOLD = re.compile(r"(?:\*\*|__)([^*_\n]{1,500}?)(?:\*\*|__)")


def mrkdwn(markdown: str) -> str:
    """Markdown written under a runbook step, as Slack mrkdwn: links become `<url|text>`, bold
    `*text*`, bullets `•`; everything else is escaped so it cannot mention or link."""
    out: list[str] = []
    last = 0
    for match in _MD_LINK.finditer(markdown):
        out.append(_mrkdwn_text(markdown[last : match.start()]))
        out.append(f"<{match.group(2)}|{_mrkdwn_text(match.group(1))}>")
        last = match.end()
    out.append(_mrkdwn_text(markdown[last:]))
    return "".join(out)


def _mrkdwn_text(text: str) -> str:
    text = _MD_BOLD.sub(r"*\1*", escape(text))
    return "\n".join(
        "• " + line.lstrip()[2:] if line.lstrip()[:2] in ("- ", "* ", "+ ") else line
        for line in text.split("\n")
    )


def code_block(code: str) -> str:
    """Code as a copyable mrkdwn block; a ``` inside cannot end it early."""
    return "```" + escape(code).replace("```", "`\u200b``") + "```"


def echo(text: str) -> str:
    """User input quoted back: escaped, single line, shortened."""
    return escape(shorten(text, MAX_ECHO))


def shorten(text: str, limit: int = 160) -> str:
    """One line of at most limit characters, for lists where the detail is one command away."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def bar(percent: int, width: int = 10) -> str:
    filled = round(width * max(0, min(percent, 100)) / 100)
    return "█" * filled + "░" * (width - filled) + f" {percent:3d}%"


def headline(readiness: Readiness) -> str:
    """'NOT READY — BLOCKED — 41/223 items done (18%)' or 'READY TO DEPLOY — ...'."""
    verdict = "READY TO DEPLOY" if readiness.gate is Gate.READY else "NOT READY — BLOCKED"
    if readiness.nothing_to_verify:
        return f"{verdict} — nothing to verify: no applicable items"
    return f"{verdict} — {readiness.done}/{readiness.applicable} items done ({readiness.percent}%)"


MAX_COMMAND_TEXT = 2000  # longer than any valid command; refused without parsing


def help_preflight(unknown: str | None = None) -> str:
    lead = f"I don't know `{echo(unknown)}`. " if unknown else ""
    return (
        f"{lead}*Preflight* — is the launch ready?\n"
        "• `/preflight status [section]` — run the checks and show readiness and blockers\n"
        "• `/preflight check [ID|section|all]` — run checks now, e.g. `check tls_certificate`\n"
        "• `/preflight item ID` — one item: state, evidence, sign-offs, how to verify\n"
        "• `/preflight signoff ID [note]` · `/preflight unsign ID`\n"
        "• `/preflight signoff ID --override WHY` — admins: done as overridden, whatever "
        "the checks say\n"
        "• `/preflight assign ID @person` — who should sign it off (they get a message)\n"
        "• `/preflight gate [post]` — READY or BLOCKED, with the count of blockers; `post` "
        "tells the channel\n"
        "• `/preflight digest subscribe [daily|weekdays|weekly DAY] [HH:MM] [Area/City]` · "
        "`digest unsubscribe` · `digest now` — readiness digests here\n"
        "• `/preflight export [markdown|json]` — the checklist with sign-offs, as a file\n"
        "Decisions: `/decide help` · Runbooks: `/runbook help`"
    )


def help_decide(unknown: str | None = None) -> str:
    lead = f"I don't know `{echo(unknown)}`. " if unknown else ""
    return (
        f"{lead}*Decisions* still open on the checklist:\n"
        "• `/decide` — list the decisions and the votes so far\n"
        "• `/decide TOPIC` — the decision's poll in this channel: options as buttons, live "
        "tally, quorum (e.g. `/decide email`)\n"
        "• `/decide TOPIC OPTION` — vote, or change your vote (e.g. `/decide email SES`)\n"
        "• `/decide TOPIC close OPTION [why]` — deciders only: close it and write the record\n"
        "• `/decide TOPIC reopen [reason]` — deciders only\n"
        "• `/decide TOPIC record` — the decision record (ADR) as Markdown"
    )


def help_runbook(unknown: str | None = None) -> str:
    lead = f"I don't know `{echo(unknown)}`. " if unknown else ""
    return (
        f"{lead}*Runbooks* — incident and launch procedures, one step at a time:\n"
        "• `/runbook list` — the runbooks\n"
        "• `/runbook NAME` — start a run here (e.g. `/runbook deployment-fails`)\n"
        "• `/runbook next [note]` — mark the current step done and show the next\n"
        "• `/runbook skip [reason]` · `/runbook note TEXT`\n"
        "• `/runbook status` — where the active run is, and who did what when\n"
        "• `/runbook end` — finish the run; its timeline becomes a post-mortem draft"
    )


def too_long(length: int) -> str:
    return f"That command is {length:,} characters long; no Preflight command is. Try `help`."


def unexpected_error(correlation_id: str) -> str:
    return (
        f":warning: Something went wrong on our side (ref `{correlation_id}`). Nothing was "
        "changed. Try again, or give the ref to whoever runs Preflight."
    )


def ambiguous(message: str, candidates: list[str]) -> str:
    listed = "\n".join(f"• `{escape(c)}`" for c in candidates)
    return f"{escape(message)}\n{listed}"


# ---- readiness digests (bot/digests.py) ------------------------------------------------------

DIGEST_ITEM_DONE = frozenset({"done", "n/a"})


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def digest_when(when: datetime | None) -> str:
    """A time Slack shows in each reader's own time zone (UTC where it cannot)."""
    if when is None:
        return "the last digest"
    return (
        f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|"
        f"{when:%Y-%m-%d %H:%M} UTC>"
    )


def digest_bad_schedule(text: str) -> str:
    """Raw text (the edges escape error messages), shortened to one line."""
    flat = shorten(text, MAX_ECHO)
    shown = f"“{flat}” is not" if flat else "That is not"
    return f"{shown} a time of day. Give HH:MM on a 24-hour clock, e.g. `09:00` or `17:30`."


def digest_not_posted(error: str) -> str:
    hint = (
        " Invite me to the channel (`/invite @Preflight`) and try again."
        if error in ("not_in_channel", "channel_not_found")
        else ""
    )
    return f"I could not post the digest here: Slack said `{error}`.{hint}"


def digest_title() -> str:
    return "Preflight readiness digest"


def digest_text(readiness: Readiness, changed: bool | None) -> str:
    """The notification text; `changed` is None for a channel's first digest."""
    tail = ""
    if changed is not None:
        tail = (
            " — changed since the last digest" if changed else " — no changes since the last digest"
        )
    return f"Preflight digest: {headline(readiness)}{tail}"


def digest_headline(readiness: Readiness) -> str:
    icon = ":rocket:" if readiness.gate is Gate.READY else ":no_entry:"
    return f"{icon} *{escape(headline(readiness))}*"


def digest_blockers_heading(count: int) -> str:
    return f"*Top blockers* ({count})"


def digest_more_blockers(count: int) -> str:
    return f"… and {count} more: `/preflight status` lists them all"


def digest_first() -> str:
    return (
        "*First digest* for this channel. From the next one on, this part says what "
        "changed in between."
    )


def digest_changes_heading(since: datetime | None) -> str:
    return f"*What changed since {digest_when(since)}*"


def digest_no_changes(since: datetime | None) -> str:
    return f"No changes since {digest_when(since)}."


def digest_gate_changed(old: str, new: str) -> str:
    if new == Gate.READY.value:
        return f":rocket: Gate: {escape(old)} → *READY TO DEPLOY*"
    return f":no_entry: Gate: {escape(old)} → *{escape(new)}*"


def digest_progress_changed(old_done: int, old_of: int, done: int, of: int) -> str:
    return f":bar_chart: Items done: {old_done}/{old_of} → {done}/{of}"


def digest_item_changed(item_id: str, old: str, new: str) -> str:
    ref = f"`{escape(item_id)}`"
    if new == "done":
        return f":white_check_mark: {ref} done"
    if new == "n/a":
        return f":white_circle: {ref} marked not applicable"
    if old in DIGEST_ITEM_DONE:
        return f":rewind: {ref} no longer done (now {escape(new)})"
    if new == "failing":
        return f":red_circle: {ref} now failing"
    if new == "stale":
        return f":hourglass: {ref} check result went stale"
    return f"• {ref}: {escape(old)} → {escape(new)}"


def digest_check_changed(check_id: str, old: str | None, new: str) -> str:
    try:
        icon = STATUS_EMOJI[Status(new)]
    except ValueError:
        icon = "•"
    was = escape(old) if old else "no result"
    return f"{icon} *{escape(check_id)}* {was} → {escape(new)}"


def digest_decision_closed(decision_id: str) -> str:
    return f":ballot_box_with_check: Decision `{escape(decision_id)}` closed"


def digest_decision_reopened(decision_id: str) -> str:
    return f":leftwards_arrow_with_hook: Decision `{escape(decision_id)}` reopened"


def digest_checklist_changed(added: int, removed: int) -> str:
    return f":page_facing_up: Checklist updated: {_plural(added, 'item')} added, {removed} removed"


def digest_more_changes(count: int) -> str:
    return f"… and {_plural(count, 'more change')}: `/preflight status` shows where things stand"


def digest_footer(readiness: Readiness) -> str:
    return (
        f"Decisions: {len(readiness.decisions_open)} open, "
        f"{len(readiness.decisions_closed)} closed · `/preflight digest unsubscribe` stops "
        f"these digests · {digest_when(readiness.computed_at)}"
    )


def status_already_shown(state: str) -> str:
    if state == "running":
        return "Those checks are running right now: the status message in this channel is updating."
    return (
        "Those checks ran moments ago: the status message in this channel has the result. "
        "Its *Re-run checks* button runs them again."
    )


def run_already_active(run_id: int, title: str, started_by: str) -> str:
    return f"Run {run_id} of {escape(title)}, started by <@{started_by}>, is already active here."


def run_thread_link(channel: str, ts: str) -> str:
    return (
        f"<https://slack.com/archives/{channel}/p{ts.replace('.', '')}|Its thread> has the steps."
    )


def assigned_to_you(item_id: str, text: str, by: str) -> str:
    return (
        f"<@{by}> asked you to sign off `{escape(item_id)}` — {escape(text)}. "
        "Verify it, then press *Sign off* (or `/preflight signoff ID note`)."
    )


def not_posted(where: str, error: str) -> str:
    hint = (
        " Invite the app there first: `/invite @preflight`."
        if error in ("not_in_channel", "channel_not_found")
        else ""
    )
    return f"Could not post to {where} ({escape(error)}); nothing was sent.{hint}"


def notify_failed(channel: str, error: str) -> str:
    hint = (
        f" Invite the app there first: `/invite @preflight` in {escape(channel)}."
        if error in ("not_in_channel", "channel_not_found")
        else ""
    )
    return f"Could not post to {escape(channel)} ({escape(error)}); nothing was sent.{hint}"


def run_not_confirmed(run_id: int) -> str:
    return (
        f"Run {run_id} is stored, but Slack did not confirm its message in the channel. "
        "`/runbook status` shows it; starting it again posts it again."
    )


# ---- the gate: blockers grouped by cause, and what to do next -------------------------------

TERMINAL_WIDTH = 100  # every line `status` and `gate` print fits this many columns
GATE_GROUPS = 20  # `gate` prints at most this many blocker groups


def blocks_items(count: int) -> str:
    return f"blocks {_plural(count, 'item')}"


def group_line(group: BlockerGroup, width: int = TERMINAL_WIDTH, indent: str = "") -> str:
    """'dns_records FAIL: api.example.com does not resolve — blocks 5 items', within width."""
    tail = f" — {blocks_items(group.count)}" if group.count else ""
    room = max(20, width - len(indent) - len(tail))
    return f"{indent}{shorten(group.cause, room)}{tail}"


def _fit(indent: str, text: str, width: int) -> str:
    return indent + shorten(text, max(20, width - len(indent)))


def next_action(group: BlockerGroup, slack: bool = False) -> str:
    """What a person does about a group of blockers: a command to run or a setting to set."""
    first = group.item_ids[0] if group.items else ""
    cmd = "/preflight" if slack else "preflight"
    if group.kind is GroupKind.EMPTY:
        return "import a checklist with items (`- [ ] …`): preflight import FILE"
    if group.kind is GroupKind.CHECK:
        fix = shorten(group.remediation, 120).rstrip(". ") if group.remediation else "fix it"
        return f"{fix}; then {cmd} check {group.check_id}"
    if group.kind is GroupKind.WARNING:
        if slack:
            return "a Preflight admin reviews it and presses *Accept risk*, or it gets fixed"
        ref = group.check_id if group.count > 1 else first
        return f'preflight accept {ref} --as … --reason "…" (or fix it)'
    if group.kind is GroupKind.STALE:
        return f"{cmd} check {group.check_id}"
    if group.kind is GroupKind.UNCONFIGURED:
        signoff = f"{cmd} signoff {first}" + ("" if slack else " --as …")
        if group.settings:
            return f"set {' or '.join(group.settings)}, or sign off: {signoff}"
        return f"{cmd} check {group.check_id}"
    if group.kind is GroupKind.DECISION:
        if slack:
            return f"/decide {group.decision_id} OPTION"
        return f"preflight decide {group.decision_id} OPTION --as …"
    more = f" (and {group.count - 1} more)" if group.count > 1 else ""
    return f"{cmd} signoff {first}" + ("" if slack else " --as …") + more


def action_line(group: BlockerGroup, width: int = TERMINAL_WIDTH, indent: str = "") -> str:
    return _fit(indent, f"→ {next_action(group)}", width)


def more_groups(count: int) -> str:
    return f"{count} more: preflight status --json"


def nothing_to_verify() -> str:
    return "BLOCKED: nothing to verify — the checklist has no applicable items"


def still_blocked(state: ItemState) -> str:
    """Said after a sign-off that is stored but does not make the item done."""
    if state.cause is not None and state.status is not ItemStatus.OPEN:
        r = state.cause
        return f"still blocked by {r.check_id}: {r.status.value} {shorten(r.summary, 120)}"
    return f"still blocked: {shorten(state.reason, 120)}"


# ---- decisions in the open ---------------------------------------------------------------


def not_in_channel(what: str = "post here") -> str:
    """Slack answered not_in_channel: the fix is one command away."""
    return (
        f"I could not {what}: I am not in this channel. "
        "Invite me with `/invite @Preflight` and try again."
    )


def poll_text(topic: str, votes: int, quorum: int, is_open: bool) -> str:
    state = "open" if is_open else "decided"
    return f"Decision poll: {topic} ({state}) — {_plural(votes, 'vote')}, quorum {quorum}"


def poll_quorum(votes: int, quorum: int) -> str:
    if quorum <= 0:
        return f"{_plural(votes, 'vote')} · no quorum needed"
    if votes >= quorum:
        return f"{votes} of {quorum} votes · quorum reached"
    return f"{votes} of {quorum} votes · quorum not reached yet"


def poll_posted(topic: str, decision_id: str) -> str:
    return (
        f":ballot_box_with_ballot: The poll for *{escape(topic)}* is in this channel: vote with "
        f"its buttons or `/decide {decision_id} OPTION`."
    )


def decision_outcome(
    topic: str,
    option: str,
    rationale: str,
    deciders: str,
    votes: str,
    superseded: str | None,
) -> str:
    """The channel announcement of a closed decision (all arguments already escaped)."""
    lines = [f":white_check_mark: *{topic}* decided: *{option}*"]
    if superseded:
        lines.append(f":arrows_counterclockwise: This supersedes the earlier choice, {superseded}.")
    lines.append(f"Because: {rationale}" if rationale else "No rationale was given.")
    lines.append(f"Deciders: {deciders}")
    lines.append(f"Votes: {votes}")
    lines.append("The decision record is attached in the thread.")
    return "\n".join(lines)


def decision_reopened(topic: str, by: str, reason: str) -> str:
    why = f": {reason}" if reason else ""
    return (
        f":leftwards_arrow_with_hook: *{topic}* is open again, reopened by {by}{why}. "
        "Votes stand and can change; the poll is live again."
    )


# ---- digests on the team's clock -----------------------------------------------------------


def digest_usage() -> str:
    return (
        "Usage: `/preflight digest subscribe [daily|weekdays|weekly DAY] [HH:MM] [Area/City]` "
        "· `/preflight digest unsubscribe` · `/preflight digest now`. Without a time zone, "
        "yours from Slack is used; e.g. `/preflight digest subscribe weekdays 09:00 "
        "America/New_York`."
    )


def digest_subscribed(schedule: str, next_at: str, zone_note: str = "") -> str:
    return (
        f":calendar: This channel gets a readiness digest {schedule}. Next: {next_at}.{zone_note}"
    )


def digest_zone_from_profile(zone: str) -> str:
    return f" (Time zone {zone}, from your Slack profile.)"


def digest_zone_unknown() -> str:
    return " (Your Slack profile has no time zone, so UTC; add `Area/City` to choose one.)"


def digest_bad_zone(text: str) -> str:
    return f"“{echo(text)}” is not a time zone I know: use an IANA name such as Europe/Paris."


def digest_bad_day(text: str) -> str:
    return f"“{echo(text)}” is not a day of the week: use mon, tue, wed, thu, fri, sat or sun."


def digest_decisions_heading(count: int) -> str:
    return f"*Open decisions* ({count})"


def digest_decision_line(topic: str, decision_id: str, votes: int, quorum: int) -> str:
    state = "quorum reached" if votes >= quorum else f"needs {quorum - votes} more"
    return f"• *{escape(topic)}* — {votes} of {quorum} votes ({state}) · `/decide {decision_id}`"


def digest_runs_heading(count: int) -> str:
    return f"*Active runbook runs* ({count})"


def digest_run_line(title: str, run_id: int, done: int, steps: int, started_by: str) -> str:
    return f"• {escape(title)} (run {run_id}): {done}/{steps} steps, started by {started_by}"


def digest_chart_alt(first: int, last: int, points: int) -> str:
    if points <= 1:
        return f"Readiness over time: {last}% done (the first digest)"
    return f"Readiness over time: {first}% to {last}% done over {points} digests"
