"""A team's own checklist (issue 8): imported once, current for every process and the bot.

Checklists are written here in the shapes real teams use: ticked items, checkbox tables,
numbered and nested lists, HTML checkboxes, prose only, empty, items before any heading,
annotations, a bindings file. Imports and status run in separate processes (subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from store import Store
from tests.support.slack_app import SlackApp

SECRET = "canary-Pa55-not-real"  # an obviously fake credential to hunt for

TICKED = """# Team Launch

Some prose first.

- [x] Kickoff held before any heading

## Security

- [x] SSL certificate installed <!-- check: tls_certificate -->
- [ ] CORS locked down
- [X] Sentry wired
"""

TABLE = """# Ops launch

## Readiness

| Done | Task | Owner |
|------|------|-------|
| [ ] | Backups restored once | ana |
| [x] | Rate limit on login | bo |
| n/a | not an item | - |

Text between the table and the list.
"""

NUMBERED = """# Numbered

## Steps

1. [ ] Load test at p95 under 300 ms
   - [ ] Ramp to 200 users
     - [x] Nested claim
2. [ ] Health endpoint answers
   on a second line
"""

HTML = """# With HTML

## Things

- [ ] A real item
- <input type="checkbox"> looks like one
<input type="checkbox" checked> another
- [ ]
"""

SECRETS_DOC = f"""# Secrets inside

## Database

- [ ] Database reachable
  - Password: {SECRET}
- [ ] Connect with postgres://app:{SECRET}@db.internal:5432/app

**Verification Command:**
```bash
PGPASSWORD="{SECRET}" psql -h db.internal
```
"""

SHAPES = {"ticked": TICKED, "table": TABLE, "numbered": NUMBERED, "html": HTML}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PREFLIGHT_DB": str(tmp_path / "preflight.db"),
        "PREFLIGHT_CHECK_TIMEOUT": "2",
        "SLACK_BOT_TOKEN": "",
        "SLACK_APP_TOKEN": "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    for key in ("PREFLIGHT_CHECKLIST", "PREFLIGHT_BINDINGS"):
        monkeypatch.delenv(key, raising=False)
    return values


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def process(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`preflight ...` in its own process, as a second terminal or CI job would run it."""
    child_env = {k: v for k, v in os.environ.items() if v != ""}
    child_env.update(extra or {})
    return subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
        check=False,
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def version(env: dict[str, str]) -> int:
    with Store.open(env["PREFLIGHT_DB"]) as store:
        return store.current_version() or 0


# ---- item 1: the store holds the current checklist -----------------------------------------


def test_import_in_one_process_is_current_in_the_next(env: dict[str, str], tmp_path: Path) -> None:
    path = write(tmp_path, "mine.md", TICKED)
    imported = process("import", str(path), "--as", "lead")
    assert imported.returncode == 0, imported.stderr
    status = process("status", "--cached", "--json")
    data = json.loads(status.stdout)
    assert data["checklist"]["title"] == "Team Launch"
    assert data["checklist"]["source"] == str(path)
    assert data["checklist"]["imported_by"] == "lead"
    assert data["checklist"]["items"] == 4
    assert data["items"]["total"] == 4  # not the bundled 223
    text = process("status", "--cached").stdout
    assert text.startswith("Checklist: Team Launch — ") and "imported" in text and "by lead" in text
    history = process("checklist", "history").stdout.splitlines()
    # A fresh store takes the team's file as its first version: no bundled detour.
    assert len(history) == 1 and history[0].startswith("* v1") and "(4 items)" in history[0]


def test_same_content_makes_no_version_and_preflight_checklist_only_when_changed(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "mine.md", TICKED)
    assert run("import", str(path))[0] == 0
    v = version(env)
    code, out, _ = run("import", str(path))
    assert code == 0 and "already the current checklist" in out and version(env) == v
    # PREFLIGHT_CHECKLIST with the same content: nothing new at start.
    assert process("status", "--cached", extra={"PREFLIGHT_CHECKLIST": str(path)}).returncode == 0
    assert version(env) == v
    changed = write(tmp_path, "changed.md", TICKED + "- [ ] One more\n")
    status = process("status", "--cached", "--json", extra={"PREFLIGHT_CHECKLIST": str(changed)})
    assert json.loads(status.stdout)["checklist"]["items"] == 5
    assert version(env) == v + 1
    # Without the variable, the store's checklist stays current.
    assert json.loads(process("status", "--cached", "--json").stdout)["items"]["total"] == 5


def test_switching_checklists_archives_items_and_brings_back_their_signoffs(
    env: dict[str, str], tmp_path: Path
) -> None:
    mine = write(tmp_path, "mine.md", TICKED)
    other = write(tmp_path, "other.md", NUMBERED)
    run("import", str(mine))
    assert run("signoff", "security/cors-locked-down", "--as", "alice")[0] == 0
    code, out, _ = run("import", str(other))
    assert code == 0 and "4 removed (archived)" in out
    code, out, _ = run("import", str(mine))
    data = json.loads(run("status", "--cached", "--json")[1])
    assert data["items"]["done"] == 1  # alice's sign-off came back with the item
    with Store.open(env["PREFLIGHT_DB"]) as store:
        assert [s.user for s in store.signoffs()["security/cors-locked-down"]] == ["alice"]


def test_the_bot_picks_up_an_import_from_another_process(slack: SlackApp, tmp_path: Path) -> None:
    assert "Phase 3" in json.dumps(slack.reply("item phase-3-status/all-tests-passing"))
    path = write(tmp_path, "mine.md", TICKED)
    imported = process(
        "import",
        str(path),
        "--as",
        "lead",
        extra={"PREFLIGHT_DB": slack.services.settings.preflight_db},
    )
    assert imported.returncode == 0, imported.stderr
    reply = slack.reply("item sentry-wired")
    body = json.dumps(reply["blocks"])
    assert "security/sentry-wired" in body
    assert "Claimed: the document ticks it" in body  # a tick is a claim, not done
    assert slack.services.checklist.title == "Team Launch"
    gone = slack.reply("item phase-3-status/all-tests-passing")
    assert "No checklist item matches" in gone["text"]


# ---- item 2: refuse what is not a checklist; say what was not read ---------------------------


@pytest.mark.parametrize(
    "text",
    ["", "Just prose.\n\nNo boxes at all.\n", "| a | b |\n|---|---|\n| 1 | 2 |\n", "- [ ]\n"],
    ids=["empty", "prose", "table-without-boxes", "empty-box"],
)
def test_a_file_without_items_is_refused_and_changes_nothing(
    env: dict[str, str], tmp_path: Path, text: str
) -> None:
    run("status", "--cached")
    before = version(env)
    path = write(tmp_path, "none.md", text)
    code, out, err = run("import", str(path))
    assert code == 2 and out == ""
    assert err.strip() == f"preflight: no checklist items found in {path}"
    assert version(env) == before


def test_etc_passwd_and_binary_files_are_refused(env: dict[str, str], tmp_path: Path) -> None:
    run("status", "--cached")
    before = version(env)
    code, _, err = run("import", "/etc/passwd")
    assert code == 2 and err.strip() == "preflight: no checklist items found in /etc/passwd"
    binary = tmp_path / "x.md"
    binary.write_bytes(b"- [ ] a\x00b")
    code, _, err = run("import", str(binary))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "binary" in err
    assert version(env) == before


@pytest.mark.parametrize(
    ("shape", "items", "report"),
    [
        (
            "ticked",
            4,
            [
                "3 items ticked in the file: imported as claims",
                "item before the first heading: line 5",
            ],
        ),
        ("table", 2, ["1 items ticked in the file"]),
        ("numbered", 4, ["1 items ticked in the file"]),
        (
            "html",
            1,
            [
                "HTML checkbox not read as an item: line 6, 7",
                "checkbox with no text: not read: line 8",
            ],
        ),
    ],
)
def test_each_shape_imports_with_a_report(
    env: dict[str, str], tmp_path: Path, shape: str, items: int, report: list[str]
) -> None:
    path = write(tmp_path, f"{shape}.md", SHAPES[shape])
    code, out, err = run("import", str(path))
    assert code == 0, err
    for line in report:
        assert line in out
    data = json.loads(run("status", "--cached", "--json")[1])
    assert data["items"]["total"] == items
    assert data["items"]["done"] == 0  # ticks are claims, never done


DECISION_SHAPES = """# Launch

## Release
- [ ] Tag the release
- **Decision needed**: Push provider (APNs / Firebase)

## Decision: CDN
- Options: Fastly, CloudFront

## Decision tracking
1. **Email**: which provider?
   - SES
   - Postmark
"""


def test_decision_lines_it_cannot_read_are_named_not_dropped(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = run("import", str(write(tmp_path, "d.md", DECISION_SHAPES)))
    assert code == 0, err
    assert "2 × decision not read" in out and "line 5, 8" in out
    assert "Decision needed" in out  # and how to write one it reads
    decisions = run("decisions")[1]
    assert "email" in decisions.lower()  # the numbered topic is read as before


def test_table_rows_and_items_before_headings(env: dict[str, str], tmp_path: Path) -> None:
    run("import", str(write(tmp_path, "t.md", TABLE)))
    data = json.loads(run("export", "--format", "json")[1])
    rows = {i["id"]: i for i in data["items"]}
    assert set(rows) == {"readiness/backups-restored-once-ana", "readiness/rate-limit-on-login-bo"}
    assert rows["readiness/rate-limit-on-login-bo"]["claim"] == "ticked"
    run("import", str(write(tmp_path, "k.md", TICKED)))
    data = json.loads(run("export", "--format", "json")[1])
    first = data["items"][0]
    assert (first["id"], first["section"]) == (
        "team-launch/kickoff-held-before-any-heading",
        "Team Launch",
    )


# ---- item 3: ticks are claims --------------------------------------------------------------


def test_claims_are_shown_and_accepted_at_once_after_review(
    env: dict[str, str], tmp_path: Path
) -> None:
    run("import", str(write(tmp_path, "mine.md", TICKED)))
    code, _, err = run("signoff", "--claimed", "--as", "lead")
    assert code == 2 and err.strip() == 'preflight: --claimed needs --note "what you reviewed"'
    code, _, err = run("signoff", "--claimed", "--as", "  ", "--note", "x")
    assert code == 2 and err.strip() == "preflight: --as needs a name"
    markdown = run("export")[1]
    assert "- [ ] Sentry wired <!-- claimed -->" in markdown
    assert "[x]" not in markdown  # nothing is done yet
    code, out, _ = run("signoff", "--claimed", "--as", "lead", "--note", "checked the tickets")
    assert code == 0 and out.startswith("Signed off 3 claimed items as lead:")
    data = json.loads(run("export", "--format", "json")[1])
    signed = [i for i in data["items"] if i["signoffs"]]
    assert len(signed) == 3
    assert all(i["signoffs"][0]["note"] == "checked the tickets" for i in signed)
    with Store.open(env["PREFLIGHT_DB"]) as store:
        assert sum(e.action == "signoff_claim" for e in store.audit_log()) == 3
    assert run("signoff", "--claimed", "--as", "lead", "--note", "again")[1].startswith("No claims")


# ---- item 4: bind checks to your own items ------------------------------------------------


def test_annotations_and_a_bindings_file_bind_checks(env: dict[str, str], tmp_path: Path) -> None:
    bindings = write(tmp_path, "bindings.yml", "cors_policy:\n  - security/cors-locked-down\n")
    code, _, err = run(
        "import", str(write(tmp_path, "mine.md", TICKED)), "--bindings", str(bindings)
    )
    assert code == 0, err
    listed = {c["id"]: c["items"] for c in json.loads(run("check", "--list", "--json")[1])}
    assert listed["tls_certificate"] == ["security/ssl-certificate-installed"]  # annotation
    assert listed["cors_policy"] == ["security/cors-locked-down"]  # bindings file
    assert listed["dns_records"] == []  # the bundled bindings do not follow another checklist
    data = json.loads(run("export", "--format", "json")[1])
    kinds = {i["id"]: (i["kind"], [c["id"] for c in i["checks"]]) for i in data["items"]}
    assert kinds["security/cors-locked-down"] == ("automated", ["cors_policy"])


def test_an_unknown_check_id_is_an_import_error(env: dict[str, str], tmp_path: Path) -> None:
    run("status", "--cached")
    before = version(env)
    doc = write(tmp_path, "a.md", "## S\n- [ ] thing <!-- check: tls_certificat -->\n")
    code, _, err = run("import", str(doc))
    assert code == 2 and err.strip().startswith("preflight: unknown check id: tls_certificat")
    bindings = write(tmp_path, "b.yml", "no_such_check:\n  - s/thing\n")
    code, _, err = run(
        "import", str(write(tmp_path, "ok.md", "## S\n- [ ] thing\n")), "--bindings", str(bindings)
    )
    assert code == 2 and "no_such_check" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("import", str(doc), "--bindings", str(tmp_path / "missing.yml"))
    assert code == 2 and "bindings file not found" in err
    assert version(env) == before


def test_status_runs_only_checks_bound_to_current_items(
    env: dict[str, str], tmp_path: Path
) -> None:
    run("import", str(write(tmp_path, "n.md", "## S\n- [ ] Nothing automated here\n")))
    data = json.loads(process("status", "--json").stdout)
    assert data["checks"] == {}  # no check is bound: none ran, none reported
    with Store.open(env["PREFLIGHT_DB"]) as store:
        assert store.latest_results() == {}


def test_bindings_suggest_proposes_checks_from_item_words(
    env: dict[str, str], tmp_path: Path
) -> None:
    doc = (
        "## Go live\n- [ ] SSL certificate renewed\n- [ ] CORS only for our domain\n"
        "- [ ] Nightly backup verified\n- [ ] SPF and DMARC published\n- [ ] Sentry alerts on\n"
        "- [ ] p95 under 400 ms in the load test\n- [ ] Buy cake\n"
    )
    run("import", str(write(tmp_path, "g.md", doc)))
    code, out, _ = run("bindings", "suggest")
    assert code == 0
    import yaml

    proposed = yaml.safe_load(out)
    assert proposed["tls_certificate"] == ["go-live/ssl-certificate-renewed"]
    assert proposed["cors_policy"] == ["go-live/cors-only-for-our-domain"]
    assert "go-live/nightly-backup-verified" in proposed["rds_backups"]
    assert proposed["email_dns"] == ["go-live/spf-and-dmarc-published"]
    assert proposed["sentry_dsn"] == ["go-live/sentry-alerts-on"]
    assert proposed["load_test"] == ["go-live/p95-under-400-ms-in-the-load-test"]
    assert "cake" not in out.split("#")[0]
    # The proposal is a bindings file the import accepts as it is.
    suggestion = write(tmp_path, "suggested.yml", out)
    assert run("import", str(tmp_path / "g.md"), "--bindings", str(suggestion))[0] == 0


# ---- item 8: exports that keep everything ---------------------------------------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_export_import_export_is_identical(env: dict[str, str], tmp_path: Path, shape: str) -> None:
    run("import", str(write(tmp_path, f"{shape}.md", SHAPES[shape])))
    data = json.loads(run("export", "--format", "json")[1])
    ids = [i["id"] for i in data["items"]]
    assert run("signoff", ids[0], "--as", "alice", "--note", "seen it")[0] == 0
    if len(ids) > 1:
        assert run("signoff", ids[-1], "--as", "bob", "--na", "not for us")[0] == 0
    first = run("export")[1]
    assert "Intro" not in first or "Intro" in SHAPES[shape]
    again = write(tmp_path, "again.md", first)
    assert run("import", str(again))[0] == 0
    second = run("export")[1]
    assert second == first
    assert [i["id"] for i in json.loads(run("export", "--format", "json")[1])["items"]] == ids
    done_lines = [line for line in first.splitlines() if "[x]" in line]
    assert len(done_lines) == (2 if len(ids) > 1 else 1)  # `[x]` only for done items
    # Under the item, or (for a table row) in a list under the table, naming the item.
    note, na = (f" on `{ids[0]}`", f" on `{ids[-1]}`") if shape == "table" else ("", "")
    assert f"Sign-off note (alice){note}: seen it" in first
    if len(ids) > 1:
        assert f"Not applicable (bob){na}: not for us" in first


def test_export_keeps_prose_tables_and_code(env: dict[str, str], tmp_path: Path) -> None:
    run("import", str(write(tmp_path, "t.md", TABLE)))
    out = run("export")[1]
    assert "Text between the table and the list." in out
    assert "| n/a | not an item | - |" in out
    run("import", str(write(tmp_path, "s.md", SECRETS_DOC)))
    out = run("export")[1]
    assert '```bash\nPGPASSWORD="[REDACTED]" psql -h db.internal\n```' in out


def test_json_export_has_signoffs_checks_and_decisions(env: dict[str, str], tmp_path: Path) -> None:
    doc = (
        "## Infra\n- [ ] SSL certificate installed <!-- check: tls_certificate -->\n"
        "- [ ] **Decision needed**: Email provider (SES / SendGrid)\n"
    )
    run("import", str(write(tmp_path, "d.md", doc)))
    process("check", "tls_certificate")
    run("vote", "email", "SES", "--as", "alice")
    run("decide", "email", "SES", "--as", "lead", "--rationale", "cheapest")
    data = json.loads(run("export", "--format", "json")[1])
    assert data["checklist"]["version"] >= 1
    ssl = data["items"][0]
    assert ssl["checks"][0]["id"] == "tls_certificate" and ssl["checks"][0]["status"] == "SKIPPED"
    assert {"status", "reason", "signoffs", "claimed", "claim"} <= set(ssl)
    (decision,) = data["decisions"]
    assert decision["votes"] == {"alice": "SES"}
    assert decision["outcome"]["chosen"] == "SES" and decision["outcome"]["closed_by"] == "lead"
    assert "cheapest" in decision["record"]
    assert data["acceptances"] == []


# ---- item 9: credentials in the checklist itself ---------------------------------------------


def test_credentials_in_the_file_are_reported_and_appear_nowhere(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out, _ = run("import", str(write(tmp_path, "s.md", SECRETS_DOC)))
    assert code == 0
    assert "3 plaintext credentials (lines 6, 7, 11): rotate them" in out
    assert SECRET not in out
    exports = [
        run("export")[1],
        run("export", "--format", "json")[1],
        run("status", "--cached", "--json")[1],
    ]
    assert not [e for e in exports if SECRET in e]
    db = Path(env["PREFLIGHT_DB"])
    for file in db.parent.glob(db.name + "*"):
        assert SECRET.encode() not in file.read_bytes(), file


def test_credentials_never_reach_slack(slack: SlackApp, tmp_path: Path) -> None:
    path = write(tmp_path, "s.md", SECRETS_DOC)
    slack.services.import_file(path, imported_by="test")
    reply = slack.reply("item database-reachable")
    body = json.dumps(reply)
    assert "Database reachable" in body and SECRET not in body and "[REDACTED]" in body
    slack.reply("export markdown")
    slack.fake.wait_for("files.completeUploadExternal")
    upload = slack.fake.calls_to("file_upload")[0]
    assert b"Database reachable" in upload.raw and SECRET.encode() not in upload.raw


def test_the_bundled_checklist_has_no_plaintext_credential() -> None:
    from bot.checklist import mask_credentials
    from bot.services import bundled_text

    assert mask_credentials(bundled_text())[1] == []


def test_slack_status_names_the_checklist_and_runs_only_its_checks(
    slack: SlackApp, tmp_path: Path
) -> None:
    path = write(tmp_path, "mine.md", TICKED)
    db = slack.services.settings.preflight_db
    imported = process("import", str(path), "--as", "lead", extra={"PREFLIGHT_DB": db})
    assert imported.returncode == 0, imported.stderr
    slack.reply("status")
    slack.settle()
    final = slack.fake.calls_to("chat.update")[-1]
    body = json.dumps(final.payload["blocks"])
    assert "Checklist: Team Launch" in body and "by lead" in body
    assert set(slack.store.latest_results()) == {"tls_certificate"}  # the one bound check


def test_check_targets_come_from_the_current_checklist(env: dict[str, str], tmp_path: Path) -> None:
    from bot.services import Services
    from bot.settings import Settings

    doc = "# Ours\n## Perf\n- [ ] Load test: p95 under 300 ms <!-- check: load_test -->\n"
    path = write(tmp_path, "ours.md", doc)
    run("import", str(path))
    services = Services.from_settings(Settings(), env={})
    try:
        ctx = services.check_context()
        assert ctx.targets.p95_ms == 300  # the bundled checklist says 500
        assert ctx.targets.rto_minutes is None  # and states an RTO this one does not
        assert ctx.env_templates == {}
        assert ctx.checklist_path == str(path)
        path.unlink()  # the file is gone: checks read the stored (masked) text instead
        services.refresh(force=True)
        copy = services.check_context().checklist_path
        assert copy is not None and "bot/content" not in copy
        assert Path(copy).read_text("utf-8") == doc
        assert [c.id for c in services.bound_checks()] == ["load_test"]
    finally:
        services.store.close()


def test_the_bundled_checklist_round_trips_through_the_store(
    env: dict[str, str], tmp_path: Path
) -> None:
    run("signoff", "phase-3-status/all-tests-passing", "--as", "alice", "--note", "ci green")
    run("signoff", "domain-dns/ssl-certificate-obtained", "--as", "bob", "--na", "no domain yet")
    first = run("export")[1]
    code, out, _ = run("import", str(write(tmp_path, "e1.md", first)))
    assert code == 0 and "223 unchanged" in out  # ids and bindings kept
    assert run("export")[1] == first
    data = json.loads(run("status", "--cached", "--json")[1])
    assert (data["items"]["total"], data["checklist"]["claims"]) == (223, 4)


def test_a_refused_import_does_not_create_the_store(env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = run("import", str(write(tmp_path, "prose.md", "Only prose.\n")))
    assert code == 2 and "no checklist items found" in err
    assert not Path(env["PREFLIGHT_DB"]).exists()
