"""Names, not ids: users.info (cached with a time limit, the id on failure) gives display names
in post-mortems, the item view, the App Home and exports; mentions stay where someone should be
notified."""

from __future__ import annotations

import json
import threading
from typing import Any

from bot.people import People, same
from tests.support.slack_app import SlackApp
from tests.support.slack_fake import FakeSlack


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_display_name_then_real_name_then_user_name(fake_slack: FakeSlack) -> None:
    fake_slack.set_user("UALICE", "alice.ng", real_name="Alice Ng")
    fake_slack.set_user("UBOB", " ", real_name="Bob Stone")
    people = People(fake_slack.client())
    assert people("UALICE") == "alice.ng"
    assert people("UBOB") == "Bob Stone"
    assert people.info("UALICE")["tz"] == "Europe/London"  # type: ignore[index]


def test_one_users_info_call_per_person_within_the_time_limit(fake_slack: FakeSlack) -> None:
    clock = Clock()
    people = People(fake_slack.client(), ttl=60, clock=clock)
    for _ in range(5):
        assert people("UALICE") == "ualice"
    people("UBOB")
    assert len(fake_slack.calls_to("users.info")) == 2
    clock.now += 59
    people("UALICE")
    assert len(fake_slack.calls_to("users.info")) == 2
    fake_slack.set_user("UALICE", "alice-renamed")
    clock.now += 2  # past the limit: asked again, and the new name shows
    assert people("UALICE") == "alice-renamed"
    assert len(fake_slack.calls_to("users.info")) == 3


def test_failure_falls_back_to_the_id_and_is_asked_again_later(fake_slack: FakeSlack) -> None:
    clock = Clock()
    people = People(fake_slack.client(), ttl=3600, failure_ttl=60, clock=clock)
    fake_slack.error_next("users.info", "user_not_found")
    assert people("UGONE") == "UGONE"
    assert people("UGONE") == "UGONE"
    assert len(fake_slack.calls_to("users.info")) == 1
    clock.now += 61
    assert people("UGONE") == "ugone"


def test_non_slack_ids_are_never_looked_up(fake_slack: FakeSlack) -> None:
    people = People(fake_slack.client())
    assert people("alice") == "alice" and people("") == ""
    assert fake_slack.calls_to("users.info") == []
    assert same("U1") == "U1"


def test_concurrent_lookups_of_one_person_make_one_call(fake_slack: FakeSlack) -> None:
    fake_slack.hang("users.info", 0.3)
    people = People(fake_slack.client())
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(people("UCAROL"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["ucarol"] * 6
    assert len(fake_slack.calls_to("users.info")) == 1


# ---- through the app ------------------------------------------------------------------


def _names(slack: SlackApp) -> None:
    slack.fake.set_user("UONCALL", "oncall.olga", real_name="Olga Petrova")
    slack.fake.set_user("UALICE", "alice.ng", real_name="Alice Ng")


def test_post_mortem_draft_names_people(slack: SlackApp) -> None:
    _names(slack)
    slack.reply("final-preparation", command="/runbook", user="UONCALL")
    slack.settle()
    run = slack.store.active_runs("C123")[0]
    slack.action("runbook_step:done", f"{run.id}:0:done", user_id="UALICE")
    slack.settle()
    slack.reply("end", command="/runbook", user="UONCALL")
    slack.settle()
    upload = slack.fake.calls_to("file_upload")[-1].raw.decode()
    assert "by oncall.olga" in upload and "| done | alice.ng |" in upload
    assert "UALICE" not in upload and "UONCALL" not in upload
    # the thread still mentions, so the person is notified (Slack shows the name)
    thread = [
        c.data["text"]
        for c in slack.fake.calls_to("chat.postMessage")
        if "done by" in c.data.get("text", "")
    ]
    assert thread and "<@UALICE>" in thread[0]
    # one users.info call per person, however often the name was used
    asked = [c.data["user"] for c in slack.fake.calls_to("users.info")]
    assert sorted(asked) == ["UALICE", "UONCALL"]


def test_post_mortem_falls_back_to_ids_when_slack_cannot_say(slack: SlackApp) -> None:
    slack.fake.error_next("users.info", "ratelimited", times=10)
    slack.reply("final-preparation", command="/runbook", user="UONCALL")
    slack.settle()
    slack.reply("end", command="/runbook", user="UONCALL")
    slack.settle()
    upload = slack.fake.calls_to("file_upload")[-1].raw.decode()
    assert "by UONCALL" in upload


def test_item_view_and_app_home_show_who_signed_off_by_name(slack: SlackApp) -> None:
    _names(slack)
    slack.reply("signoff phase-3-status/all-tests-passing ran the suite", user="UALICE")
    reply = slack.reply("item phase-3-status/all-tests-passing")
    assert "alice.ng at" in json.dumps(reply["blocks"])
    slack.reply("final-preparation", command="/runbook", user="UONCALL")
    slack.settle()
    slack.home("U123")
    view = json.dumps(slack.fake.wait_for("views.publish")[0].payload["view"])
    assert "by alice.ng at" in view  # recent sign-offs
    assert "started by oncall.olga" in view
    assert "UALICE" not in view
    slack.home("U123")
    slack.settle()
    assert len([c for c in slack.fake.calls_to("users.info") if c.data["user"] == "UALICE"]) == 1


def test_slack_export_names_people_and_keeps_ids_in_json(slack: SlackApp) -> None:
    _names(slack)
    slack.reply("signoff phase-3-status/all-tests-passing ran the suite", user="UALICE")
    slack.reply("export markdown")
    slack.settle()
    markdown = slack.fake.calls_to("file_upload")[-1].raw.decode()
    assert "signed off by alice.ng (" in markdown
    assert "Sign-off note (alice.ng): ran the suite" in markdown
    slack.reply("export json")
    slack.settle()
    data = json.loads(slack.fake.calls_to("file_upload")[-1].raw.decode())
    row = next(i for i in data["items"] if i["id"] == "phase-3-status/all-tests-passing")
    assert row["signoffs"][0]["user"] == "UALICE" and row["signoffs"][0]["name"] == "alice.ng"


def test_export_without_slack_keeps_ids(slack: SlackApp) -> None:
    slack.reply("signoff phase-3-status/all-tests-passing", user="UALICE")
    assert "signed off by UALICE (" in slack.services.export_markdown()
    data: dict[str, Any] = slack.services.export_json()  # type: ignore[assignment]
    row = next(i for i in data["items"] if i["id"] == "phase-3-status/all-tests-passing")
    assert row["signoffs"][0]["name"] == "UALICE"
