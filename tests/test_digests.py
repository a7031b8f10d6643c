"""Readiness digests: schedules, what changed, the message, and posting it to (fake) Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import digests
from bot import messages as m
from bot.digests import BadSchedule, DigestNotPosted
from bot.model import ItemKind
from bot.services import Services
from bot.settings import Settings
from checks import registry
from checks.base import Check, CheckContext, Result, Status
from store import Store
from tests.support.slack_fake import BOT_TOKEN, FakeSlack
from tests.support.slack_payloads import MAX_SECTION_TEXT, validate_outbound
from tests.support.store_helpers import checklist, email_decision, item

CHANNEL = "C0DIGEST"
PROBE = "digest_probe"


class Probe:
    """A check the test flips between outcomes; registered only for the test."""

    def __init__(self) -> None:
        self.status = Status.FAIL
        self.summary = "probe target says no"
        self.runs = 0

    def run(self, ctx: CheckContext) -> Result:
        self.runs += 1
        return Result(self.status, self.summary, observations=1)


@pytest.fixture
def probe() -> Iterator[Probe]:
    found = Probe()
    registry.register(Check(id=PROBE, title="Digest probe", section="Security", run=found.run))
    try:
        yield found
    finally:
        registry.unregister(PROBE)


def make_services(tmp_path: Path, *items: Any) -> Services:
    """Services over a small hand-built checklist (no Markdown parsing, no bundled bindings)."""
    cl = checklist(
        *(
            items
            or (
                item("tls", "TLS certificate installed", kind=ItemKind.AUTOMATED, checks=(PROBE,)),
                item("backups", "Automated backups enabled", section="Backup"),
                item("email-decision", "Decision needed: email", section="Integrations",
                     kind=ItemKind.DECISION, decision_id="email-service"),
            )
        ),
        decisions=(email_decision("ses", "sendgrid"),),
    )  # fmt: skip
    db = tmp_path / "p.db"
    store = Store.open(db)
    store.import_checklist(cl)
    return Services(settings=Settings(preflight_db=str(db)), store=store, checklist=cl, env={})


@pytest.fixture
def services(tmp_path: Path, probe: Probe) -> Iterator[Services]:
    found = make_services(tmp_path)
    yield found
    found.store.close()


def posted(fake: FakeSlack) -> list[tuple[str, str]]:
    """(text, blocks as JSON) of every chat.postMessage, in order."""
    return [
        (c.text or "", json.dumps(c.blocks, ensure_ascii=False))
        for c in fake.calls_to("chat.postMessage")
    ]


def assert_valid(fake: FakeSlack) -> None:
    calls = fake.calls_to("chat.postMessage")
    assert validate_outbound(calls, text_required_for=("chat.postMessage",)) == []
    for call in calls:
        for block in call.blocks or []:
            assert len((block.get("text") or {}).get("text", "")) <= MAX_SECTION_TEXT


# ---- schedules and subscriptions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "schedule"),
    [("9:00", "09:00"), ("09:00", "09:00"), (" 17:30 ", "17:30"), ("0:05", "00:05"),
     ("23:59", "23:59"), ("00:00", "00:00")],
)  # fmt: skip
def test_parse_time_accepts_24_hour_times(typed: str, schedule: str) -> None:
    assert digests.parse_time(typed) == schedule


@pytest.mark.parametrize(
    "typed",
    ["25:00", "24:00", "9:60", "0900", "9am", "9:00pm", "", "   ", "<!channel>", "x" * 10_000,
     "09:00:00", "-1:00", "9:5", "١٩:٠٠", "09:00\n<!here>", "daily 09:00"],
)  # fmt: skip
def test_parse_time_refuses_anything_else_in_one_clear_line(typed: str) -> None:
    with pytest.raises(BadSchedule) as refused:
        digests.parse_time(typed)
    message = str(refused.value)
    assert "HH:MM" in message
    assert "\n" not in message
    assert len(message) < 200
    # The edges escape error messages before showing them: nothing typed gets through as markup.
    assert "<!" not in m.escape(message)


@pytest.mark.parametrize(
    ("stored", "hour_minute"), [("09:00", (9, 0)), ("daily 17:30", (17, 30)), ("6:05", (6, 5))]
)
def test_schedule_time_reads_stored_schedules(stored: str, hour_minute: tuple[int, int]) -> None:
    assert digests.schedule_time(stored) == hour_minute


def test_subscribe_stores_the_normalised_time_and_audits(services: Services) -> None:
    sub = digests.subscribe(services, CHANNEL, "U1", "9:30")
    assert (sub.channel, sub.user, sub.schedule) == (CHANNEL, "U1", "daily 09:30 UTC")
    assert [(s.channel, s.schedule) for s in services.store.subscriptions()] == [
        (CHANNEL, "daily 09:30 UTC")
    ]
    entry = services.store.audit_log(limit=1)[0]
    assert (entry.actor, entry.action, entry.target, entry.detail, entry.source) == (
        "U1", "digest_subscribe", CHANNEL, "daily 09:30 UTC", "slack",
    )  # fmt: skip


def test_subscribe_defaults_to_nine_utc(services: Services) -> None:
    assert digests.subscribe(services, CHANNEL, "U1").schedule == "daily 09:00 UTC"


def test_a_bad_schedule_is_refused_and_nothing_is_stored(services: Services) -> None:
    calls: list[str] = []

    def hook() -> None:
        calls.append("reload")

    digests.add_reload_hook(hook)
    try:
        with pytest.raises(BadSchedule, match="not a time of day"):
            digests.subscribe(services, CHANNEL, "U1", "25:00")
    finally:
        digests.remove_reload_hook(hook)
    assert services.store.subscriptions() == []
    assert not [e for e in services.store.audit_log() if e.action == "digest_subscribe"]
    assert calls == []


def test_subscription_changes_reload_running_schedulers(services: Services) -> None:
    calls: list[str] = []

    def hook() -> None:
        calls.append("reload")

    digests.add_reload_hook(hook)
    try:
        digests.subscribe(services, CHANNEL, "U1", "08:00")
        assert digests.unsubscribe(services, CHANNEL, "U1") is True
        assert digests.unsubscribe(services, CHANNEL, "U1") is False  # nothing to stop: no reload
    finally:
        digests.remove_reload_hook(hook)
    assert calls == ["reload", "reload"]
    assert services.store.subscriptions() == []
    actions = [(e.action, e.detail) for e in services.store.audit_log(limit=2)]
    assert actions == [("digest_unsubscribe", "no subscription"), ("digest_unsubscribe", "")]


def test_a_failing_reload_hook_does_not_undo_the_subscription(services: Services) -> None:
    def broken() -> None:
        raise RuntimeError("scheduler is gone")

    digests.add_reload_hook(broken)
    try:
        sub = digests.subscribe(services, CHANNEL, "U1", "10:00")
    finally:
        digests.remove_reload_hook(broken)
    assert services.store.subscriptions() == [sub]


# ---- snapshots and changes ---------------------------------------------------------------


def test_snapshot_holds_what_the_next_digest_compares(services: Services, probe: Probe) -> None:
    services.run_checks(digests.digest_checks(services))
    snap = digests.snapshot(services.readiness())
    assert snap["gate"] == "BLOCKED"
    assert (snap["done"], snap["applicable"]) == (0, 3)
    assert snap["items"] == {"tls": "failing", "backups": "open", "email-decision": "open"}
    assert snap["checks"] == {PROBE: "FAIL"}
    assert snap["decisions_open"] == ["email-service"]
    assert snap["decisions_closed"] == []
    assert json.loads(json.dumps(snap)) == snap  # stored as JSON
    assert snap["computed_at"].endswith("+00:00")


def _snap(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "gate": "BLOCKED", "done": 0, "applicable": 2,
        "items": {"a": "open", "b": "open"}, "checks": {}, "decisions_open": [],
        "decisions_closed": [], "computed_at": "2026-03-01T09:00:00+00:00",
    }  # fmt: skip
    return base | overrides


def test_changes_with_no_previous_digest_is_empty() -> None:
    assert digests.changes(None, _snap()) == []
    assert digests.changes(_snap(), _snap()) == []


def test_changes_put_the_gate_first_and_regressions_before_progress() -> None:
    before = _snap(items={"a": "done", "b": "open"}, done=1, checks={"tls": "PASS", "dns": "FAIL"})
    after = _snap(
        gate="BLOCKED", items={"a": "failing", "b": "done"}, done=1,
        checks={"tls": "FAIL", "dns": "PASS", "new": "ERROR"},
    )  # fmt: skip
    lines = digests.changes(before, after)
    assert lines == [
        ":rewind: `a` no longer done (now failing)",
        ":red_circle: *tls* PASS → FAIL",
        ":warning: *new* no result → ERROR",
        ":white_check_mark: `b` done",
        ":large_green_circle: *dns* FAIL → PASS",
    ]
    flipped = digests.changes(_snap(gate="READY", done=2), _snap(done=1))
    assert flipped[:2] == [
        ":no_entry: Gate: READY → *BLOCKED*",
        ":bar_chart: Items done: 2/2 → 1/2",
    ]


def test_changes_report_decisions_and_checklist_edits() -> None:
    before = _snap(decisions_open=["email", "ci"], decisions_closed=["db"])
    after = _snap(
        items={"a": "open", "c": "open"}, decisions_open=["ci", "db"], decisions_closed=["email"]
    )
    lines = digests.changes(before, after)
    assert ":leftwards_arrow_with_hook: Decision `db` reopened" in lines
    assert ":ballot_box_with_check: Decision `email` closed" in lines
    assert ":page_facing_up: Checklist updated: 1 item added, 1 removed" in lines


def test_changes_are_bounded() -> None:
    many = {f"item-{i}": "open" for i in range(40)}
    lines = digests.changes(_snap(items=many), _snap(items=dict.fromkeys(many, "done"), done=40))
    assert len(lines) == digests.MAX_CHANGE_LINES + 1
    assert lines[0] == ":bar_chart: Items done: 0/2 → 40/2"
    assert lines[-1].startswith("… and 26 more changes")


# ---- posting -----------------------------------------------------------------------------


def test_first_digest(services: Services, fake_slack: FakeSlack, probe: Probe) -> None:
    digests.post(fake_slack.client(), services, CHANNEL)
    assert probe.runs == 1  # the bound, passive checks run first
    [call] = fake_slack.calls_to("chat.postMessage")
    assert call.data["channel"] == CHANNEL
    assert call.text == "Preflight digest: NOT READY — BLOCKED — 0/3 items done (0%)"
    blocks = json.dumps(call.blocks, ensure_ascii=False)
    assert "Preflight readiness digest" in blocks
    assert "*First digest*" in blocks
    # Blockers grouped by cause, with the status message's own renderer.
    assert "*Top blockers* (3 items, 3 causes)" in blocks
    assert f"{PROBE} FAIL: probe target says no" in blocks
    assert "`tls`" in blocks and "`backups`" in blocks
    assert "What changed" not in blocks
    snap = services.store.last_digest_snapshot(CHANNEL)
    assert snap is not None and snap["checks"] == {PROBE: "FAIL"}
    assert_valid(fake_slack)


def test_digest_after_a_signoff_and_a_check_flip(
    services: Services, fake_slack: FakeSlack, probe: Probe
) -> None:
    client = fake_slack.client()
    digests.post(client, services, CHANNEL)
    services.signoff("backups", "U1", note="restore tested")
    probe.status = Status.PASS
    digests.post(client, services, CHANNEL)
    text, blocks = posted(fake_slack)[1]
    assert text.endswith("— changed since the last digest")
    assert "2/3 items done (67%)" in text
    assert "*What changed since <!date^" in blocks
    for line in [
        ":bar_chart: Items done: 0/3 → 2/3",
        ":white_check_mark: `tls` done",
        ":white_check_mark: `backups` done",
        f":large_green_circle: *{PROBE}* FAIL → PASS",
    ]:
        assert line in blocks
    assert "First digest" not in blocks
    assert "*Top blockers* (1 items, 1 causes)" in blocks
    assert_valid(fake_slack)


def test_gate_flips_both_ways(services: Services, fake_slack: FakeSlack, probe: Probe) -> None:
    client = fake_slack.client()
    digests.post(client, services, CHANNEL)
    probe.status = Status.PASS
    services.signoff("backups", "U1")
    services.close_decision("email", "ses", "U1", "cheapest", authorized=True)
    digests.post(client, services, CHANNEL)
    probe.status = Status.FAIL
    digests.post(client, services, CHANNEL)
    (_, _), (ready_text, ready), (blocked_text, blocked) = posted(fake_slack)
    assert ready_text.startswith("Preflight digest: READY TO DEPLOY — 3/3")
    assert ":rocket: Gate: BLOCKED → *READY TO DEPLOY*" in ready
    assert ":ballot_box_with_check: Decision `email-service` closed" in ready
    assert "Top blockers" not in ready
    assert ":no_entry: Gate: READY → *BLOCKED*" in blocked
    assert ":rewind: `tls` no longer done (now failing)" in blocked
    assert f":red_circle: *{PROBE}* PASS → FAIL" in blocked
    assert blocked_text.startswith("Preflight digest: NOT READY")
    assert_valid(fake_slack)


def test_nothing_changed(services: Services, fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    digests.post(client, services, CHANNEL)
    digests.post(client, services, CHANNEL)
    text, blocks = posted(fake_slack)[1]
    assert text.endswith("— no changes since the last digest")
    assert "No changes since <!date^" in blocks
    assert "What changed" not in blocks


def test_without_running_checks_the_stored_results_are_used(
    services: Services, fake_slack: FakeSlack, probe: Probe
) -> None:
    digests.post(fake_slack.client(), services, CHANNEL, run_checks=False)
    assert probe.runs == 0
    snap = services.store.last_digest_snapshot(CHANNEL)
    assert snap is not None and snap["checks"] == {}


def test_active_and_unbound_checks_are_not_run_by_a_digest(services: Services) -> None:
    def never(ctx: CheckContext) -> Result:
        raise AssertionError("must not run")

    registry.register(Check(id="digest_active", title="a", section="S", run=never, active=True))
    try:
        assert [c.id for c in digests.digest_checks(services)] == [PROBE]
    finally:
        registry.unregister("digest_active")


@pytest.mark.parametrize(
    ("fault", "error"),
    [("http_500", "fatal_error"), ("channel_not_found", "channel_not_found"),
     ("not_in_channel", "not_in_channel")],
)  # fmt: skip
def test_a_failed_post_keeps_the_changes_for_the_next_digest(
    services: Services, fake_slack: FakeSlack, fault: str, error: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    client = fake_slack.client()
    digests.post(client, services, CHANNEL)
    first = services.store.last_digest_snapshot(CHANNEL)
    services.signoff("backups", "U1")
    if fault == "http_500":
        fake_slack.fail_next("chat.postMessage", status=500)
    else:
        fake_slack.error_next("chat.postMessage", fault)
    with pytest.raises(DigestNotPosted) as refused:
        digests.post(client, services, CHANNEL)
    assert refused.value.error == error
    assert f"Slack said `{error}`" in str(refused.value)
    assert services.store.last_digest_snapshot(CHANNEL) == first
    assert any(error in r.getMessage() for r in caplog.records)
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)

    digests.post(client, services, CHANNEL)  # the change is still news
    assert ":white_check_mark: `backups` done" in posted(fake_slack)[-1][1]


def test_a_failed_first_post_stays_a_first_digest(
    services: Services, fake_slack: FakeSlack
) -> None:
    fake_slack.error_next("chat.postMessage", "channel_not_found")
    with pytest.raises(DigestNotPosted):
        digests.post(fake_slack.client(), services, CHANNEL)
    assert services.store.last_digest_snapshot(CHANNEL) is None
    digests.post(fake_slack.client(), services, CHANNEL)
    assert "*First digest*" in posted(fake_slack)[-1][1]


def test_checklist_and_check_text_cannot_inject_markup(
    tmp_path: Path, fake_slack: FakeSlack, probe: Probe
) -> None:
    services = make_services(
        tmp_path,
        item("tls", "<!channel> rotate & <https://evil.example|click here>",
             kind=ItemKind.AUTOMATED, checks=(PROBE,)),
        item("backups", "Backups <@U999> <#C999>", section="<!here> Backup & Restore"),
    )  # fmt: skip
    probe.summary = "<!everyone> certificate <https://evil.example|expired>"
    client = fake_slack.client()
    digests.post(client, services, CHANNEL)
    probe.status = Status.PASS
    digests.post(client, services, CHANNEL)
    for text, blocks in posted(fake_slack):
        for sent in (text, blocks):
            for markup in ("<!channel", "<!here", "<!everyone", "<https://", "<@u999", "<#c"):
                assert markup not in sent.lower()
    blocks = posted(fake_slack)[0][1]
    assert "&lt;!everyone&gt; certificate" in blocks
    assert "&lt;!Here&gt; Backup &amp; Restore" in blocks  # section titles are title-cased
    assert_valid(fake_slack)
    services.store.close()


def test_the_bundled_checklist_digest_fits_slack_limits(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    services = Services.from_settings(Settings(preflight_db=str(tmp_path / "p.db")), env={})
    try:
        readiness = services.readiness()
        assert readiness.total > 100
        # A previous digest in which everything was done: every item is a change now.
        previous = digests.snapshot(readiness)
        previous |= {
            "gate": "READY",
            "done": readiness.total,
            "items": dict.fromkeys(previous["items"], "done"),
        }
        services.store.save_digest_snapshot(CHANNEL, previous)
        # No check runs: the bundled checks would reach for the document's real hosts.
        digests.post(fake_slack.client(), services, CHANNEL, run_checks=False)
        [call] = fake_slack.calls_to("chat.postMessage")
        blocks = json.dumps(call.blocks, ensure_ascii=False)
        assert ":no_entry: Gate: READY → *BLOCKED*" in blocks
        assert f"… and {readiness.total + 2 - digests.MAX_CHANGE_LINES} more changes" in blocks
        assert len(call.blocks or []) <= 15
        assert_valid(fake_slack)
    finally:
        services.store.close()
