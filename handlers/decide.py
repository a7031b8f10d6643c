"""/decide: vote on the checklist's open decisions; deciders close and reopen them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import decisions, views
from bot import messages as m
from bot.decisions import (
    Names,
    NotInChannel,
    mention,
    option_label,
    poll_message,
    record_markdown,
    record_names,
    refresh_polls_later,
    show_poll,
    tally,
)
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
    states = services.decision_states()
    lines = []
    for d in services.checklist.decisions:
        st = states.get(d.id)
        if st is not None and st.status == "accepted":
            lines.append(
                f"• *{m.escape(d.topic)}* — decided: {m.escape(option_label(d, st.chosen) or '')}"
            )
            continue
        votes = services.votes(d.id)
        counts = ", ".join(f"{m.escape(label)} {n}" for label, n, _ in tally(d, votes) if n)
        lines.append(f"• *{m.escape(d.topic)}* (`{d.id}`) — {counts or 'no votes yet'}")
    inv.reply(
        "Decisions",
        views.to_dicts([views.header("Decisions"), *views.lines_to_sections(lines, 40)]),
    )


def names_of(context: BoltContext) -> Names:
    """How people are shown: the app's users.info name cache when it put one in the context,
    else mentions (Slack renders them as names)."""
    found = context.get("names")
    return found if callable(found) else mention


def show(inv: Invocation) -> None:
    """`/decide TOPIC`: the poll in the channel, posted or brought back."""
    services = inv.services
    decision = services.find_decision(inv.sub)
    names = names_of(inv.context)
    inv.reply(m.poll_posted(decision.topic, decision.id))

    def post() -> None:
        try:
            show_poll(inv.client, services, decision, inv.channel, names)
        except NotInChannel as exc:
            _, blocks = poll_message(services, decision, names)
            inv.respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"{exc} Here is the poll meanwhile.",
                blocks=[*views.plain(f"{exc} Here is the poll meanwhile."), *blocks][:50],
            )

    inv.later(post)


def vote(inv: Invocation, option: str) -> None:
    decision, chosen = inv.services.vote(
        inv.sub, option, inv.user, source="slack", request_key=inv.request_key or None
    )
    inv.reply(
        f":ballot_box_with_ballot: Your vote on *{m.escape(decision.topic)}*: "
        f"{m.escape(chosen.label)}. You can change it any time."
    )
    refresh_polls_later(inv.later, inv.client, inv.services, decision, names_of(inv.context))


def close(inv: Invocation, rest: str) -> None:
    option, _, rationale = rest.partition(" ")
    if not option:
        inv.reply("Usage: `/decide TOPIC close OPTION [rationale]`.")
        return
    services = inv.services
    authorized = services.is_decider(inv.user, inv.context.get("usergroups"))
    decision, chosen = decisions.close(
        services,
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
        "The outcome is announced here, with the decision record attached."
    )
    names = names_of(inv.context)
    closed = (services.decision_state(decision.id), services.votes(decision.id))

    def announce() -> None:
        try:
            decisions.announce_close(
                inv.client, services, decision, inv.channel, names, closed=closed
            )
        except NotInChannel as exc:
            inv.respond(response_type="ephemeral", replace_original=False, text=str(exc))
        except SlackApiError as exc:
            inv.respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"I could not post the outcome here ({exc.response.get('error')}): "
                f"`/decide {decision.id} record` shows the record.",
            )

    inv.later(announce)


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
    names = names_of(inv.context)

    def announce() -> None:
        try:
            decisions.announce_reopen(
                inv.client, services, decision, inv.channel, inv.user, reason.strip(), names
            )
        except NotInChannel as exc:
            inv.respond(response_type="ephemeral", replace_original=False, text=str(exc))

    inv.later(announce)


def record(inv: Invocation, _: str) -> None:
    services = inv.services
    decision = services.find_decision(inv.sub)
    text = record_markdown(
        decision,
        services.decision_state(decision.id),
        services.votes(decision.id),
        record_names(names_of(inv.context)),
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
