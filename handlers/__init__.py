"""Slack listeners. Each parses, acks, calls a bot service and renders; no SQL, no probes.

`register` is the only place that knows which listener answers which command, action, view
and event; `COMMANDS` is what the manifest test compares with manifest.yml.
"""

from __future__ import annotations

import re

from slack_bolt import App

from bot import views
from handlers import actions, decide, home, preflight, runbook

COMMANDS = {
    "/preflight": preflight.SUBCOMMANDS,
    "/decide": decide.SUBCOMMANDS,
    "/runbook": runbook.SUBCOMMANDS,
}
EVENTS = ("app_home_opened",)


def register(app: App) -> None:
    app.command("/preflight")(preflight.command)
    app.command("/decide")(decide.command)
    app.command("/runbook")(runbook.command)
    app.event("app_home_opened")(home.opened)
    app.action(views.RERUN)(actions.rerun)
    app.action(views.SHOW_SECTION)(actions.show_section)
    app.action(views.SIGNOFF_OPEN)(actions.open_signoff)
    app.action(views.SIGNOFF_ITEM)(actions.open_signoff)
    app.view(views.SIGNOFF_MODAL)(actions.signoff_submitted)
    app.action(views.ACCEPT_OPEN)(actions.open_accept)
    app.view(views.ACCEPT_MODAL)(actions.accept_submitted)
    app.action(re.compile(rf"^{views.VOTE}(:\d+)?$"))(actions.vote)
    app.action(re.compile(rf"^{views.RUNBOOK_STEP}:(done|skip)$"))(actions.runbook_step)
    app.action(views.RUNBOOK_NOTE_OPEN)(actions.open_runbook_note)
    app.action(views.RUNBOOK_CHECKS)(actions.runbook_checks)
    app.action(re.compile(rf"^{views.RUNBOOK_NOTIFY}:\d+$"))(actions.runbook_notify)
    app.view(views.RUNBOOK_NOTE_MODAL)(actions.runbook_note_submitted)
    app.action(views.RUNBOOK_START)(actions.open_runbook_start)
    app.view(views.RUNBOOK_START_MODAL)(actions.runbook_start_submitted)
