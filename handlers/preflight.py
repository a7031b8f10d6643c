"""/preflight: readiness, checks, items and sign-offs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import live_status, views
from bot import messages as m
from bot.errors import UnknownItemRef
from bot.people import same
from bot.readiness import Gate, Readiness
from checks.base import Check
from handlers.common import Invocation, answering, parse

log = logging.getLogger("preflight.handlers")
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def command(
    ack: Ack, respond: Respond, client: WebClient, context: BoltContext, command: dict[str, Any]
) -> None:
    inv = parse(ack, respond, client, context, command, m.help_preflight)
    if inv is None:
        return
    handler = SUBCOMMANDS.get(inv.sub)
    if handler is None:
        inv.reply(m.help_preflight(unknown=inv.sub))
        return
    with answering(inv):
        handler(inv)


def status(inv: Invocation) -> None:
    services = inv.services
    section = inv.args or None
    checks = live_status.checks_for_section(services, section)  # raises for an unknown section
    runs = inv.context["status_runs"]
    shown = runs.claim(inv.channel, section, checks)
    if shown is not None:
        inv.reply(m.status_already_shown(shown))
        return
    try:
        inv.ack(response_type="ephemeral", text=f"Checking {len(checks)} checks…")
        inv.later(
            lambda: runs.run(
                inv.client, services, inv.channel, section, checks, inv.respond, claimed=True
            )
        )
    except BaseException:
        runs.release(inv.channel, section, checks)  # no run() will come to show the message
        raise


def check(inv: Invocation) -> None:
    words = inv.args.split()
    active = "active" in (w.lower() for w in words)
    refs = [w for w in words if w.lower() != "active"] or ["all"]
    services = inv.services
    selected: list[Check] = []
    for ref in refs:
        selected.extend(c for c in services.checks_for(ref) if c not in selected)
    if active and not services.is_admin(inv.user, inv.context.get("usergroups")):
        services.refused(inv.user, "check_active", ",".join(c.id for c in selected))
        inv.reply(
            "Active checks send traffic; only Preflight admins can run them. "
            "Your attempt was logged."
        )
        return
    inv.ack(response_type="ephemeral", text=f"Running {len(selected)} checks…")

    def run() -> None:
        results = services.run_checks(selected, allow_active=active)
        blocks = views.check_results(results)
        inv.respond(response_type="ephemeral", text=f"{len(results)} checks ran.", blocks=blocks)

    inv.later(run)


def item(inv: Invocation) -> None:
    if not inv.args:
        raise UnknownItemRef("Which item? `/preflight item ID` — ids are shown in `status`.")
    services = inv.services
    found = services.find_item(inv.args)
    state = services.readiness().state(found.id)
    assert state is not None
    names = inv.context.get("names") or same
    inv.reply(
        f"{found.id}: {state.status.value}", views.item_detail(state, services.checklist, names)
    )


def signoff(inv: Invocation) -> None:
    ref, _, note = inv.args.partition(" ")
    if not ref:
        raise UnknownItemRef("Which item? `/preflight signoff ID [note]`.")
    services = inv.services
    flag, _, reason = note.strip().partition(" ")
    if flag.lower() == "--override":
        found = services.override(
            ref,
            inv.user,
            reason,
            authorized=services.is_admin(inv.user, inv.context.get("usergroups")),
            source="slack",
            request_key=inv.request_key or None,
        )
        inv.reply(
            f":large_orange_diamond: Overrode `{found.id}`: done as *overridden*, whatever its "
            "checks say. `/preflight unsign` withdraws it."
        )
        return
    signed = services.signoff(
        ref, inv.user, note=note.strip(), source="slack", request_key=inv.request_key or None
    )
    state = services.item_state(signed.id)
    if state.done:
        inv.reply(f":white_check_mark: Signed off `{signed.id}` — {m.escape(signed.text)}")
    else:
        inv.reply(
            f":white_check_mark: Signed off `{signed.id}` — the sign-off is stored, but the item "
            f"is {m.escape(m.still_blocked(state))}."
        )


def unsign(inv: Invocation) -> None:
    if not inv.args:
        raise UnknownItemRef("Which item? `/preflight unsign ID`.")
    found, removed = inv.services.unsign(
        inv.args.split()[0], inv.user, source="slack", request_key=inv.request_key or None
    )
    if removed:
        inv.reply(f"Withdrew your sign-off of `{found.id}`.")
    else:
        inv.reply(f"You have no sign-off on `{found.id}`; nothing changed.")


def assign(inv: Invocation) -> None:
    ref, _, who = inv.args.partition(" ")
    match = _MENTION.match(who.strip())
    if not ref or not match:
        inv.reply("Usage: `/preflight assign ID @person` (mention the person).")
        return
    found = inv.services.assign(
        ref,
        match.group(1),
        inv.user,
        source="slack",
        groups=inv.context.get("usergroups"),
        trusted=False,
    )
    assignee = match.group(1)
    inv.reply(f"Assigned `{found.id}` to <@{assignee}>. They get a message with how to verify it.")
    services = inv.services

    def tell_assignee() -> None:
        # A user id as the channel: the app's messages tab with that person (chat:write only).
        state = services.item_state(found.id)
        blocks = views.assignment_message(state, services.checklist, inv.user)
        text = m.assigned_to_you(found.id, found.text, inv.user)
        try:
            inv.client.chat_postMessage(channel=assignee, text=text, blocks=blocks)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            inv.respond(response_type="ephemeral", text=m.not_posted(f"<@{assignee}>", error))

    inv.later(tell_assignee)


def gate(inv: Invocation) -> None:
    """The verdict, privately; `gate post` tells the channel (the launch call is everyone's)."""
    action = inv.args.strip().lower()
    if action not in ("", "post"):
        inv.reply("Usage: `/preflight gate [post]`.")
        return
    text = gate_text(inv.services.readiness())
    if action != "post":
        inv.reply(text)
        return
    inv.ack(response_type="ephemeral", text="Posting the verdict to the channel…")

    def post() -> None:
        said = f"{text}\n_Asked for by <@{inv.user}> · `/preflight status` has the detail._"
        try:
            inv.client.chat_postMessage(channel=inv.channel, text=said, blocks=views.plain(said))
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            inv.respond(response_type="ephemeral", text=m.not_posted("this channel", error))

    inv.later(post)


def gate_text(readiness: Readiness) -> str:
    if readiness.gate is Gate.READY:
        extras = views.extras_lines(readiness)
        return "\n".join(
            [":rocket: *READY TO DEPLOY* — every applicable item is done.", *extras[:10]]
        )
    if readiness.nothing_to_verify:
        return f":no_entry: *{m.escape(m.nothing_to_verify())}*"
    groups = readiness.blocker_groups
    lines = [views.group_lines(g) for g in groups[:5]]
    if len(groups) > 5:
        lines.append(f"… and {len(groups) - 5} more causes: `/preflight status` lists them")
    return (
        f":no_entry: *BLOCKED* — {len(readiness.blockers)} items block the launch "
        f"({len(groups)} causes).\n" + "\n".join(lines)
    )


def digest(inv: Invocation) -> None:
    from bot import digests

    words = inv.args.split()
    action = words[0].lower() if words else ""
    if action not in ("subscribe", "unsubscribe", "now"):
        inv.reply(m.digest_usage())  # a bare `digest` explains itself and posts nothing
        return
    services = inv.services
    if not services.is_admin(inv.user, inv.context.get("usergroups")):
        services.refused(inv.user, f"digest_{action}", inv.channel)
        inv.reply("Only Preflight admins can manage digests. Your attempt was logged.")
        return
    if action == "subscribe":
        _subscribe(inv, words[1:])
    elif action == "unsubscribe":
        removed = digests.unsubscribe(services, inv.channel, inv.user)
        inv.reply(
            "Digest stopped for this channel."
            if removed
            else "This channel has no digest; nothing changed."
        )
    else:
        inv.ack(response_type="ephemeral", text="Posting the digest…")

        def post() -> None:
            try:
                digests.post(inv.client, services, inv.channel)
            except digests.DigestNotPosted as exc:
                inv.respond(response_type="ephemeral", text=str(exc))

        inv.later(post)


def _subscribe(inv: Invocation, words: list[str]) -> None:
    """`subscribe [daily|weekdays|weekly DAY] [HH:MM] [Area/City]`; without a zone, the
    subscriber's own from their Slack profile (users.info), looked up after the ack."""
    from bot import digests

    services = inv.services
    typed = digests.parse_schedule(words)  # a typo is refused here, before the ack
    if any("/" in w or w.upper() == "UTC" for w in words):
        sub = digests.subscribe(services, inv.channel, inv.user, typed)
        inv.reply(_subscribed(services, sub.schedule))
        return
    inv.ack(response_type="ephemeral", text="Subscribing this channel…")

    def with_profile_zone() -> None:
        zone = _profile_zone(inv)
        note = m.digest_zone_from_profile(zone) if zone else m.digest_zone_unknown()
        try:
            schedule = digests.parse_schedule(words, default_zone=zone)
        except digests.BadSchedule:  # a zone Slack knows but this machine's tzdata does not
            schedule, note = typed, m.digest_zone_unknown()
        sub = digests.subscribe(services, inv.channel, inv.user, schedule)
        inv.respond(response_type="ephemeral", text=_subscribed(services, sub.schedule, note))

    inv.later(with_profile_zone)


def _profile_zone(inv: Invocation) -> str | None:
    try:
        user = inv.client.users_info(user=inv.user).get("user") or {}
    except SlackApiError as exc:
        log.info("users.info for the digest's time zone failed: %s", exc.response.get("error"))
        return None
    zone = user.get("tz")
    return zone if isinstance(zone, str) and zone else None


def _subscribed(services: Any, stored: str, note: str = "") -> str:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot import digests

    schedule = digests.stored_schedule(stored)
    nxt = schedule.next_slot(datetime.now(UTC)).astimezone(ZoneInfo(schedule.zone))
    return m.digest_subscribed(schedule.describe(), f"{nxt:%a %d %b %H:%M} {schedule.zone}", note)


def export(inv: Invocation) -> None:
    fmt = (inv.args.split() or ["markdown"])[0].lower()
    if fmt not in ("markdown", "json", "md"):
        inv.reply("Usage: `/preflight export [markdown|json]`.")
        return
    services = inv.services
    names = inv.context.get("names") or same
    inv.ack(response_type="ephemeral", text="Preparing the export…")

    def upload() -> None:
        if fmt == "json":
            content = json.dumps(services.export_json(names), indent=2, default=str)
            name = "preflight.json"
        else:
            content, name = services.export_markdown(names), "preflight.md"
        inv.client.files_upload_v2(
            channel=inv.channel, content=content, filename=name, title="Preflight checklist export"
        )

    inv.later(upload)


def help_(inv: Invocation) -> None:
    inv.reply(m.help_preflight())


SUBCOMMANDS: dict[str, Callable[[Invocation], None]] = {
    "status": status,
    "check": check,
    "item": item,
    "signoff": signoff,
    "unsign": unsign,
    "assign": assign,
    "gate": gate,
    "digest": digest,
    "export": export,
    "help": help_,
}
