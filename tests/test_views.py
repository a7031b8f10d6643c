"""Block Kit layouts stay inside Slack's limits however big the checklist or the results."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import views
from bot.model import Checklist, Decision, Item, ItemKind, Option, Runbook
from bot.readiness import compute
from checks.base import Result, Status
from tests.support.slack_payloads import validate_blocks, validate_view

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _huge() -> Checklist:
    sections = tuple(f"SECTION {n} " + "X" * 200 for n in range(30))
    items = tuple(
        Item(
            f"s{n}/item-{k}",
            sections[n],
            (sections[n],),
            f"Item {k} <!channel> " + "y" * 400,
            ItemKind.AUTOMATED,
            k,
            checks=(f"check_{k % 60}",),
        )
        for n in range(30)
        for k in range(40)
    )
    decisions = tuple(
        Decision(
            f"d{n}", f"Decision {n}", "?", tuple(Option(f"o{k}", f"Option {k}") for k in range(30))
        )
        for n in range(40)
    )
    return Checklist("huge", sections, items, decisions=decisions)


def _results() -> list[Result]:
    return [
        Result(
            Status.FAIL,
            "broken <!here> " + "z" * 3000,
            check_id=f"check_{k}",
            remediation="fix " * 500,
            observed_at=NOW,
        )
        for k in range(60)
    ]


def test_status_and_check_messages_fit_any_size() -> None:
    checklist = _huge()
    results = _results()
    readiness = compute(checklist, {}, {r.check_id: r for r in results}, {}, now=NOW)
    for blocks in (
        views.status_final(readiness, results),
        views.status_final(readiness, results, "SECTION 1"),
        views.status_progress(60, results, readiness),
        views.check_results(results),
    ):
        assert len(blocks) <= 50
        assert validate_blocks(blocks) == []
        assert "<!channel>" not in str(blocks) and "<!here>" not in str(blocks)


def test_home_view_fits_within_100_blocks() -> None:
    checklist = _huge()
    readiness = compute(checklist, {}, {}, {}, now=NOW)
    runbook = Runbook("rb", "R" * 300, tuple(f"step {n}" for n in range(200)))
    view = views.home(
        readiness,
        readiness.blockers,
        [(d, None) for d in checklist.decisions],
        [(n, runbook, 3) for n in range(30)],
    )
    data = view.to_dict()
    assert len(data["blocks"]) <= 100
    assert validate_view(data) == []


def test_runbook_message_and_vote_buttons_fit() -> None:
    from store import RunbookRun

    runbook = Runbook("rb", "Big", tuple(f"step {n} " + "s" * 300 for n in range(200)))
    run = RunbookRun(1, "rb", "U1", NOW, "C1", None, None, None, [])
    assert validate_blocks(views.runbook_message(runbook, run, 0)) == []
    decision = _huge().decisions[0]
    blocks = views.to_dicts(views.vote_buttons(decision))
    assert validate_blocks(blocks) == []


def test_grouped_blockers_with_accept_buttons_fit_any_size() -> None:
    checklist = _huge()
    warns = [
        Result(Status.WARN, "weak <!here> " + "w" * 3000, check_id=f"check_{k}", observed_at=NOW)
        for k in range(60)
    ]
    readiness = compute(checklist, {}, {r.check_id: r for r in warns}, {}, now=NOW)
    assert len(readiness.blocker_groups) == 40  # items use check_0 … check_39
    for blocks in (
        views.status_final(readiness, warns),
        views.status_final(readiness, warns, "SECTION 1"),
    ):
        assert len(blocks) <= 50
        assert validate_blocks(blocks) == []
        buttons = [
            b for b in blocks if b.get("accessory", {}).get("action_id") == views.ACCEPT_OPEN
        ]
        assert 1 <= len(buttons) <= views.MAX_ACCEPT_BUTTONS
        assert "<!here>" not in str(blocks) and "<!channel>" not in str(blocks)
    state = readiness.items[0]
    detail = views.item_detail(state, checklist)
    assert validate_blocks(detail) == []
    assert views.ACCEPT_OPEN in str(detail)
    modal = views.accept_modal("s0/item-0", "f" * 16, "x" * 5000, "C1").to_dict()
    assert validate_view(modal) == []


def test_an_overridden_item_is_labelled_as_such() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Sig:
        user: str
        at: datetime = NOW
        note: str = ""
        na_reason: str | None = None

    @dataclass(frozen=True)
    class Over:
        user: str
        reason: str
        at: datetime = NOW

    checklist = _huge()
    item = checklist.items[0]
    fail = Result(Status.FAIL, "broken", check_id=item.checks[0], observed_at=NOW)
    readiness = compute(
        checklist,
        {item.id: [Sig("carol")]},
        {fail.check_id: fail},
        {},
        now=NOW,
        overrides={item.id: [Over("carol", "vendor outage")]},
    )
    state = readiness.state(item.id)
    assert state is not None and state.overridden
    detail = views.item_detail(state, checklist)
    assert "*OVERRIDDEN*" in str(detail) and validate_blocks(detail) == []
    status = views.status_final(readiness, [fail])
    assert "*OVERRIDDEN*" in str(status) and validate_blocks(status) == []


@pytest.mark.parametrize("text", ["", "   ", "Your vote: *SES*", "x" * 5000, "<@U1> & <b>"])
def test_plain_builds_what_the_block_objects_would(text: str) -> None:
    assert views.plain(text) == views.to_dicts([views.section(text)])
