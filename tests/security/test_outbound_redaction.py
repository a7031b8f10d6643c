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


def _shapes(secret: str) -> dict[str, str]:
    import base64
    import json as _json
    from urllib.parse import quote

    return {
        "raw": secret,
        "base64": base64.b64encode(secret.encode()).decode(),
        "basic": base64.b64encode(f"app:{secret}".encode()).decode(),
        "url": quote(f"{secret}/x y", safe=""),
        "json": _json.dumps(secret + "/")[1:-1].replace("/", "\\/"),
        "prefix12": secret[:12],
        "middle12": secret[3:15],
    }


def test_a_secret_in_any_shape_is_masked_in_slack_the_store_and_exports(slack: SlackApp) -> None:
    shapes = _shapes(DB_PASSWORD)
    note = " | ".join(f"{k}={v}" for k, v in shapes.items())
    slack.reply(f"signoff {ITEM} {note}")
    slack.reply(f"item {ITEM}")
    slack.reply("export json")
    slack.reply("export markdown")
    slack.settle()
    sent = _everything_sent(slack)
    db_file = slack.services.settings.preflight_db
    stored = b"".join(
        Path(f).read_bytes() for f in (db_file, db_file + "-wal") if os.path.exists(f)
    ).decode("utf-8", "replace")
    exports = json.dumps(slack.services.export_json()) + slack.services.export_markdown()
    for name, shape in shapes.items():
        for where, text in (("slack", sent), ("store", stored), ("export", exports)):
            assert shape not in text, (name, where)
