"""The gate through the real Bolt app: grouped blockers, the Accept risk button (admins only,
refusals audited), overrides, sign-offs that still block, and bad input answered privately."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import views
from bot.readiness import GroupKind
from checks import registry
from tests.support.gate import Probes, bound, probes, write_checklist
from tests.support.slack_app import ADMIN, SlackApp


@pytest.fixture
def gated(slack: SlackApp, tmp_path: Path) -> Iterator[tuple[SlackApp, Probes]]:
    """The team's small checklist current in the running bot, its checks run once."""
    with probes() as found:
        slack.services.load(bound(write_checklist(tmp_path)))
        rerun(slack, found)
        yield slack, found


def rerun(slack: SlackApp, found: Probes) -> None:
    checks = [c for c in (registry.get(i) for i in found.ids) if c is not None]
    slack.services.run_checks(checks)


def counts(slack: SlackApp) -> tuple[int, int, int]:
    store = slack.store
    return (
        store.signoff_count(),
        len(store.acceptances()),
        sum(len(v) for v in store.overrides().values()),
    )


def warning_button(slack: SlackApp) -> str:
    group = next(
        g for g in slack.services.readiness().blocker_groups if g.kind is GroupKind.WARNING
    )
    ref = group.check_id if group.count > 1 else group.item_ids[0]
    return views.accept_value(ref, group.fingerprint or "")


def test_gate_groups_blockers_by_cause_with_what_to_do(gated: tuple[SlackApp, Probes]) -> None:
    slack, _ = gated
    reply = slack.reply("gate")
    text = reply["text"]
    assert "*BLOCKED*" in text and "items block the launch" in text
    assert text.count("api.example.com does not resolve") == 1
    assert "zz_gate_dns FAIL: api.example.com does not resolve — blocks 5 items" in text
    assert "*Accept risk*" in text  # the WARN's next action
    assert "`/preflight signoff ops/runbook`" not in text or "signoff ops/runbook" in text


def test_status_message_groups_blockers_and_offers_accept_risk(
    gated: tuple[SlackApp, Probes],
) -> None:
    slack, _ = gated
    slack.reply("status")
    slack.settle()
    final = slack.fake.calls_to("chat.update")[-1]
    blocks = final.payload["blocks"]
    body = json.dumps(blocks)
    assert "Top blockers" in body
    assert body.count("api.example.com does not resolve") == 1 and "blocks 5 items" in body
    buttons = [
        b["accessory"]
        for b in blocks
        if b.get("accessory", {}).get("action_id") == views.ACCEPT_OPEN
    ]
    assert [b["value"] for b in buttons] == [warning_button(slack)]
    assert "advisory (does not block)" in body and "zz_gate_logs" in body


def test_accept_risk_is_refused_to_non_admins_and_the_refusal_is_audited(
    gated: tuple[SlackApp, Probes],
) -> None:
    slack, _ = gated
    slack.action(views.ACCEPT_OPEN, warning_button(slack), user_id="U123")
    reply = slack.fake.wait_for("response_url")[0]
    assert reply.payload["response_type"] == "ephemeral"
    assert "Only Preflight admins and the item's owners can accept a risk" in reply.payload["text"]
    assert slack.fake.calls_to("views.open") == []
    refused = [e for e in slack.store.audit_log() if e.action == "accept"]
    assert refused and refused[0].allowed is False and refused[0].actor == "U123"
    assert slack.store.acceptances() == []
    # a forged submission of the modal is refused too
    ref, fp = warning_button(slack).split("|")
    slack.submit(
        views.ACCEPT_MODAL, {"reason": {"value": "fine"}}, private_metadata=f"{ref}|{fp}|C123"
    )
    assert "Only Preflight admins" in json.dumps(slack.responses[-1])
    assert slack.store.acceptances() == []


def test_an_admin_accepts_a_warning_and_a_different_warning_blocks_again(
    gated: tuple[SlackApp, Probes],
) -> None:
    slack, found = gated
    value = warning_button(slack)
    slack.action(views.ACCEPT_OPEN, value, user_id=ADMIN)
    opened = slack.fake.wait_for("views.open")[0].payload["view"]
    assert opened["callback_id"] == views.ACCEPT_MODAL
    assert "TLS 1.0 accepted" in json.dumps(opened)
    metadata = opened["private_metadata"]
    # no reason: the modal says so and nothing is stored
    slack.submit(
        views.ACCEPT_MODAL, {"reason": {"value": "  "}}, private_metadata=metadata, user_id=ADMIN
    )
    assert slack.responses[-1]["response_action"] == "errors"
    assert slack.store.acceptances() == []
    slack.submit(
        views.ACCEPT_MODAL,
        {"reason": {"value": "\x1b[31mone partner\x1b[0m until May"}},
        private_metadata=metadata,
        user_id=ADMIN,
    )
    (accepted,) = slack.store.acceptances()
    assert (accepted.item_id, accepted.user, accepted.reason) == (
        "sec/tls",
        ADMIN,
        "one partner until May",
    )
    confirm = slack.fake.wait_for("chat.postEphemeral")[0]
    assert "Accepted the warning for `sec/tls`" in confirm.payload["text"]
    assert "zz_gate_tls" not in slack.reply("gate")["text"]

    found.tls.summary = "TLS 1.1 accepted on api.example.com:443"
    rerun(slack, found)
    assert "zz_gate_tls WARN: TLS 1.1 accepted" in slack.reply("gate")["text"]
    # the old button names the old result: it is not accepted unseen
    slack.action(views.ACCEPT_OPEN, value, user_id=ADMIN)
    stale = slack.fake.wait_for("response_url")[-1]
    assert "not current any more" in stale.payload["text"]
    assert len(slack.store.acceptances()) == 1


def test_signoff_of_a_failing_item_says_it_still_blocks_and_override_needs_an_admin(
    gated: tuple[SlackApp, Probes],
) -> None:
    slack, _ = gated
    reply = slack.reply("signoff net/dns-1 checked by hand")
    assert "Signed off `net/dns-1`" in reply["text"]
    assert "still blocked by zz_gate_dns: FAIL api.example.com does not resolve" in reply["text"]
    assert [s.user for s in slack.store.signoffs()["net/dns-1"]] == ["U123"]

    before = counts(slack)
    refused = slack.reply("signoff net/dns-1 --override internal host")
    assert "Only Preflight admins can override" in refused["text"]
    assert counts(slack) == before
    assert [e.allowed for e in slack.store.audit_log() if e.action == "override"] == [False]

    assert "Give a reason" in slack.reply("signoff net/dns-1 --override", user=ADMIN)["text"]
    done = slack.reply("signoff net/dns-1 --override internal-only host", user=ADMIN)
    assert "Overrode `net/dns-1`" in done["text"] and "*overridden*" in done["text"]
    item = slack.reply("item net/dns-1")
    assert item["text"] == "net/dns-1: overridden"
    assert "*OVERRIDDEN*" in json.dumps(item["blocks"])
    assert "blocks 4 items" in slack.reply("gate")["text"]


@pytest.mark.parametrize(
    ("text", "user", "message"),
    [
        ("signoff %", "U123", "No checklist item matches"),
        ("signoff ctl", "U123", "No checklist item matches"),
        ("item ctl", "U123", "No checklist item matches"),
        ("signoff dn", "U123", "No checklist item matches"),
        ("signoff ops/runbook", "", "--as NAME"),
        ("signoff ops/runbook", "   ", "--as NAME"),
    ],
)
def test_bad_input_is_answered_privately_and_changes_nothing(
    gated: tuple[SlackApp, Probes], text: str, user: str, message: str
) -> None:
    slack, _ = gated
    before = counts(slack)
    reply = slack.reply(text, user=user)
    assert reply["response_type"] == "ephemeral" and message in reply["text"]
    assert len(reply["text"].splitlines()) == 1
    assert counts(slack) == before


def test_notes_lose_ansi_escapes_and_control_characters(gated: tuple[SlackApp, Probes]) -> None:
    slack, _ = gated
    slack.reply("signoff ops/runbook \x1b[2Jreviewed\x07 by\x1b[1m ops\x1b[0m")
    assert slack.store.signoffs()["ops/runbook"][0].note == "reviewed by ops"
    slack.submit(
        views.SIGNOFF_MODAL,
        {"note": {"value": "\x1b]8;;http://x\x07restored\x1b]8;;\x07 in 40 min\u202e"}},
        private_metadata="sec/logs|C123",
    )
    assert slack.store.signoffs()["sec/logs"][0].note == "restored in 40 min"


def test_the_items_section_owner_may_accept_its_risk(gated: tuple[SlackApp, Probes]) -> None:
    slack, _ = gated
    slack.services.settings.preflight_owners = {"security": ["UOWNER"]}
    value = warning_button(slack)
    slack.action(views.ACCEPT_OPEN, value, user_id="UOWNER")
    slack.fake.wait_for("views.open")
    ref, fp = value.split("|")
    slack.submit(
        views.ACCEPT_MODAL,
        {"reason": {"value": "TLS 1.0 kept for one legacy client until March"}},
        private_metadata=f"{ref}|{fp}|C123",
        user_id="UOWNER",
    )
    accepted = slack.store.acceptances()
    assert [(a.item_id, a.user) for a in accepted] == [("sec/tls", "UOWNER")]
    # an owner of another section is refused
    slack.services.settings.preflight_owners = {"ops": ["UOTHER"]}
    slack.action(views.ACCEPT_OPEN, value, user_id="UOTHER")
    refusal = slack.fake.wait_for("response_url", where=lambda c: "owners" in c.payload["text"])
    assert refusal
