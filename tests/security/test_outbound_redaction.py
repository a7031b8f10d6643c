"""The last line of defence: whatever text reaches a Slack payload (an ack, a response_url post, a
Web API call, an uploaded file) passes the redactor, even text a person typed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.slack_app import DB_PASSWORD, SlackApp

ITEM = "phase-3-status/all-tests-passing"


def _everything_sent(slack: SlackApp) -> str:
    sent = [json.dumps(c.payload) + c.raw.decode("utf-8", "replace") for c in slack.fake.calls]
    return "\n".join(sent) + json.dumps(slack.responses)


def test_a_secret_typed_into_a_note_is_masked_in_every_payload(slack: SlackApp) -> None:
    slack.reply(f"signoff {ITEM} the db password is {DB_PASSWORD} fyi")
    shown = slack.reply(f"item {ITEM}")
    assert "[REDACTED]" in json.dumps(shown)
    slack.reply("deployment-fails", command="/runbook")
    slack.settle()
    slack.reply(f"note tried {DB_PASSWORD} on the replica", command="/runbook")
    slack.reply("end", command="/runbook")
    slack.settle()
    thread = [c for c in slack.fake.calls_to("chat.postMessage") if c.data.get("thread_ts")]
    assert any("[REDACTED]" in (c.text or "") for c in thread)
    draft = slack.fake.calls_to("file_upload")[0].raw.decode()
    assert "[REDACTED]" in draft
    assert DB_PASSWORD not in _everything_sent(slack)


def test_a_secret_typed_into_a_note_never_reaches_the_store(slack: SlackApp) -> None:
    slack.reply(f"signoff {ITEM} the db password is {DB_PASSWORD} fyi")
    slack.reply("deployment-fails", command="/runbook")
    slack.settle()
    slack.reply(f"note tried {DB_PASSWORD} on the replica", command="/runbook")
    slack.settle()
    db_file = slack.services.settings.preflight_db
    raw = b"".join(Path(f).read_bytes() for f in (db_file, db_file + "-wal") if os.path.exists(f))
    assert DB_PASSWORD.encode() not in raw
    assert slack.store.signoffs()[ITEM][0].note == "the db password is [REDACTED] fyi"
