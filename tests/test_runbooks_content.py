"""Runbooks with substance: a step keeps everything under it (paragraphs, links, code), its
actions (`check:` / `notify:` comments), and the bundled runbooks are enriched from the
checklist's own content by named rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import messages as m
from bot import views
from bot.checklist import (
    ENRICH_RULES,
    EnrichRule,
    load_bundled,
    load_runbook_files,
    parse_checklist,
)
from bot.export import render_markdown, to_json
from bot.model import StepPart
from checks import registry
from tests.support.slack_payloads import validate_blocks

CHECKLIST = """# Ops

## RUNBOOK

### Database failover <!-- id: db-failover -->
1. Promote the replica <!-- check: db_connect -->

   See [the RDS guide](https://docs.example.invalid/rds) first.

   **Promote command:**
   ```bash
   aws rds promote-read-replica --db-instance-identifier replica-1
   ```
   <!-- notify: #ops, #incidents -->
2. Point the app at it
   - update `DB_HOST`
   - restart the **api** pods
3. Bare step
"""

RUNBOOK_FILE = """# Restore from backup

1. Stop writes

   Put the app in maintenance mode first.

```bash
kubectl scale deploy/api --replicas=0
```

More text after the command.

2. Restore
   ```sql
   SELECT pg_is_in_recovery();
   ```
   <!-- check: db_connect -->

## Notes

This paragraph belongs to no step.
"""


def test_a_checklist_step_keeps_text_links_code_and_actions() -> None:
    (runbook,) = parse_checklist(CHECKLIST).runbooks
    assert runbook.steps == ("Promote the replica", "Point the app at it", "Bare step")
    first = runbook.detail(0)
    assert first.parts == (
        StepPart("text", "See [the RDS guide](https://docs.example.invalid/rds) first."),
        StepPart(
            "code",
            "aws rds promote-read-replica --db-instance-identifier replica-1",
            "bash",
            "Promote command",
        ),
    )
    assert first.checks == ("db_connect",)
    assert first.notify == ("#ops", "#incidents")
    assert runbook.detail(1).parts == (
        StepPart("text", "- update `DB_HOST`\n- restart the **api** pods"),
    )
    assert not runbook.detail(2)
    assert not runbook.detail(99)


def test_a_runbook_file_step_keeps_the_code_block_under_it(tmp_path: Path) -> None:
    (tmp_path / "restore.md").write_text(RUNBOOK_FILE, "utf-8")
    (runbook,) = load_runbook_files(tmp_path)
    assert runbook.title == "Restore from backup"
    assert runbook.steps == ("Stop writes", "Restore")
    assert [p.kind for p in runbook.detail(0).parts] == ["text", "code", "text"]
    assert runbook.detail(0).commands[0].text == "kubectl scale deploy/api --replicas=0"
    assert runbook.detail(0).parts[2].text == "More text after the command."
    assert runbook.detail(1).commands[0].language == "sql"
    assert runbook.detail(1).checks == ("db_connect",)
    # after the next heading, text belongs to no step
    assert "no step" not in repr(runbook.details)


def test_step_details_survive_an_export_round_trip() -> None:
    checklist = parse_checklist(CHECKLIST)
    again = parse_checklist(render_markdown(checklist, {}))
    assert again.runbooks == checklist.runbooks
    data = to_json(checklist)["runbooks"][0]["details"]
    assert data[0]["checks"] == ["db_connect"] and data[0]["notify"] == ["#ops", "#incidents"]


def test_the_current_steps_details_are_rendered_as_mrkdwn_and_copyable_code() -> None:
    (runbook,) = parse_checklist(CHECKLIST).runbooks
    blocks = views.to_dicts(views.step_detail_blocks(0, runbook.steps[0], runbook.detail(0)))
    text = "\n".join(b["text"]["text"] for b in blocks)
    assert "<https://docs.example.invalid/rds|the RDS guide>" in text
    assert "*Promote command*\n```aws rds promote-read-replica" in text
    assert validate_blocks(blocks) == []
    actions = views.step_actions(7, 0, runbook.detail(0)).to_dict()
    ids = [(e["action_id"], e["value"]) for e in actions["elements"]]
    assert ("runbook_checks", "7:0") in ids
    assert ("runbook_notify:0", "7:0:0") in ids and ("runbook_notify:1", "7:0:1") in ids


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("[docs](https://x.example.invalid/a?b=1)", "<https://x.example.invalid/a?b=1|docs>"),
        ("**bold** and __also__", "*bold* and *also*"),
        ("- one\n- two", "• one\n• two"),
        ("<!channel> & <@U1>", "&lt;!channel&gt; &amp; &lt;@U1&gt;"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
    ],
)
def test_markdown_under_a_step_becomes_safe_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert m.mrkdwn(markdown) == mrkdwn


def test_code_cannot_close_its_block_early() -> None:
    assert m.code_block("a ``` b <x>") == "```a `\u200b`` b &lt;x&gt;```"


# ---- enrichment: explicit rules --------------------------------------------------------


def test_every_rule_names_a_registered_check_and_a_label_the_bundled_checklist_has() -> None:
    labels = {v.label for v in load_bundled().verify_blocks}
    for rule in ENRICH_RULES:
        assert set(rule.checks) <= set(registry.all_checks()), rule
        assert not rule.label or rule.label in labels, rule


def _derived(runbook_id: str) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    runbook = next(r for r in load_bundled().runbooks if r.id == runbook_id)
    out = {}
    for n, title in enumerate(runbook.steps):
        detail = runbook.detail(n)
        if detail:
            out[title] = ([p.label or p.derived for p in detail.parts], detail.checks)
    return out


def test_bundled_runbooks_get_the_checklists_commands_where_a_rule_matches() -> None:
    assert _derived("production-issues") == {
        "Check error tracking (Sentry)": (["Sentry Verification"], ("sentry_dsn",)),
        "Check application logs": (["Log Verification"], ()),
        "Check database health": (["Verification Command"], ("db_connect",)),
    }
    assert _derived("deployment-fails") == {
        "Immediately rollback to previous version": (["checklist: items"], ()),
        "Investigate error logs": (["Log Verification"], ()),
        "Test fix thoroughly": (["Test Commands"], ()),
    }
    assert _derived("final-preparation") == {
        "Take final database backup": (["Manual Backup Command"], ()),
        "Prepare rollback plan": (["checklist: items"], ()),
    }
    assert _derived("deployment") == {"Verify health checks passing": ([], ("api_health",))}
    assert _derived("post-deployment") == {}


def test_the_rollback_step_names_the_checklists_rollback_items_not_invented_commands() -> None:
    runbook = next(r for r in load_bundled().runbooks if r.id == "deployment-fails")
    (part,) = runbook.detail(0).parts
    assert part.kind == "text"  # the checklist has no rollback command to give
    assert "Rollback procedure documented" in part.text
    assert "Team knows how to roll back deployment" in part.text
    db = next(r for r in load_bundled().runbooks if r.id == "production-issues").detail(3)
    assert "psql" in db.commands[0].text
    assert db.commands[0].derived.startswith("checklist: PRODUCTION INFRASTRUCTURE READINESS")


def test_a_rule_matches_whole_words_only_and_never_repeats_a_written_block() -> None:
    text = (
        "## RUNBOOK\n\n### R\n1. Check databases healthy\n2. Take database backup\n\n"
        "   ```bash\n   pg_dump x\n   ```\n\n## B\n\n**Manual Backup Command:**\n"
        "```bash\npg_dump x\n```\n"
    )
    (runbook,) = parse_checklist(text).runbooks
    assert not runbook.detail(0)  # "databases"/"healthy" are not "database"/"health"
    assert [p.text for p in runbook.detail(1).parts] == ["pg_dump x"]


def test_enrich_rule_is_plain_data() -> None:
    rule = EnrichRule(("a",), label="L")
    assert rule.checks == () and rule.item_words == ()


def test_a_credential_in_a_runbook_file_is_masked_before_it_can_reach_slack(
    tmp_path: Path,
) -> None:
    secret = "canary-Pa55-not-real-0a9f8e7d"
    (tmp_path / "r.md").write_text(
        f"# R\n\n1. Connect\n\n   ```bash\n   PGPASSWORD={secret} psql -h db\n   ```\n", "utf-8"
    )
    (runbook,) = load_runbook_files(tmp_path)
    assert secret not in repr(runbook)
    assert "psql -h db" in runbook.detail(0).commands[0].text
