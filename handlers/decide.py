"""/decide: vote on the checklist's open decisions; deciders close and reopen them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import messages as m
from bot import views
from bot.decisions import option_label, record_markdown, tally
from handlers.common import Invocation, answering, parse


def command(
    ack: Ack, respond: Respond, client: WebClient, context: BoltContext, command: dict[str, Any]
) -> None:
    inv = parse(ack, respond, client, context, command, m.help_decide)
    if inv is None:
        return
    with answering(inv):
        if inv.sub in ("list", "ls"):
            list_(inv)
            return
        # `/decide TOPIC [verb ...]`: the first word is the topic, never a verb.
        words = inv.args.split()
        verb = words[0].lower() if words else ""
        action = ACTIONS.get(verb)
        if not words:
            show(inv)
        elif action is not None:
            action(inv, " ".join(inv.args.split()[1:]))
        else:
            vote(inv, inv.args)


def list_(inv: Invocation) -> None:
    services = inv.services
    states = services.store.decision_states()
    lines = []
    for d in services.checklist.decisions:
        st = states.get(d.id)
        if st is not None and st.status == "accepted":
            lines.append(
                f"• *{m.escape(d.topic)}* — decided: {m.escape(option_label(d, st.chosen) or '')}"
            )
            continue
        votes = services.store.votes(d.id)
        counts = ", ".join(f"{m.escape(label)} {n}" for label, n, _ in tally(d, votes) if n)
        lines.append(f"• *{m.escape(d.topic)}* (`{d.id}`) — {counts or 'no votes yet'}")
    inv.reply(
        "Decisions",
        views.to_dicts([views.header("Decisions"), *views.lines_to_sections(lines, 40)]),
    )


def show(inv: Invocation) -> None:
    services = inv.services
    decision = services.find_decision(inv.sub)
    state = services.store.decision_state(decision.id)
    votes = services.store.votes(decision.id)
    mine = votes.get(inv.user)
    lines = [
        f"*{m.escape(decision.topic)}* — {m.escape(decision.question)}",
        f"State: {state.status}"
        + (
            f", chosen {m.escape(option_label(decision, state.chosen) or '')}"
            if state.chosen
            else ""
        ),
    ]
    for label, count, _ in tally(decision, votes):
        lines.append(f"• {m.escape(label)}: {count}")
    lines.append(
        f"Your vote: {m.escape(option_label(decision, mine) or 'none')} · "
        f"vote with `/decide {decision.id} OPTION`"
    )
    buttons = views.vote_buttons(decision) if state.status != "accepted" else []
    inv.reply(lines[0], views.to_dicts([views.section("\n".join(lines)), *buttons]))


def vote(inv: Invocation, option: str) -> None:
    decision, chosen = inv.services.vote(
        inv.sub, option, inv.user, source="slack", request_key=inv.request_key or None
    )
    inv.reply(
        f":ballot_box_with_ballot: Your vote on *{m.escape(decision.topic)}*: "
        f"{m.escape(chosen.label)}. You can change it any time."
    )


def close(inv: Invocation, rest: str) -> None:
    option, _, rationale = rest.partition(" ")
    if not option:
        inv.reply("Usage: `/decide TOPIC close OPTION [rationale]`.")
        return
    services = inv.services
    authorized = services.is_decider(inv.user, inv.context.get("usergroups"))
    decision, chosen = services.close_decision(
        inv.sub,
        option,
        inv.user,
        rationale.strip(),
        authorized=authorized,
        source="slack",
        request_key=inv.request_key or None,
    )
    inv.reply(
        f":white_check_mark: *{m.escape(decision.topic)}* decided: {m.escape(chosen.label)}. "
        "The decision record is posted here as a file."
    )
    record_text = record_markdown(
        decision, services.store.decision_state(decision.id), services.store.votes(decision.id)
    )

    def upload() -> None:
        try:
            inv.client.files_upload_v2(
                channel=inv.channel,
                content=record_text,
                filename=f"decision-{decision.id}.md",
                title=f"Decision record: {decision.topic}",
            )
        except SlackApiError as exc:
            inv.respond(
                response_type="ephemeral",
                text=f"I could not post the record here ({exc.response.get('error')}): "
                f"`/decide {decision.id} record` shows it.",
            )

    inv.later(upload)


def reopen(inv: Invocation, reason: str) -> None:
    services = inv.services
    authorized = services.is_decider(inv.user, inv.context.get("usergroups"))
    decision = services.reopen_decision(
        inv.sub,
        inv.user,
        reason,
        authorized=authorized,
        source="slack",
        request_key=inv.request_key or None,
    )
    inv.reply(f"*{m.escape(decision.topic)}* is open again.")


def record(inv: Invocation, _: str) -> None:
    services = inv.services
    decision = services.find_decision(inv.sub)
    text = record_markdown(
        decision, services.store.decision_state(decision.id), services.store.votes(decision.id)
    )
    inv.reply(
        f"Decision record: {decision.topic}",
        views.plain(f"```{views.clip(m.escape(text), 2990)}```"),
    )


ACTIONS: dict[str, Callable[[Invocation, str], None]] = {
    "close": close,
    "reopen": reopen,
    "record": record,
}
# What the manifest's usage hint documents; "TOPIC" stands for any decision id or alias.
SUBCOMMANDS: dict[str, Callable[..., None]] = {
    "list": list_,
    "TOPIC": show,
    "TOPIC OPTION": vote,
    "TOPIC close OPTION": close,
    "TOPIC reopen": reopen,
    "TOPIC record": record,
    "help": lambda inv: inv.reply(m.help_decide()),
}
