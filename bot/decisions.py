"""Decision records: a closed decision written up in the MADR layout.

https://adr.github.io/madr/ — status, deciders, date, context, considered options, outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import messages as m
from bot import views
from bot.errors import PreflightError
from bot.model import Decision, Option
from store import DecisionState

if TYPE_CHECKING:
    from bot.services import Services

Names = Callable[[str], str]
_RATIONALE_LEADS = ("because ", "since ", "as ")


def user_id(user: str) -> str:
    """The default name of a person: their id as written (records, files)."""
    return user


def mention(user: str) -> str:
    """The default name of a person in a Slack message: a mention, which Slack shows by name."""
    return f"<@{user}>"


def record_names(names: Names) -> Names:
    """Names for a record file or code block, where a mention would show as raw markup."""
    return user_id if names is mention else names


class QuorumNotReached(PreflightError):
    """Closing was refused: fewer votes than the decision's quorum."""


def quorum_of(decision: Decision, default: int) -> int:
    """Votes the decision needs before it can be closed: its own `<!-- quorum: N -->`, else
    the PREFLIGHT_QUORUM setting."""
    return decision.quorum if decision.quorum is not None else default


def require_quorum(votes: Mapping[str, str], quorum: int) -> None:
    """Raise QuorumNotReached ("2 of 3 votes: quorum not reached") below quorum."""
    if len(votes) < quorum:
        raise QuorumNotReached(f"{len(votes)} of {quorum} votes: quorum not reached.")


def rationale_text(rationale: str) -> str:
    """The rationale as it follows "because": a leading "because" typed by a person is
    dropped, so the record never reads "because because …"."""
    text = rationale.strip()
    lowered = text.lower()
    for lead in _RATIONALE_LEADS:
        if lowered.startswith(lead):
            return text[len(lead) :].strip()
    return text.rstrip(".")


def tally(decision: Decision, votes: Mapping[str, str]) -> list[tuple[str, int, list[str]]]:
    """(option label, count, voters) for every option, most votes first, ties in document order."""
    rows = [
        (
            o.label,
            sum(1 for v in votes.values() if v == o.id),
            sorted(u for u, v in votes.items() if v == o.id),
        )
        for o in decision.options
    ]
    return sorted(rows, key=lambda r: -r[1])


def option_label(decision: Decision, option_id: str | None) -> str | None:
    if option_id is None:
        return None
    return next((o.label for o in decision.options if o.id == option_id), option_id)


def record_markdown(
    decision: Decision,
    state: DecisionState,
    votes: Mapping[str, str],
    names: Names = user_id,
) -> str:
    """The MADR record; `names` renders user ids (display names where the caller has them)."""
    chosen = option_label(decision, state.chosen)
    date = state.closed_at.strftime("%Y-%m-%d") if state.closed_at else "—"
    lines = [
        f"# {decision.topic}",
        "",
        f"* Status: {'accepted' if state.status == 'accepted' else 'proposed'}",
        f"* Deciders: {', '.join(names(u) for u in state.deciders) or '—'}",
        f"* Date: {date}",
    ]
    if state.supersedes:
        lines.append(f"* Supersedes: {option_label(decision, state.supersedes)}")
    lines += [
        "",
        "## Context and Problem Statement",
        "",
        decision.question,
        "",
        "## Considered Options",
        "",
    ]
    lines += [f"* {o.label}" for o in decision.options]
    lines += ["", "## Decision Outcome", ""]
    if chosen:
        reason = rationale_text(state.rationale)
        why = f", because {reason.rstrip('.')}" if reason else ""
        lines.append(f'Chosen option: "{chosen}"{why}.')
    else:
        lines.append("Not decided yet.")
    lines += ["", "## Votes", "", "| Option | Votes | Voters |", "| --- | --- | --- |"]
    lines += [
        f"| {label} | {count} | {', '.join(names(v) for v in voters) or '—'} |"
        for label, count, voters in tally(decision, votes)
    ]
    return "\n".join(lines) + "\n"


# ---- the poll in the channel ---------------------------------------------------------------

log = logging.getLogger("preflight.decisions")
NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
# One refresh of a decision's polls at a time, each reading the state it renders inside the
# lock: concurrent votes can never leave an older tally as the last update.
_poll_locks: dict[str, threading.Lock] = {}
_poll_locks_guard = threading.Lock()


class NotInChannel(PreflightError):
    """Slack answered not_in_channel (or the like) for a post the person asked for."""


def _poll_lock(decision_id: str) -> threading.Lock:
    with _poll_locks_guard:
        return _poll_locks.setdefault(decision_id, threading.Lock())


def poll_message(
    services: Services, decision: Decision, names: Names = mention
) -> tuple[str, list[dict[str, Any]]]:
    """Notification text and blocks of decision's poll, from the stored state."""
    state = services.store.decision_state(decision.id)
    votes = services.store.votes(decision.id)
    quorum = quorum_of(decision, services.settings.preflight_quorum)
    rows = [
        (label, count, [names(v) for v in voters])
        for label, count, voters in tally(decision, votes)
    ]
    outcome = None if state.is_open else outcome_text(decision, state, votes, names)
    text = m.poll_text(decision.topic, len(votes), quorum, state.is_open)
    return text, views.decision_poll(decision, state.is_open, rows, quorum, outcome)


def outcome_text(
    decision: Decision, state: DecisionState, votes: Mapping[str, str], names: Names = mention
) -> str:
    """The announcement of a closed decision: option, rationale, deciders, votes."""
    counts = ", ".join(
        f"{m.escape(label)} {count}" for label, count, _ in tally(decision, votes) if count
    )
    return m.decision_outcome(
        m.escape(decision.topic),
        m.escape(option_label(decision, state.chosen) or "—"),
        m.escape(rationale_text(state.rationale)),
        ", ".join(names(u) for u in state.deciders) or "—",
        counts or "none",
        m.escape(option_label(decision, state.supersedes) or "") or None,
    )


def show_poll(
    client: WebClient, services: Services, decision: Decision, channel: str, names: Names = mention
) -> str:
    """Post decision's poll in channel, or bring back the stored one (updated in place); the
    poll message's ts. Raises NotInChannel when Slack says the bot can't post there."""
    with _poll_lock(decision.id):
        text, blocks = poll_message(services, decision, names)
        stored = services.store.poll(decision.id, channel)
        if stored is not None:
            try:
                client.chat_update(channel=channel, ts=stored.ts, text=text, blocks=blocks)
                return stored.ts
            except SlackApiError as exc:
                # Deleted or too old to edit: a new poll message replaces it.
                log.info("poll %s in %s not updated: %s", decision.id, channel, _error(exc))
        try:
            posted = client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            if _error(exc) in NOT_IN_CHANNEL:
                raise NotInChannel(m.not_in_channel("post the poll here")) from exc
            raise
        services.store.save_poll(decision.id, str(posted["channel"]), str(posted["ts"]))
        return str(posted["ts"])


@dataclass
class _Pending:
    """Refreshes asked for while one of the same decision was running."""

    again: bool = False
    also: list[tuple[str, str]] = field(default_factory=list)


_refreshing: dict[str, _Pending] = {}
REFRESH_INTERVAL_S = 1.0


def refresh_polls(
    client: WebClient,
    services: Services,
    decision: Decision,
    names: Names = mention,
    also: tuple[str, str] | None = None,
) -> int:
    """Update every stored poll message of decision (and `also`, a (channel, ts) the vote came
    from) in place; how many were updated. Never raises: the vote is stored either way.

    Refreshes of one decision coalesce: a call made while another is running only asks it for
    one more pass, which reads the state after this call's vote. Fifty votes in a second cost
    a few renders instead of fifty (each renders every voter's name), and the poll still ends
    on the latest tally (perf, issue 11: rendering per vote cost 80 % of a vote's CPU)."""
    pending = _claim_refresh(decision.id, also)
    return 0 if pending is None else _refresh_loop(pending, client, services, decision, names)


def refresh_polls_later(
    later: Callable[[Callable[[], None]], None],
    client: WebClient,
    services: Services,
    decision: Decision,
    names: Names = mention,
) -> None:
    """refresh_polls in the background (`later` runs a function there), handed off only when
    no refresh of the decision is already on its way: a burst of votes costs one hand-off
    instead of one thread wake-up each."""
    pending = _claim_refresh(decision.id, None)
    if pending is None:
        return

    def run() -> None:
        _refresh_loop(pending, client, services, decision, names)

    try:
        later(run)
    except BaseException:
        with _poll_locks_guard:
            _refreshing.pop(decision.id, None)
        raise


def _claim_refresh(decision_id: str, also: tuple[str, str] | None) -> _Pending | None:
    """The refresh to run, or None when one already running will make another pass."""
    with _poll_locks_guard:
        pending = _refreshing.get(decision_id)
        if pending is not None:
            pending.again = True
            if also is not None:
                pending.also.append(also)
            return None
        pending = _refreshing[decision_id] = _Pending(also=[also] if also else [])
        return pending


def _refresh_loop(
    pending: _Pending, client: WebClient, services: Services, decision: Decision, names: Names
) -> int:
    updated = 0
    try:
        while True:
            with _poll_locks_guard:
                extra, pending.also, pending.again = pending.also, [], False
            started = time.monotonic()
            updated += _refresh_once(client, services, decision, names, extra)
            with _poll_locks_guard:
                if not pending.again:
                    del _refreshing[decision.id]
                    return updated
            # Votes came in meanwhile: one more pass, a second after this one started (Slack
            # takes about one update a second per message; a burst then costs a pass a second).
            time.sleep(max(0.0, REFRESH_INTERVAL_S - (time.monotonic() - started)))
    except BaseException:
        with _poll_locks_guard:  # a failed pass must not leave later refreshes waiting on it
            _refreshing.pop(decision.id, None)
        raise


def _refresh_once(
    client: WebClient,
    services: Services,
    decision: Decision,
    names: Names,
    extra: list[tuple[str, str]],
) -> int:
    updated = 0
    with _poll_lock(decision.id):
        targets = [(p.channel, p.ts) for p in services.store.polls(decision.id)]
        targets += [t for t in dict.fromkeys(extra) if t not in targets]
        if not targets:
            return 0  # no poll in any channel: nothing to render
        text, blocks = poll_message(services, decision, names)
        for channel, ts in targets:
            try:
                client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
                updated += 1
            except SlackApiError as exc:
                log.info("poll %s in %s not updated: %s", decision.id, channel, _error(exc))
    return updated


def close(
    services: Services,
    topic: str,
    option_ref: str,
    user: str,
    rationale: str,
    *,
    authorized: bool,
    source: str = "slack",
    request_key: str | None = None,
) -> tuple[Decision, Option]:
    """Close a decision from Slack: a decider only, and only at quorum (raises
    QuorumNotReached with the count). The CLI, run with the operator's own access, closes
    through Services.close_decision directly."""
    decision = services.find_decision(topic)
    if authorized:
        state = services.store.decision_state(decision.id)
        if state.is_open:  # closing a closed decision is refused by the store as it always was
            require_quorum(
                services.store.votes(decision.id),
                quorum_of(decision, services.settings.preflight_quorum),
            )
    return services.close_decision(
        topic,
        option_ref,
        user,
        rationale,
        authorized=authorized,
        source=source,
        request_key=request_key,
    )


def announce_close(
    client: WebClient,
    services: Services,
    decision: Decision,
    channel: str,
    names: Names = mention,
    closed: tuple[Any, dict[str, str]] | None = None,
) -> None:
    """Tell the channel the outcome (text), attach the record in its thread, update the polls.
    `closed`: the state and votes read when it was closed, so a reopening that lands before
    this runs cannot change what the announcement says. Raises NotInChannel when the bot can't
    post there."""
    state, votes = closed or (
        services.store.decision_state(decision.id),
        services.store.votes(decision.id),
    )
    text = outcome_text(decision, state, votes, names)
    try:
        posted = client.chat_postMessage(channel=channel, text=text, blocks=views.plain(text))
    except SlackApiError as exc:
        if _error(exc) in NOT_IN_CHANNEL:
            raise NotInChannel(m.not_in_channel("announce the decision here")) from exc
        raise
    client.files_upload_v2(
        channel=str(posted["channel"]),
        thread_ts=str(posted["ts"]),
        content=record_markdown(decision, state, votes, record_names(names)),
        filename=f"decision-{decision.id}.md",
        title=f"Decision record: {decision.topic}",
    )
    refresh_polls(client, services, decision, names)


def announce_reopen(
    client: WebClient,
    services: Services,
    decision: Decision,
    channel: str,
    user: str,
    reason: str,
    names: Names = mention,
) -> None:
    """Tell the channel the decision is open again and make its polls live again."""
    text = m.decision_reopened(m.escape(decision.topic), names(user), m.escape(reason))
    try:
        client.chat_postMessage(channel=channel, text=text, blocks=views.plain(text))
    except SlackApiError as exc:
        if _error(exc) in NOT_IN_CHANNEL:
            raise NotInChannel(m.not_in_channel("announce the reopening here")) from exc
        raise
    finally:
        refresh_polls(client, services, decision, names)


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")
