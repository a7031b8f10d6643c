"""App Home: readiness overview, items waiting on this user, open decisions, active runs."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from bot import views
from bot.decisions import option_label
from bot.services import Services


def opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    if event.get("tab") not in (None, "home"):
        return
    user = event.get("user") or context.user_id or ""
    client.views_publish(user_id=user, view=home_view(context["services"], user))


def home_view(services: Services, user: str) -> dict[str, Any]:
    readiness = services.readiness()
    states = services.store.decision_states()
    decisions = []
    for d in services.checklist.decisions:
        st = states.get(d.id)
        if st is None or st.status != "accepted":
            decisions.append((d, option_label(d, services.store.votes(d.id).get(user))))
    runs = []
    for run in services.store.active_runs():
        runbook = next((r for r in services.checklist.runbooks if r.id == run.runbook_id), None)
        if runbook is not None:  # else: a run of a runbook since removed from the checklist
            runs.append((run.id, runbook, len(run.step_states())))
    view = views.home(readiness, services.waiting_on(user), decisions, runs)
    return view.to_dict()
