"""Every sentence Preflight says to a person, in one place: easy to review, easy to test.

Functions return plain text (mrkdwn-safe where noted); Block Kit layout lives in bot/views.py.
Anything a user typed is escaped before it is echoed, so nobody can make the bot say
`<!channel>` or post a link.
"""

from __future__ import annotations

from bot.readiness import Gate, Readiness
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


def echo(text: str) -> str:
    """User input quoted back: escaped, single line, shortened."""
    flat = " ".join(text.split())
    if len(flat) > MAX_ECHO:
        flat = flat[: MAX_ECHO - 1] + "…"
    return escape(flat)


def bar(percent: int, width: int = 10) -> str:
    filled = round(width * max(0, min(percent, 100)) / 100)
    return "█" * filled + "░" * (width - filled) + f" {percent:3d}%"


def headline(readiness: Readiness) -> str:
    """'NOT READY — BLOCKED — 41/223 items done (18%)' or 'READY TO DEPLOY — ...'."""
    verdict = "READY TO DEPLOY" if readiness.gate is Gate.READY else "NOT READY — BLOCKED"
    return f"{verdict} — {readiness.done}/{readiness.applicable} items done ({readiness.percent}%)"


MAX_COMMAND_TEXT = 2000  # longer than any valid command; refused without parsing


def help_preflight(unknown: str | None = None) -> str:
    lead = f"I don't know `{echo(unknown)}`. " if unknown else ""
    return (
        f"{lead}*Preflight* — is the launch ready?\n"
        "• `/preflight status [section]` — run the checks and show readiness and blockers\n"
        "• `/preflight check [ID|section|all]` — run checks now, e.g. `/preflight check tls_certificate`\n"
        "• `/preflight item ID` — one item: state, evidence, sign-offs, how to verify\n"
        "• `/preflight signoff ID [note]` · `/preflight unsign ID`\n"
        "• `/preflight assign ID @person` — who should sign it off\n"
        "• `/preflight gate` — READY or BLOCKED, with the count of blockers\n"
        "• `/preflight digest subscribe [HH:MM] | unsubscribe | now` — readiness digests here\n"
        "• `/preflight export [markdown|json]` — the checklist with sign-offs, as a file\n"
        "Decisions: `/decide help` · Runbooks: `/runbook help`"
    )


def help_decide(unknown: str | None = None) -> str:
    lead = f"I don't know `{echo(unknown)}`. " if unknown else ""
    return (
        f"{lead}*Decisions* still open on the checklist:\n"
        "• `/decide` — list the decisions and the votes so far\n"
        "• `/decide TOPIC` — one decision: options, votes, state (e.g. `/decide email`)\n"
        "• `/decide TOPIC OPTION` — vote, or change your vote (e.g. `/decide email SES`)\n"
        "• `/decide TOPIC close OPTION [rationale]` — deciders only: close it and write the record\n"
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
