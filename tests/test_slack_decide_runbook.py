"""/decide and /runbook through the real Bolt app."""

from __future__ import annotations

import json

from tests.support.slack_app import DECIDER, SlackApp
from tests.support.slack_payloads import validate_outbound


def test_decide_lists_shows_and_votes_with_aliases(slack: SlackApp) -> None:
    listing = slack.reply("list", command="/decide")
    assert "Email Service" in json.dumps(listing["blocks"])
    shown = slack.reply("email", command="/decide")
    assert "poll for *Email Service* is in this channel" in shown["text"]
    slack.settle()
    poll = slack.fake.calls_to("chat.postMessage")[-1]
    assert "AWS SES" in json.dumps(poll.data["blocks"])
    assert "decide_vote" in json.dumps(poll.data["blocks"])
    voted = slack.reply("email SES", command="/decide")
    assert "Your vote on *Email Service*: AWS SES" in voted["text"]
    slack.reply("email sendgrid", command="/decide")  # change of mind
    assert slack.store.votes("email-service") == {"U123": "sendgrid"}
    assert len(slack.store.vote_history("email-service")) == 2


def test_decide_unknown_and_ambiguous_input_is_explained(slack: SlackApp) -> None:
    assert "No open question" in slack.reply("nonesuch SES", command="/decide")["text"]
    assert (
        "not an option of Email Service"
        in slack.reply("email carrier-pigeon", command="/decide")["text"]
    )
    assert "/decide TOPIC OPTION" in slack.reply("", command="/decide")["text"]
    assert slack.store.votes("email-service") == {}


def test_closing_needs_a_decider_and_refusals_are_audited(slack: SlackApp) -> None:
    refused = slack.reply("email close SES cheapest", command="/decide")
    assert "Only deciders" in refused["text"]
    assert slack.store.decision_state("email-service").status == "open"
    audit = [e for e in slack.store.audit_log() if e.action == "close_decision"]
    assert audit and not audit[0].allowed and audit[0].actor == "U123"
    slack.reply("email SES", command="/decide")
    closed = slack.reply("email close SES cheapest at our volume", command="/decide", user=DECIDER)
    assert "decided: AWS SES" in closed["text"]
    slack.settle()
    announced = slack.fake.calls_to("chat.postMessage")[-1]
    assert "*Email Service* decided: *AWS SES*" in (announced.text or "")
    assert "Because: cheapest at our volume" in (announced.text or "")
    state = slack.store.decision_state("email-service")
    assert state.status == "accepted" and state.chosen == "aws-ses"
    slack.settle()
    uploaded = slack.fake.calls_to("file_upload")[-1].raw.decode()
    assert "# Email Service" in uploaded and 'Chosen option: "AWS SES"' in uploaded
    record = slack.reply("email record", command="/decide")
    text = json.dumps(record["blocks"])
    assert "Status: accepted" in text and "cheapest at our volume" in text
    assert (
        "Chosen option" in text and DECIDER.lower() in text
    )  # the record names people (users.info)
    # the decision item is now done
    item = "email-service/decision-needed-email-provider-sendgrid-aws-ses"
    assert slack.services.readiness().state(item).done  # type: ignore[union-attr]
    # voting on a closed decision is refused, reopen needs a decider
    assert "closed" in slack.reply("email mailgun", command="/decide")["text"].lower()
    assert "Only deciders" in slack.reply("email reopen", command="/decide")["text"]
    assert (
        "open again"
        in slack.reply("email reopen new pricing", command="/decide", user=DECIDER)["text"]
    )


def test_runbook_walkthrough_records_who_did_what(slack: SlackApp) -> None:
    listing = slack.reply("list", command="/runbook")
    assert "deployment-fails" in listing["text"] + json.dumps(listing.get("blocks"))
    assert (
        "Starting If Deployment Fails"
        in slack.reply("deployment-fails", command="/runbook")["text"]
    )
    slack.settle()
    root = slack.fake.calls_to("chat.postMessage")[0]
    assert "Immediately rollback" in json.dumps(root.data["blocks"])
    assert "already active" in slack.reply("production-issues", command="/runbook")["text"]
    assert "Step 1 done" in slack.reply("next rolled back to v41", command="/runbook")["text"]
    assert "Step 2 skip" in slack.reply("skip nobody online", command="/runbook", user="U2")["text"]
    assert "noted" in slack.reply("note logs show OOM", command="/runbook")["text"]
    slack.settle()
    thread = [c for c in slack.fake.calls_to("chat.postMessage") if c.data.get("thread_ts")]
    assert any("rolled back to v41" in (c.text or "") for c in thread)
    status = slack.reply("status", command="/runbook")
    assert "step 3 of 6" in json.dumps(status["blocks"])
    ended = slack.reply("end", command="/runbook")
    assert "ended" in ended["text"]
    slack.settle()
    upload = slack.fake.calls_to("file_upload")[0]
    draft = upload.raw.decode()
    assert "Post-mortem draft: If Deployment Fails" in draft
    assert "rolled back to v41" in draft and "| skip | U2 |" in draft
    assert "No runbook run is active" in slack.reply("next", command="/runbook")["text"]
    assert validate_outbound(slack.fake.calls) == []


def test_runbook_buttons_advance_the_run(slack: SlackApp) -> None:
    slack.reply("final-preparation", command="/runbook")
    slack.settle()
    run = slack.store.active_runs("C123")[0]
    assert slack.action("runbook_step:done", f"{run.id}:0:done").status == 200
    slack.settle()
    run = slack.store.run(run.id)
    assert run.step_states()[0].action == "done"
    updated = slack.fake.calls_to("chat.update")[-1]
    assert "step 2 of 4" in json.dumps(updated.data["blocks"])
    # a stale or forged button value is refused without a change
    slack.action("runbook_step:done", "nonsense")
    slack.action("runbook_step:skip", "99999:0:skip")
    slack.settle()
    assert len(slack.store.run(run.id).events) == 1


def test_unknown_runbook_is_explained(slack: SlackApp) -> None:
    assert "No runbook called" in slack.reply("volcano-erupts", command="/runbook")["text"]
    assert slack.store.active_runs() == []
