"""App Home: readiness overview, items waiting on this user (each with *Sign off*), open
decisions, active runs and recent sign-offs by name, and *Sign off* / *Start runbook* buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot import views
from bot.decisions import option_label
from bot.people import Names, same
from bot.services import Services


def opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    if event.get("tab") not in (None, "home"):
        return
    user = event.get("user") or context.user_id or ""
    view = home_view(context["services"], user, context.get("names") or same)
    client.views_publish(user_id=user, view=view)


def home_view(services: Services, user: str, names: Names = same) -> dict[str, Any]:
    readiness = services.readiness()
    states = services.decision_states()
    decisions = []
    for d in services.checklist.decisions:
        st = states.get(d.id)
        if st is None or st.status != "accepted":
            decisions.append((d, option_label(d, services.votes(d.id).get(user))))
    runs = []
    starters = {}
    for run in services.active_runs():
        runbook = next((r for r in services.checklist.runbooks if r.id == run.runbook_id), None)
        if runbook is not None:  # else: a run of a runbook since removed from the checklist
            runs.append((run.id, runbook, len(run.step_states())))
            starters[run.id] = run.started_by
    recent = sorted(
        (s for entries in services.signoffs().values() for s in entries),
        key=lambda s: s.at,
        reverse=True,
    )[: views.MAX_HOME_RECENT]
    view = views.home(
        readiness,
        services.waiting_on(user),
        decisions,
        runs,
        names=names,
        starters=starters,
        recent=recent,
        runbooks=services.checklist.runbooks,
    )
    return view.to_dict()
