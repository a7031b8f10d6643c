"""/preflight through the real Bolt app: signed requests in, fake Slack Web API out."""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

import pytest

from checks import registry
from checks.base import Check, CheckContext, Result, Status
from tests.support.slack_app import ADMIN, SlackApp
from tests.support.slack_payloads import validate_outbound


def test_help_and_empty_text_list_the_subcommands(slack: SlackApp) -> None:
    for text in ("", "help", "  ", "HELP"):
        reply = slack.reply(text)
        assert reply["response_type"] == "ephemeral"
        assert "/preflight status" in reply["text"]
        assert "/preflight signoff ID" in reply["text"]


def test_unknown_subcommand_is_named_escaped_and_answered_with_help(slack: SlackApp) -> None:
    reply = slack.reply("<!channel> deploy")
    assert "I don't know `&lt;!channel&gt;`" in reply["text"]
    assert "<!channel>" not in json.dumps(reply)


def test_status_acks_then_posts_and_updates_the_message_with_the_verdict(slack: SlackApp) -> None:
    reply = slack.reply("status")
    assert reply["text"].startswith("Checking ")  # the ack itself answers; checks run after
    posted = slack.fake.wait_for("chat.postMessage")[0]
    assert posted.payload["channel"] == "C123"
    assert "checking" in json.dumps(posted.payload["blocks"])
    slack.settle()
    final = slack.fake.calls_to("chat.update")[-1]
    assert {u.payload["ts"] for u in slack.fake.calls_to("chat.update")} == {final.payload["ts"]}
    assert final.payload["text"].startswith("NOT READY — BLOCKED")  # text travels with blocks
    body = json.dumps(final.payload["blocks"])
    assert "Top blockers" in body
    assert "preflight_rerun" in body and "preflight_show_section" in body
    assert "preflight_signoff_open" in body
    assert validate_outbound(slack.fake.calls) == []
    # every check ran once and was stored
    assert set(slack.store.latest_results()) == set(registry.all_checks())


def test_status_updates_at_most_once_a_second(slack: SlackApp) -> None:
    def slow(ctx: CheckContext) -> Result:
        time.sleep(0.25)
        return Result(Status.PASS, "slow but fine")

    checks = [Check(id=f"zz_slow_{i}", title="slow", section="Test", run=slow) for i in range(8)]
    for check in checks:
        registry.register(check)
    try:
        slack.reply("status")
        slack.settle()
    finally:
        for check in checks:
            registry.unregister(check.id)
    updates = slack.fake.calls_to("chat.update")
    progress = updates[:-1]
    for a, b in itertools.pairwise(progress):
        assert b.at - a.at >= 0.95


def test_status_of_a_section_runs_only_its_checks(slack: SlackApp) -> None:
    slack.reply("status security")
    slack.settle()
    final = slack.fake.calls_to("chat.update")[-1]
    assert "SECURITY" in json.dumps(final.payload["blocks"]).upper()
    ran = set(slack.store.latest_results())
    assert "tls_certificate" in ran and "db_connect" not in ran


def test_status_of_an_unknown_section_says_which_exist(slack: SlackApp) -> None:
    reply = slack.reply("status nosuchsection")
    assert "No section matches" in reply["text"] and "Security Requirements" in reply["text"]
    assert slack.fake.calls_to("chat.postMessage") == []


def test_status_falls_back_to_a_private_reply_when_the_bot_is_not_in_the_channel(
    slack: SlackApp,
) -> None:
    slack.fake.error_next("chat.postMessage", error="not_in_channel")
    slack.reply("status")
    slack.settle()
    replies = slack.fake.calls_to("response_url")
    assert replies and replies[-1].payload["text"].startswith("NOT READY")


def test_item_shows_state_kind_and_how_to_verify(slack: SlackApp) -> None:
    reply = slack.reply("item domain-dns/ssl-certificate-obtained")
    body = json.dumps(reply["blocks"])
    assert "automated" in body and "tls_certificate" in body
    assert "How to verify" in body and "openssl s_client" in body


def test_item_with_an_ambiguous_reference_lists_candidates(slack: SlackApp) -> None:
    reply = slack.reply("item backup")
    assert "matches" in reply["text"] and "•" in reply["text"]


def test_signoff_and_unsign_are_stored_and_confirmed(slack: SlackApp) -> None:
    reply = slack.reply("signoff phase-3-status/all-tests-passing CI is green")
    assert "Signed off `phase-3-status/all-tests-passing`" in reply["text"]
    standing = slack.store.signoffs()["phase-3-status/all-tests-passing"]
    assert [(s.user, s.note) for s in standing] == [("U123", "CI is green")]
    assert "Withdrew" in slack.reply("unsign phase-3-status/all-tests-passing")["text"]
    assert "phase-3-status/all-tests-passing" not in slack.store.signoffs()
    assert "nothing changed" in slack.reply("unsign phase-3-status/all-tests-passing")["text"]


def test_assign_needs_a_mention_and_fills_the_assignees_home(slack: SlackApp) -> None:
    assert (
        "mention the person" in slack.reply("assign phase-3-status/all-tests-passing bob")["text"]
    )
    reply = slack.reply("assign phase-3-status/all-tests-passing <@U777|bob>", user=ADMIN)
    assert "Assigned `phase-3-status/all-tests-passing` to <@U777>" in reply["text"]
    slack.home("U777")
    view = slack.fake.wait_for("views.publish")[0].payload["view"]
    assert "phase-3-status/all-tests-passing" in json.dumps(view)


def test_gate_says_blocked_with_the_count(slack: SlackApp) -> None:
    reply = slack.reply("gate")
    assert "*BLOCKED*" in reply["text"] and "items block the launch" in reply["text"]


def test_check_runs_named_checks_and_answers_privately(slack: SlackApp) -> None:
    assert slack.reply("check env_config")["text"] == "Running 1 checks…"
    call = slack.fake.wait_for("response_url")[0]
    assert "env_config" in json.dumps(call.payload["blocks"])
    assert "No check or section" in slack.reply("check nonesuch")["text"]


def test_active_checks_need_an_admin_and_refusals_are_audited(slack: SlackApp) -> None:
    reply = slack.reply("check load_test active")
    assert "only Preflight admins" in reply["text"]
    refused = [e for e in slack.store.audit_log() if e.action == "check_active"]
    assert refused and refused[0].allowed is False and refused[0].actor == "U123"
    assert slack.reply("check load_test active", user=ADMIN)["text"] == "Running 1 checks…"


def test_export_uploads_the_checklist_as_a_file(slack: SlackApp) -> None:
    slack.reply("signoff phase-3-status/all-tests-passing")
    slack.reply("export markdown")
    complete = slack.fake.wait_for("files.completeUploadExternal")[0]
    assert complete.payload["channel_id"] == "C123"
    upload = slack.fake.calls_to("file_upload")[0]
    assert b"phase-3-status/all-tests-passing" in upload.raw
    assert "Usage" in slack.reply("export pdf")["text"]


def test_app_home_shows_readiness_and_open_decisions(slack: SlackApp) -> None:
    slack.home("U123")
    call = slack.fake.wait_for("views.publish")[0]
    assert call.payload["user_id"] == "U123"
    text = json.dumps(call.payload["view"])
    assert "NOT READY" in text and "*Open decisions* (9)" in text
    assert validate_outbound(slack.fake.calls) == []


def test_admins_subscribe_a_channel_to_digests_and_anyone_can_post_one(slack: SlackApp) -> None:
    refused = slack.reply("digest subscribe 08:30")
    assert "Only Preflight admins" in refused["text"]
    assert slack.store.subscriptions() == []
    assert "HH:MM" in slack.reply("digest subscribe 25:00", user=ADMIN)["text"]
    assert slack.store.subscriptions() == []
    reply = slack.reply("digest subscribe 08:30 UTC", user=ADMIN)
    assert "every day at 08:30 UTC" in reply["text"]
    assert [(s.channel, s.schedule) for s in slack.store.subscriptions()] == [
        ("C123", "daily 08:30 UTC")
    ]
    slack.reply("digest now", user=ADMIN)
    slack.settle()
    digest = slack.fake.calls_to("chat.postMessage")[-1]
    assert digest.data["channel"] == "C123" and "First digest" in json.dumps(digest.data["blocks"])
    assert "Digest stopped" in slack.reply("digest unsubscribe", user=ADMIN)["text"]
    assert slack.store.subscriptions() == []


def _slow_runs(slack: SlackApp, monkeypatch: Any, delay_s: float) -> list[int]:
    """Make every check run take delay_s before its first result; counts the runs."""
    runs: list[int] = []
    real = slack.services.run_checks

    def slow(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        time.sleep(delay_s)
        return real(*args, **kwargs)

    monkeypatch.setattr(slack.services, "run_checks", slow)
    return runs


def _hold_stored_verdict(
    slack: SlackApp, monkeypatch: Any
) -> tuple[threading.Event, threading.Event]:
    """A status run's first step, reading the stored verdict, waits for `release`; `reading`
    is set once one is waiting there."""
    reading, release = threading.Event(), threading.Event()
    real = slack.services.readiness

    def slow_readiness(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("preflight-work"):
            reading.set()
            release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(slack.services, "readiness", slow_readiness)
    return reading, release


def test_a_status_ack_does_not_wait_for_another_runs_stored_verdict(
    slack: SlackApp, monkeypatch: Any
) -> None:
    """A run starts by reading the stored verdict (milliseconds with a long history). It used to
    read it holding the lock that every status ack takes to see what is running, so each ack
    in every channel waited for it."""
    reading, release = _hold_stored_verdict(slack, monkeypatch)
    try:
        slack.reply("status")  # C123's run is now reading its stored verdict
        assert reading.wait(10)
        answered: list[str] = []
        other = threading.Thread(
            target=lambda: answered.append(slack.reply("status", channel="C456")["text"])
        )
        other.start()
        other.join(5)
        assert answered and answered[0].startswith("Checking ")
    finally:
        release.set()
    slack.settle()


def _to(slack: SlackApp, method: str, channel: str) -> list[Any]:
    return [c for c in slack.fake.calls_to(method) if c.payload.get("channel") == channel]


def test_a_status_joining_a_quick_run_posts_once_with_the_verdict(
    slack: SlackApp, monkeypatch: Any
) -> None:
    runs = _slow_runs(slack, monkeypatch, 0.3)
    slack.reply("status")  # C123 starts the run and shows its progress at once
    slack.fake.wait_for("chat.postMessage")
    reply = slack.reply("status", channel="C456")  # joins it while it runs
    assert reply["text"].startswith("Checking ")
    slack.settle()
    assert runs == [1]  # one run of the checks for both channels
    (posted,) = _to(slack, "chat.postMessage", "C456")
    assert posted.payload["text"].startswith("NOT READY")  # straight with the verdict
    assert "Top blockers" in json.dumps(posted.payload["blocks"])
    assert _to(slack, "chat.update", "C456") == []
    assert _to(slack, "chat.update", "C123")[-1].payload["text"].startswith("NOT READY")
    assert validate_outbound(slack.fake.calls) == []


def test_a_status_joining_a_long_run_shows_progress_then_the_verdict(
    slack: SlackApp, monkeypatch: Any
) -> None:
    from bot import live_status

    monkeypatch.setattr(live_status, "FIRST_POST_S", 0.1)
    runs = _slow_runs(slack, monkeypatch, 0.5)
    slack.reply("status")
    slack.fake.wait_for("chat.postMessage")
    slack.reply("status", channel="C456")
    slack.settle()
    assert runs == [1]
    (posted,) = _to(slack, "chat.postMessage", "C456")
    assert posted.payload["text"].startswith("Checking ")  # progress first, being long
    updates = _to(slack, "chat.update", "C456")
    assert updates and updates[-1].payload["text"].startswith("NOT READY")
    # Another request in a channel that shows the run is pointed at it, not posted again.
    assert "moments ago" in slack.reply("status", channel="C456")["text"]
    assert len(_to(slack, "chat.postMessage", "C456")) == 1


def test_a_second_status_in_a_channel_before_the_first_is_shown_gets_no_second_message(
    slack: SlackApp, monkeypatch: Any
) -> None:
    """The first request's run has not added its watcher yet (held in its stored verdict): a
    second request in the same channel used to find nothing watching and post a message of
    its own. Asking and claiming are now one step."""
    reading, release = _hold_stored_verdict(slack, monkeypatch)
    try:
        assert slack.reply("status")["text"].startswith("Checking ")
        assert reading.wait(10)
        assert "running right now" in slack.reply("status")["text"]
        assert slack.reply("status", channel="C456")["text"].startswith("Checking ")
    finally:
        release.set()
    slack.settle()
    assert len(_to(slack, "chat.postMessage", "C123")) == 1
    assert len(_to(slack, "chat.postMessage", "C456")) == 1
    assert "moments ago" in slack.reply("status")["text"]  # the claim gave way to the watcher


def test_status_from_many_people_at_once_posts_one_message_per_channel(slack: SlackApp) -> None:
    channels = [f"C{n:03d}" for n in range(4)]
    texts: list[str] = []
    lock = threading.Lock()

    def ask(n: int) -> None:
        text = slack.reply("status", channel=channels[n % 4], user=f"U{n:03d}")["text"]
        with lock:
            texts.append(text)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    slack.settle()
    assert len(texts) == 24 and sum(t.startswith("Checking ") for t in texts) == 4
    for channel in channels:
        assert len(_to(slack, "chat.postMessage", channel)) == 1


def test_a_claim_whose_run_never_comes_is_released_or_expires(monkeypatch: Any) -> None:
    from bot import live_status

    runs = live_status.StatusRuns()
    checks = list(registry.all_checks().values())[:2]
    assert runs.claim("C1", None, checks) is None
    assert runs.claim("C1", None, checks) == "running"
    assert runs.claim("C1", "Security", checks) is None  # another section is another message
    runs.release("C1", None, checks)  # its request failed after claiming
    assert runs.claim("C1", None, checks) is None
    monkeypatch.setattr(live_status, "CLAIM_S", 0.0)  # the process stopped before its run()
    assert runs.claim("C1", None, checks) is None


def test_only_the_run_that_holds_the_claim_gives_it_up() -> None:
    """The *Re-run checks* button starts a run without a claim: when it fails it must not
    free a claim that a status request is still holding for its own run()."""
    from bot import live_status

    class Broken:
        def readiness(self) -> Any:
            raise RuntimeError("store unavailable")

    runs = live_status.StatusRuns()
    checks = list(registry.all_checks().values())[:2]
    assert runs.claim("C1", None, checks) is None
    for claimed in (False, True):
        with pytest.raises(RuntimeError):
            runs.run(None, Broken(), "C1", None, checks, print, fresh=True, claimed=claimed)  # type: ignore[arg-type]
        assert runs.claim("C1", None, checks) == ("running" if not claimed else None)
