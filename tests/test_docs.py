"""Docs are tests: the manifest and the handlers agree, and the README lists every check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import handlers
from checks import docs, registry
from checks.base import Check

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
README = (ROOT / "README.md").read_text()


def _hint_alternatives(hint: str) -> set[str]:
    return {part.strip() for part in hint.strip("[]").split("|")}


def test_every_manifest_command_has_a_handler_and_the_other_way_round() -> None:
    commands = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert set(commands) == set(handlers.COMMANDS)
    for name, subcommands in handlers.COMMANDS.items():
        assert _hint_alternatives(commands[name]["usage_hint"]) == set(subcommands), name
        assert commands[name]["description"]


def test_every_subscribed_event_has_a_listener_and_the_other_way_round() -> None:
    assert set(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == set(handlers.EVENTS)
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["socket_mode_enabled"] is True


def test_bot_scopes_are_the_minimal_set_the_code_uses() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert scopes == {
        "commands", "chat:write", "chat:write.public", "files:write", "usergroups:read",
        "users:read",
    }  # fmt: skip


def _readme_check_ids() -> set[str]:
    section = README.split("## Checks", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.M))


def test_readme_lists_every_registered_check_and_no_other() -> None:
    assert _readme_check_ids() == set(registry.all_checks())


def test_readme_names_each_checks_settings() -> None:
    section = README.split("## Checks", 1)[1].split("\n## ", 1)[0]
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| `([a-z0-9_]+)` \|.*$", section, flags=re.M)
    }
    for check in registry.all_checks().values():
        for setting in check.settings:
            assert setting in rows[check.id], f"{check.id}: README does not name {setting}"


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", quick, flags=re.S)
    lines = [line for block in commands for line in block.strip().splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines == ["./scripts/run", "./scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec bash scripts/test\b", ci, flags=re.M)


def _cli_commands() -> set[str]:
    """Every `preflight ...` command path the CLI has, e.g. "import", "checklist history"."""
    import typer.main

    from bot.cli import app

    group = typer.main.get_command(app)
    found: set[str] = set()

    def walk(cmd: object, prefix: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            found.add(path)
            walk(sub, path)

    walk(group, "")
    return found


def test_bring_your_own_checklist_names_only_commands_the_cli_has() -> None:
    section = README.split("## Bring your own checklist", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`preflight ([a-z]+(?: [a-z]+)?)", section)
    assert named, "the section names no command"
    commands = _cli_commands()
    for words in named:
        first = words.split(" ")[0]
        assert first in commands, f"README names `preflight {first}`, which the CLI lacks"
        if first in ("checklist", "bindings"):
            assert words in commands, f"README names `preflight {words}`, which the CLI lacks"
    for needed in ("import", "export", "signoff", "checklist history", "bindings suggest"):
        assert any(w.startswith(needed) for w in named), needed


def test_bring_your_own_checklist_options_exist() -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    runner = CliRunner()
    for command, option in (
        (["import"], "--bindings"),
        (["import"], "--as"),
        (["signoff"], "--claimed"),
        (["signoff"], "--note"),
        (["check"], "--list"),
        (["export"], "--format"),
    ):
        help_text = runner.invoke(app, [*command, "--help"], terminal_width=200).stdout
        assert option in help_text, (command, option)


# --- the check table is generated from the checks' metadata ---------------------------------


def _rows(table: str) -> dict[str, str]:
    return {
        m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9_]+)` \|.*$", table, flags=re.M)
    }


def test_readme_check_table_is_generated_from_metadata() -> None:
    current = docs.table_in(README)
    generated = docs.registered_table()
    ours, theirs = _rows(generated), _rows(current)
    stale = sorted(i for i in ours if ours[i] != theirs.get(i))
    extra = sorted(set(theirs) - set(ours))
    assert not stale and not extra, (
        f"README's check table differs from the metadata for {stale}"
        + (f" and lists unknown checks {extra}" if extra else "")
        + ": run scripts/gen-check-table"
    )
    assert current == generated


def test_every_check_states_its_criteria() -> None:
    missing = sorted(c.id for c in registry.all_checks().values() if not c.criteria.strip())
    assert not missing, f"checks without criteria metadata: {missing}"
    undescribed = sorted(c.id for c in registry.all_checks().values() if not c.description)
    assert not undescribed, f"checks without a description: {undescribed}"


def _fake(check_id: str, **kw: object) -> Check:
    fields: dict = {"description": "It works", "criteria": "PASS: it works", **kw}
    return Check(id=check_id, title=check_id, section="Test", run=lambda ctx: None, **fields)  # type: ignore[arg-type, return-value]


def test_a_row_is_one_line_with_pipes_escaped_and_the_anchor_named() -> None:
    check = _fake(
        "zz_fake",
        settings=("A_URL", "A_MODE"),
        criteria="FAIL: `a|b`\n  or worse.",
        anchor="Some Tool",
    )
    assert docs.check_row(check) == (
        "| `zz_fake` | It works | `A_URL`, `A_MODE` | FAIL: `a\\|b` or worse. Anchor: Some Tool "
        "| high, blocking |"
    )
    bare = _fake("zz_bare", criteria="", severity="low", blocking=False, active=True)
    assert docs.check_row(bare).endswith(
        "| none | (criteria not documented yet) | low, advisory, active (opt-in) |"
    )


def test_the_table_is_sorted_by_id_under_the_header() -> None:
    table = docs.check_table([_fake("zz_b"), _fake("zz_a")])
    lines = table.splitlines()
    assert lines[:2] == list(docs.HEADER)
    assert [line.split("`")[1] for line in lines[2:]] == ["zz_a", "zz_b"]


def test_write_and_check_rewrite_only_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(f"# Title\n\n{docs.START}\n| old |\n{docs.END}\n\nAfter.\n")
    assert docs.main(["--check", str(doc)]) == 1
    assert docs.main(["--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"# Title\n\n{docs.START}\n| id |")
    assert text.endswith(f"{docs.END}\n\nAfter.\n")
    assert docs.table_in(text) == docs.registered_table()
    assert docs.main(["--check", str(doc)]) == 0


@pytest.mark.parametrize(
    "text", ["no markers", f"{docs.END}\n{docs.START}", f"{docs.START}\n{docs.START}\n{docs.END}"]
)
def test_bad_markers_are_one_clear_error(tmp_path: Path, text: str) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(text)
    assert docs.main(["--check", str(doc)]) == 2
    assert doc.read_text() == text


def test_docs_is_machinery_not_a_check() -> None:
    assert "docs" not in registry.all_checks()


def test_docs_stand_alone_and_the_readme_links_the_architecture() -> None:
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    for name, text in (("README.md", README), ("ARCHITECTURE.md", architecture)):
        outside = "../" + "shared"  # spelt in two parts so this file does not name it itself
        assert outside not in text, f"{name} points outside the repository"
    assert "(ARCHITECTURE.md)" in README
    for path in re.findall(
        r"`((?:bot|handlers|checks|store|scripts)/[a-z_./-]+\.?[a-z]*)`", architecture
    ):
        if "my_" not in path:  # the how-to's example names a module yet to be written
            assert (ROOT / path.rstrip("/")).exists(), f"ARCHITECTURE.md names {path}"


def test_readme_documents_every_setting_and_names_no_unknown_one() -> None:
    from bot.settings import Settings

    fields = {name.upper() for name in Settings.model_fields}
    assert sorted(f for f in fields if f not in README) == []
    check_settings = {s for c in registry.all_checks().values() for s in c.settings}
    named = set(re.findall(r"\bPREFLIGHT_[A-Z0-9_]+", README))
    assert sorted(n for n in named if n not in fields | check_settings) == []
