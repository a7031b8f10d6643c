"""Buttons and modals: re-run checks, show a section, sign off, accept a risk, vote, runbook
steps."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import live_status, runbooks, views
from bot import messages as m
from bot.decisions import refresh_polls
from bot.errors import AmbiguousRef, PreflightError, RunAlreadyActive, StoreError
from bot.readiness import fingerprint
from checks.base import Status
from handlers import decide as decide_handler
from handlers import home as home_handler
from handlers import runbook as runbook_handler
from handlers.common import _logged

log = logging.getLogger("preflight.actions")


def _action(body: dict[str, Any]) -> dict[str, Any]:
    return (body.get("actions") or [{}])[0]


def _user(body: dict[str, Any]) -> str:
    return (body.get("user") or {}).get("id", "")


def _channel(body: dict[str, Any]) -> str:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id", ""
    )


def _key(body: dict[str, Any]) -> str:
    a = _action(body)
    return f"action:{_user(body)}:{a.get('action_ts')}:{a.get('action_id')}"


def _tell(respond: Respond, text: str) -> None:
    respond(response_type="ephemeral", replace_original=False, text=text)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, AmbiguousRef):
        return m.ambiguous(str(exc), exc.candidates)
    return m.escape(str(exc))


def rerun(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """*Re-run checks*: the status message the button is on follows the new run (chat.update
    of that message); a new message only when the button is on an ephemeral one."""
    ack()
    services = context["services"]
    value = _action(body).get("value") or "all"
    try:
        checks = [c for ref in value.split(",") for c in services.checks_for(ref)]
    except PreflightError as exc:
        _tell(respond, _error_text(exc))
        return
    channel = _channel(body)
    runs = context["status_runs"]
    where = _message_of(body)
    section = _section_of(body, services)
    if section is not None and value == "all":
        checks = live_status.checks_for_section(services, section)  # the section's own checks
    if where is None:
        context["work"].submit(
            lambda: runs.run(client, services, channel, section, checks, respond, fresh=True)
        )
        return
    context["work"].submit(
        lambda: live_status.rerun_in_place(
            client, services, where[0], where[1], section, checks, respond
        )
    )


def _section_of(body: dict[str, Any], services: Any) -> str | None:
    """The section a status message was filtered to (its header: "Preflight readiness — X")."""
    for b in (body.get("message") or {}).get("blocks") or []:
        if b.get("type") != "header":
            continue
        text = str((b.get("text") or {}).get("text", ""))
        head, sep, wanted = text.partition(views.SECTION_HEADER)
        wanted = wanted.strip()
        known = any(wanted.lower() in s.lower() for s in services.checklist.sections)
        if sep and head == "Preflight readiness" and wanted and known:
            return wanted
    return None


def show_section(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """A section picked in a status message: that message shows the section (chat.update)."""
    ack()
    services = context["services"]
    section = ((_action(body).get("selected_option") or {}).get("value") or "")[:150]
    if not any(section.lower() == s.lower() for s in services.checklist.sections):
        _tell(respond, "That section is not in the checklist any more.")
        return
    readiness = services.readiness()
    results = list(services.latest_results().values())
    blocks = views.status_final(readiness, results, section)
    text = f"{section}: {m.headline(readiness)}"
    where = _message_of(body)
    if where is not None:
        try:
            client.chat_update(channel=where[0], ts=where[1], text=text, blocks=blocks)
            return
        except SlackApiError as exc:
            log.info("section pick: chat.update failed: %s", exc.response.get("error"))
    respond(response_type="ephemeral", replace_original=True, text=text, blocks=blocks)


def open_signoff(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    ack()
    services = context["services"]
    value = _action(body).get("value") or "-"
    item = None
    if value != "-":
        try:
            item = services.find_item(value)
        except PreflightError as exc:
            _tell(respond, _error_text(exc))
            return
    channel = _channel(body)
    client.views_open(
        trigger_id=body["trigger_id"],
        view=views.signoff_modal(item, channel=channel),
    )


def signoff_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = context["services"]
    values = view.get("state", {}).get("values", {})
    note = ((values.get("note") or {}).get("value") or {}).get("value") or ""
    metadata = view.get("private_metadata") or ""
    ref = (
        metadata.split("|")[0] or ((values.get("item") or {}).get("value") or {}).get("value") or ""
    )
    user = _user(body)
    try:
        item = services.signoff(
            ref,
            user,
            note=note.strip(),
            source="slack",
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
        )
    except (PreflightError, StoreError) as exc:
        # The error shows under the field and the modal stays open: nothing is lost.
        field = "item" if "item" in values else "note"
        ack(response_action="errors", errors={field: views.clip(str(exc), 150)})
        return
    ack()
    text = f":white_check_mark: Signed off `{item.id}`."
    state = services.readiness().state(item.id)
    if state is not None and not state.done:
        text += f" The sign-off is stored, but the item is {m.escape(m.still_blocked(state))}."
    channel = metadata.partition("|")[2]
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:  # opened from App Home: the confirmation goes to the app's messages tab
            client.chat_postMessage(channel=user, text=text)
    except SlackApiError as exc:  # the sign-off is stored; a lost confirmation is no error
        log.info("sign-off confirmation not delivered: %s", exc.response.get("error"))


def _message_of(body: dict[str, Any]) -> tuple[str, str] | None:
    """(channel, ts) of the channel message a button is on; None for ephemeral messages and
    views (App Home, modals), which chat.update cannot reach."""
    container = body.get("container") or {}
    if container.get("type") != "message" or container.get("is_ephemeral"):
        return None
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    channel = _channel(body)
    return (channel, ts) if channel and ts else None


def vote(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    services = context["services"]
    decision_id, _, option_id = (_action(body).get("value") or "").partition("|")
    user = _user(body)
    from_home = (body.get("container") or {}).get("type") == "view"
    try:
        # Stored before the ack: a crash can't lose a vote Slack was told we took.
        decision, option = services.vote(
            decision_id, option_id, user, source="slack", request_key=_key(body)
        )
    except (PreflightError, StoreError) as exc:
        ack()
        if from_home:
            log.info("vote from the App Home refused: %s", exc)
        else:
            _tell(respond, _error_text(exc))
        return
    ack()
    names = decide_handler.names_of(context)
    poll = _message_of(body)

    def after() -> None:
        # The poll the button is on, and every stored poll of the decision, show the vote.
        refresh_polls(client, services, decision, names, also=_poll_message(body, poll))
        if from_home:
            client.views_publish(user_id=user, view=home_handler.home_view(services, user))
        else:
            _tell(
                respond,
                f":ballot_box_with_ballot: Your vote on *{m.escape(decision.topic)}*: "
                f"{m.escape(option.label)}.",
            )

    context["work"].submit(after)


def _poll_message(body: dict[str, Any], where: tuple[str, str] | None) -> tuple[str, str] | None:
    """The clicked message, when it is a poll (its header names a decision)."""
    if where is None:
        return None
    blocks = (body.get("message") or {}).get("blocks") or []
    is_poll = any(
        b.get("type") == "header"
        and str((b.get("text") or {}).get("text", "")).startswith("Decision: ")
        for b in blocks
    )
    return where if is_poll else None


def runbook_step(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    services = context["services"]
    user = _user(body)
    try:
        run_id, step, action = _parse_step(_action(body).get("value") or "")
        # Stored before the ack, like every other write.
        runbook, run = services.step(
            run_id, action, user, step=step, source="slack", request_key=_key(body)
        )
    except (PreflightError, StoreError, ValueError) as exc:
        ack()
        _tell(respond, _error_text(exc))
        return
    ack()
    text = runbook_handler.event_text(action, step, runbook, user, "")
    context["work"].submit(
        lambda: runbook_handler.show_step(client, services, runbook, run, text, respond)
    )


def _parse_step(value: str) -> tuple[int, int, str]:
    parts = value.split(":")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError("That button is out of date.")
    action = parts[2] if len(parts) > 2 else "note"
    if action not in ("done", "skip", "note"):
        raise ValueError("That button is out of date.")
    return int(parts[0]), int(parts[1]), action


def runbook_checks(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """*Run checks* on a step: the step's own checks run in the work pool; the results go to the
    run's thread and a line to its timeline."""
    ack()
    services = context["services"]
    user = _user(body)
    try:
        run_id, step, _ = _parse_step(_action(body).get("value") or "")
        run = services.run(run_id)
        runbook = services.runbook(run.runbook_id)
        runbooks.ensure_current(runbook, run, step)
        checks = [c for ref in runbook.detail(step).checks for c in services.checks_for(ref)]
    except (PreflightError, StoreError, ValueError) as exc:
        _tell(respond, _error_text(exc))
        return
    _tell(respond, f"Running {len(checks)} checks for step {step + 1}; results in the thread.")

    def work() -> None:
        results = services.run_checks(checks)
        summary = ", ".join(f"{r.check_id} {r.status.value}" for r in results)
        text = f"Checks for step {step + 1}, run by <@{user}>: {m.escape(summary)}"
        if run.channel and run.thread_ts:
            try:
                client.chat_postMessage(
                    channel=run.channel,
                    thread_ts=run.thread_ts,
                    text=text,
                    blocks=views.check_results(results),
                )
            except SlackApiError as exc:
                log.info("check results not posted: %s", exc.response.get("error"))
                respond(response_type="ephemeral", text=text, blocks=views.check_results(results))
        else:
            respond(response_type="ephemeral", text=text, blocks=views.check_results(results))
        try:  # on the record; refused (and left out) if the step moved on meanwhile
            services.step(run_id, "note", user, f"ran checks: {summary}", step=step, source="slack")
        except PreflightError as exc:
            log.info("check note not added to run %s: %s", run_id, exc)

    context["work"].submit(_logged(work, respond, context))


def runbook_notify(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """*Notify* on a step: the run's status goes to the channel the step names."""
    ack()
    services = context["services"]
    user = _user(body)
    try:
        parts = (_action(body).get("value") or "").split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            raise ValueError("That button is out of date.")
        run_id, step, _ = _parse_step(":".join(parts[:2]))
        run = services.run(run_id)
        runbook = services.runbook(run.runbook_id)
        runbooks.ensure_current(runbook, run, step)
        channels = runbook.detail(step).notify
        if int(parts[2]) >= len(channels):
            raise ValueError("That button is out of date.")
        target = channels[int(parts[2])]
    except (PreflightError, StoreError, ValueError) as exc:
        _tell(respond, _error_text(exc))
        return
    text = runbooks.status_line(runbook, run)
    if run.channel and run.thread_ts:
        text += " " + m.run_thread_link(run.channel, run.thread_ts)

    def work() -> None:
        try:
            client.chat_postMessage(channel=target, text=f"{text} (sent by <@{user}>)")
        except SlackApiError as exc:
            error = exc.response.get("error")
            _tell(respond, m.notify_failed(target, str(error)))
            return
        _tell(respond, f"Posted the run's status to {m.escape(target)}.")
        try:
            services.step(run_id, "note", user, f"notified {target}", step=step, source="slack")
        except PreflightError as exc:
            log.info("notify note not added to run %s: %s", run_id, exc)

    context["work"].submit(_logged(work, respond, context))


def open_runbook_start(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    """App Home's *Start runbook*: pick the runbook and the channel its run lives in."""
    ack()
    services = context["services"]
    client.views_open(
        trigger_id=body["trigger_id"], view=views.runbook_start_modal(services.checklist.runbooks)
    )


def runbook_start_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = context["services"]
    values = view.get("state", {}).get("values", {})
    ref = ((values.get("runbook") or {}).get("value") or {}).get("selected_option") or {}
    channel = ((values.get("channel") or {}).get("value") or {}).get("selected_conversation") or ""
    user = _user(body)
    try:
        runbook, run = services.start_run(
            ref.get("value") or "", user, channel=channel or None, source="slack"
        )
    except (PreflightError, StoreError) as exc:
        field = "channel" if isinstance(exc, RunAlreadyActive) else "runbook"
        ack(response_action="errors", errors={field: views.clip(str(exc), 150)})
        return
    ack()

    def tell(**kwargs: Any) -> None:
        # No response_url from a modal: the user hears in the app's messages tab.
        text = kwargs.get("text") or ""
        client.chat_postMessage(channel=user, text=text, blocks=kwargs.get("blocks"))

    def work() -> None:
        try:
            runbook_handler.publish(client, services, runbook, run, tell)
            fresh = services.run(run.id)
            if fresh.thread_ts:
                link = m.run_thread_link(channel, fresh.thread_ts)
                title = m.escape(runbook.title)
                tell(text=f"Started *{title}* (run {run.id}) in <#{channel}>. {link}")
        except Exception:  # after the ack nobody else would hear of it
            log.exception("runbook run %s from App Home not published", run.id)

    context["work"].submit(work)


def open_runbook_note(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    ack()
    try:
        run_id, step, _ = _parse_step(_action(body).get("value") or "")
    except ValueError as exc:
        _tell(respond, str(exc))
        return
    client.views_open(trigger_id=body["trigger_id"], view=views.runbook_note_modal(run_id, step))


def runbook_note_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = context["services"]
    note = (
        ((view.get("state", {}).get("values", {}).get("note") or {}).get("value") or {}).get(
            "value"
        )
        or ""
    ).strip()
    user = _user(body)
    try:
        run_id, step, _ = _parse_step(view.get("private_metadata") or "")
        runbook, run = services.step(
            run_id,
            "note",
            user,
            note,
            step=step,
            source="slack",
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
        )
    except (PreflightError, StoreError, ValueError) as exc:
        ack(response_action="errors", errors={"note": views.clip(str(exc), 150)})
        return
    ack()
    text = runbook_handler.event_text("note", step, runbook, user, note)
    context["work"].submit(lambda: runbook_handler.note_in_thread(client, run, text))


# ---- Accept risk (a WARN result) ------------------------------------------------------------


def open_accept(
    ack: Ack, body: dict[str, Any], client: WebClient, context: BoltContext, respond: Respond
) -> None:
    """The *Accept risk* button: admins get the reason modal; anyone else a logged refusal."""
    ack()
    services = context["services"]
    user = _user(body)
    ref, _, expected = (_action(body).get("value") or "").partition("|")
    if not services.may_accept(user, ref, context.get("usergroups")):
        services.refused(user, "accept", ref[:200])
        _tell(
            respond,
            "Only Preflight admins and the item's owners can accept a risk. "
            "Your attempt was logged.",
        )
        return
    summary = _warning_summary(services, expected)
    if summary is None:
        _tell(
            respond, "That warning is not current any more: `/preflight status` shows the latest."
        )
        return
    client.views_open(
        trigger_id=body["trigger_id"],
        view=views.accept_modal(ref, expected, summary, _channel(body)),
    )


def _warning_summary(services: Any, expected: str) -> str | None:
    """The WARN the button was for, if it is still the current result of its check."""
    for result in services.latest_results().values():
        if result.status is Status.WARN and fingerprint(result) == expected:
            return f"{result.check_id} WARN: {result.summary}"
    return None


def accept_submitted(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, client: WebClient
) -> None:
    services = context["services"]
    values = view.get("state", {}).get("values", {})
    reason = ((values.get("reason") or {}).get("value") or {}).get("value") or ""
    ref, expected, channel = [*(view.get("private_metadata") or "").split("|"), "", ""][:3]
    user = _user(body)
    try:
        accepted = services.accept(
            ref,
            user,
            reason,
            authorized=services.is_admin(user, context.get("usergroups")),
            owner=lambda item: services.is_owner(user, item, context.get("usergroups")),
            source="slack",
            request_key=f"view:{view.get('id')}:{view.get('hash')}",
            expected=expected,
        )
    except (PreflightError, StoreError) as exc:
        ack(response_action="errors", errors={"reason": views.clip(str(exc), 150)})
        return
    ack()
    items = ", ".join(f"`{m.escape(a.item_id)}`" for a in accepted[:5])
    more = f" and {len(accepted) - 5} more" if len(accepted) > 5 else ""
    text = (
        f":large_yellow_circle: Accepted the warning for {items}{more}. A different result "
        "from the check blocks again."
    )
    try:
        client.chat_postEphemeral(channel=channel or user, user=user, text=text)
    except SlackApiError as exc:  # the acceptance is stored; a lost confirmation is no error
        log.info("acceptance confirmation not delivered: %s", exc.response.get("error"))
