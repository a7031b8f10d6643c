"""Markdown export re-imports to the same checklist; JSON carries items, decisions, runbooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.checklist import load_bundled, parse_checklist
from bot.export import render_markdown, to_json
from bot.model import Checklist, Runbook

AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def item_key(c: Checklist) -> list[tuple[object, ...]]:
    return [
        (i.id, i.text, i.kind, i.section, i.path, i.parent_id, i.details, i.condition, i.claimed)
        for i in c.items
    ]


def assert_same(a: Checklist, b: Checklist) -> None:
    assert item_key(a) == item_key(b)
    assert a.title == b.title
    assert a.sections == b.sections
    assert a.decisions == b.decisions
    assert [(r.id, r.title, r.steps, r.section) for r in a.runbooks] == [
        (r.id, r.title, r.steps, r.section) for r in b.runbooks
    ]
    assert [(v.label, v.language, v.code, v.section_path) for v in a.verify_blocks] == [
        (v.label, v.language, v.code, v.section_path) for v in b.verify_blocks
    ]
    assert a.env_templates == b.env_templates
    assert a.targets == b.targets


def test_bundled_round_trip_without_signoffs() -> None:
    bundled = load_bundled()
    exported = parse_checklist(render_markdown(bundled, {}))
    assert_same(bundled, exported)
    assert (len(exported.items), len(exported.decisions), len(exported.runbooks)) == (223, 9, 5)
    assert len(exported.verify_blocks) == 18
    assert not any(i.checked for i in exported.items)


def test_bundled_round_trip_with_signoffs() -> None:
    bundled = load_bundled()
    first, nested = bundled.items[0], next(i for i in bundled.items if i.parent_id)
    signoffs = {
        first.id: [("alice", AT, "looked at the CI run"), ("bob", AT + timedelta(hours=1), "")],
        nested.id: [("carol (ops)", AT.astimezone(timezone(timedelta(hours=-5))), "")],
    }
    text = render_markdown(bundled, signoffs)
    assert (
        f"- [x] {first.text} — signed off by alice (2026-11-27 10:00 UTC), "
        f"bob (2026-11-27 11:00 UTC) <!-- id: {first.id} -->"
    ) in text
    assert "carol (ops) (2026-11-27 10:00 UTC)" in text
    assert "Sign-off note (alice): looked at the CI run" in text
    again = parse_checklist(text)
    assert_same(bundled, again)
    assert {i.id for i in again.items if i.checked} == {first.id, nested.id}
    assert render_markdown(again, signoffs) == text  # a second round trip changes nothing


def test_export_keeps_sections_runbooks_and_decisions_in_place() -> None:
    text = render_markdown(load_bundled(), {})
    assert text.startswith("# PHASE 4 - Production & Scaling\n")
    assert "\n## DECISION TRACKING\n" in text
    assert "1. **Deployment Platform**\n   - [ ] EC2 instances\n" in text
    assert text.index("## EMERGENCY PROCEDURES") < text.index("### If Deployment Fails")
    assert text.index("## QUICK START GUIDE") < text.index("### Final Preparation")
    assert "DB_PASSWORD=\n" in text
    assert "SECURE_IN_AWS_SECRETS_MANAGER" not in text.split("## ENVIRONMENT TEMPLATES")[1]
    assert "- RTO: 2 hours" in text


GENERIC = [
    "",
    "## Only\n- [ ] one\n",
    "- [ ] before any heading\n# Title\n- [x] under title ✅\n## S\n### Deep (optional)\n"
    "- [ ] a\n  - [ ] child\n    - Note: `x`\n- [ ] dup\n- [ ] dup\n",
    "## Security ✅\n### TLS\n- [ ] cert\n\n**Check:**\n```sh\necho '```'\n```\n"
    "#### Sub\n- [ ] deeper\n### TLS2\n- [ ] again <!-- id: custom/id -->\n",
    "## S\n- [ ] **Decision needed**: Queue (SQS / RabbitMQ)\n"
    "## Decision tracking\n1. **Queue**\n   - [ ] Amazon SQS\n   - [ ] Kafka\n"
    "2. **Region**\n   - [ ] us-east-1\n   - [ ] eu-west-1\n"
    "## Runbooks\n### When the queue backs up\n1. Scale consumers\n2. Page on-call\n",
    "## S\n### Api (.env)\n```\nA=1\nB=2\n```\n- [ ] RTO: 30 minutes agreed\n",
]


@pytest.mark.parametrize("doc", GENERIC)
def test_generic_round_trip(doc: str) -> None:
    original = parse_checklist(doc)
    exported = parse_checklist(
        render_markdown(original, {i.id: [("u", AT, "n")] for i in original.items[:1]})
    )
    assert_same(original, exported)


def test_runbooks_without_section() -> None:
    checklist = Checklist(
        title="T",
        sections=(),
        items=(),
        runbooks=(
            Runbook("restart", "Restart the app", ("Stop", "Start")),
            Runbook("from-file", "From a file", ("x",), source="/srv/runbooks/from-file.md"),
        ),
    )
    text = render_markdown(checklist, {})
    assert "## RUNBOOKS\n\n### Restart the app <!-- id: restart -->\n\n1. Stop\n2. Start" in text
    assert "From a file" not in text  # runbook files stay in their own files
    assert [(r.id, r.steps) for r in parse_checklist(text).runbooks] == [
        ("restart", ("Stop", "Start"))
    ]


def test_naive_datetimes_are_utc_and_names_stay_on_one_line() -> None:
    c = parse_checklist("## S\n- [ ] a\n")
    text = render_markdown(
        c, {"s/a": [("multi\nline", datetime(2026, 1, 2, 3, 4), "note\nwith lines")]}
    )
    assert "- [x] a — signed off by multi line (2026-01-02 03:04 UTC) <!-- id: s/a -->" in text
    assert "  - Sign-off note (multi line): note with lines" in text
    assert item_key(parse_checklist(text)) == item_key(c)


def test_to_json() -> None:
    bundled = load_bundled()
    done = {bundled.items[1].id}
    data = to_json(bundled, done=done)
    json.dumps(data)  # plain data all the way down
    assert len(data["items"]) == 223
    first = data["items"][0]
    assert set(first) >= {"id", "section", "text", "kind", "done", "claimed"}
    assert first["kind"] == "manual"
    assert [i["id"] for i in data["items"] if i["done"]] == [bundled.items[1].id]
    assert sum(i["claimed"] for i in data["items"]) == 4
    assert {i["kind"] for i in data["items"]} == {"manual", "decision"}
    caching = next(d for d in data["decisions"] if d["id"] == "caching-layer")
    assert caching["topic"] == "Caching Layer"
    assert caching["options"] == ["Redis", "Memcached", "In-memory", "None (start simple)"]
    assert [r["id"] for r in data["runbooks"]][:2] == ["deployment-fails", "production-issues"]
    assert data["runbooks"][0]["title"] == "If Deployment Fails"
    assert len(data["runbooks"][0]["steps"]) == 6
    assert data["targets"]["rto_minutes"] == 120
    assert to_json(bundled)["items"][1]["done"] is False


def test_hostile_signoff_names_cannot_change_ids_or_text() -> None:
    c = parse_checklist("## S\n- [ ] a <!-- id: keep --> b <!-- id: real -->\n- [ ] c\n")
    names = ["<!-- id: evil -->", "x — signed off by y (2026-01-01 00:00 UTC)", "(", ""]
    signoffs = {"real": [(n, AT, "<!-- id: evil2 -->") for n in names], "s/c": [("ok", AT, "")]}
    again = parse_checklist(render_markdown(c, signoffs))
    assert item_key(again) == item_key(c)
    assert [i.details for i in again.items] == [(), ()]
