"""`preflight` from a terminal: the same engine as Slack, exit codes CI can rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.bindings import apply_bindings, load_bindings
from bot.checklist import load_bundled
from bot.cli import app
from store import Store
from tests.support.dns_server import LocalDNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(tmp_path: Path, dns_server: LocalDNS, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No Slack tokens; every check target is local, so nothing leaves the machine."""
    values = {
        "PREFLIGHT_DB": str(tmp_path / "preflight.db"),
        "PREFLIGHT_DNS_NAMESERVER": dns_server.nameserver,
        "PREFLIGHT_CHECK_TIMEOUT": "3",
        "SLACK_BOT_TOKEN": "",
        "SLACK_APP_TOKEN": "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def events(env: dict[str, str]) -> tuple[int, int, int]:
    with Store.open(env["PREFLIGHT_DB"]) as store:
        votes = sum(len(store.vote_history(d.id)) for d in load_bundled().decisions)
        return store.signoff_count(), votes, store.current_version() or 0


def test_status_json_has_the_documented_shape(env: dict[str, str]) -> None:
    code, out, _ = run("status", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["items"]["total"] == 223
    # with nothing signed off, exactly the items whose bound checks all pass are done
    bound, _ = apply_bindings(load_bundled(), load_bindings())
    passing = {cid for cid, status in data["checks"].items() if status in ("PASS", "WARN")}
    expected = sum(1 for i in bound.items if i.checks and set(i.checks) <= passing)
    assert data["items"]["done"] == expected
    assert len(data["sections"]) == 14
    assert {"title", "total", "done"} <= set(data["sections"][0])
    assert data["decisions"] == {"open": 9, "closed": 0, "open_ids": data["decisions"]["open_ids"]}
    assert data["runbooks"] == 5 and data["gate"] == "BLOCKED"
    assert set(data["checks"]) >= {"tls_certificate", "db_connect", "env_config"}


def test_status_in_a_terminal_prints_sections_and_blockers(env: dict[str, str]) -> None:
    code, out, _ = run("status", "--cached")
    assert code == 0
    assert "NOT READY — BLOCKED — 0/223 items done (0%)" in out
    assert "SECURITY REQUIREMENTS" in out and "Top blockers" in out


def test_signoff_vote_decide_and_gate(env: dict[str, str]) -> None:
    code, out, _ = run(
        "signoff", "phase-3-status/all-tests-passing", "--as", "alice", "--note", "CI green"
    )
    assert code == 0 and "Signed off phase-3-status/all-tests-passing as alice" in out
    assert run("vote", "email", "SES", "--as", "alice")[1].startswith("alice votes AWS SES")
    assert run("vote", "email", "mailgun", "--as", "bob")[0] == 0
    assert run("decide", "email", "ses", "--as", "carol", "--rationale", "cheapest")[0] == 0
    code, out, _ = run("decisions", "--json")
    email = next(d for d in json.loads(out) if d["id"] == "email-service")
    assert email["status"] == "accepted" and email["chosen"] == "AWS SES"
    assert email["votes"]["AWS SES"] == 1 and email["votes"]["Mailgun"] == 1
    code, out, _ = run("record", "email")
    assert code == 0 and "* Status: accepted" in out and "because cheapest" in out
    code, out, _ = run("gate", "--cached")
    assert code == 1 and out.startswith("BLOCKED: 221 items")
    code, out, _ = run("unsign", "phase-3-status/all-tests-passing", "--as", "alice")
    assert code == 0 and "Withdrew" in out


def test_gate_is_zero_when_everything_is_done(env: dict[str, str], tmp_path: Path) -> None:
    small = tmp_path / "small.md"
    small.write_text("# Launch\n\n## Ops\n\n### Backups\n- [ ] Backups tested\n- [ ] On-call set\n")
    os.environ["PREFLIGHT_CHECKLIST"] = str(small)
    try:
        assert run("gate", "--cached")[0] == 1
        run("signoff", "backups-tested", "--as", "alice")
        run("signoff", "on-call", "--as", "bob", "--na", "we have a single operator")
        code, out, _ = run("import", str(small))
        # The bundled bindings belong to the bundled checklist only (issue 8).
        assert "check bindings name items" not in out
        code, out, _ = run("gate", "--cached")
        assert code == 0 and "READY TO DEPLOY" in out
    finally:
        del os.environ["PREFLIGHT_CHECKLIST"]


def test_check_list_and_json(env: dict[str, str]) -> None:
    code, out, _ = run("check", "--list", "--json")
    listed = {c["id"]: c for c in json.loads(out)}
    assert "FRONTEND_URL" in listed["security_headers"]["settings"]
    code, out, _ = run("check", "env_config", "--json")
    (result,) = json.loads(out)
    assert code == (1 if result["status"] in ("FAIL", "ERROR") else 0)
    assert {"id", "status", "summary", "evidence", "duration_ms"} <= set(result)
    assert result["id"] == "env_config"


def test_import_reports_changes_and_keeps_signoffs(env: dict[str, str], tmp_path: Path) -> None:
    run("signoff", "phase-3-status/all-tests-passing", "--as", "alice")
    edited = load_bundled_text().replace("- [ ] Partner leads page working in development\n", "")
    edited = edited.replace(
        "- [ ] All tests passing\n- [ ] CI/CD runs",
        "- [ ] All tests passing\n- [ ] Mutation testing tried\n- [ ] CI/CD runs",
    )
    path = tmp_path / "edited.md"
    path.write_text(edited)
    code, out, _ = run("import", str(path))
    assert code == 0
    assert "1 added, 0 changed, 1 removed" in out
    assert "check bindings name items" not in out  # every bound item is still there
    assert "removed: phase-3-status/partner-leads-page-working-in-development" in out
    code, out, _ = run("status", "--cached", "--json")
    assert json.loads(out)["items"] == {"total": 223, "applicable": 223, "done": 1, "percent": 0}


def test_export_then_import_gives_the_same_items(env: dict[str, str], tmp_path: Path) -> None:
    run("signoff", "phase-3-status/all-tests-passing", "--as", "alice")
    code, markdown, _ = run("export", "--format", "markdown")
    assert code == 0 and "- [x] All tests passing" in markdown and "alice" in markdown
    code, data, _ = run("export", "--format", "json")
    exported = json.loads(data)
    assert len(exported["items"]) == 223 and len(exported["decisions"]) == 9
    assert len(exported["runbooks"]) == 5
    done = [i for i in exported["items"] if i["done"]]
    assert [i["id"] for i in done] == ["phase-3-status/all-tests-passing"]
    path = tmp_path / "exported.md"
    path.write_text(markdown)
    code, out, _ = run("import", str(path))
    assert code == 0 and "0 added, 0 changed, 0 removed" in out


def load_bundled_text() -> str:
    return (ROOT / "bot" / "content" / "checklist.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "/nonexistent/checklist.md"], "not found"),
        (["signoff", "no-such-item", "--as", "alice"], "No checklist item matches"),
        (["signoff", "backup", "--as", "alice"], "Candidates:"),
        (["vote", "platform", "EC2", "--as", "alice"], "matches"),
        (["vote", "email", "pigeon", "--as", "alice"], "not an option"),
        (["vote", "nonesuch", "x", "--as", "alice"], "No open question"),
        (["unsign", "phase-3-status/all-tests-passing", "--as", "nobody"], "no sign-off"),
        (["signoff", "x" * 500, "--as", "alice"], "too long"),
        (["export", "--format", "pdf"], "unknown format"),
        (["gate", "--cached", "--db", "/proc/no-such-dir/x.db"], "cannot open the store"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2_and_writes_nothing(
    env: dict[str, str], args: list[str], message: str
) -> None:
    run("status", "--cached")  # the store exists; now nothing may change it
    before = events(env)
    code, out, err = run(*args)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message.lower() in lines[0].lower(), err
    assert events(env) == before


@pytest.mark.parametrize("kind", ["binary", "huge", "directory", "not-utf8"])
def test_unreadable_checklists_are_refused(env: dict[str, str], tmp_path: Path, kind: str) -> None:
    run("status", "--cached")
    before = events(env)
    path = tmp_path / "bad.md"
    if kind == "binary":
        path.write_bytes(b"\x00\x01PNG\x00" * 100)
    elif kind == "huge":
        path.write_bytes(b"- [ ] item\n" * (10 * 1024 * 1024 // 11 + 1))
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"- [ ] caf\xe9\n")
    code, _, err = run("import", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert events(env) == before


def test_the_installed_command_prints_the_report_without_slack(env: dict[str, str]) -> None:
    """What quick-start command 1 ends in: the real entry point, no tokens."""
    exe = Path(sys.executable).with_name("preflight")
    result = subprocess.run(
        [str(exe)], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    assert "NOT READY — BLOCKED" in result.stdout
    assert "Connect Slack" in result.stdout and "manifest.yml" in result.stdout


def test_every_pass_in_check_json_carries_its_observation_count(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned = tmp_path / "config"
    scanned.mkdir()
    (scanned / "app.env").write_text("LOG_LEVEL=info\nPORT=8080\n")
    monkeypatch.setenv("PREFLIGHT_SCAN_PATHS", str(scanned))
    code, out, _ = run("check", "secrets_plaintext", "--json")
    (result,) = json.loads(out)
    assert code == 0 and result["status"] == "PASS", result
    assert result["observations"] == 1 and "1 file scanned" in result["summary"]
    (scanned / "app.env").unlink()
    code, out, _ = run("check", "secrets_plaintext", "--json")
    (empty,) = json.loads(out)
    assert empty["status"] == "UNKNOWN" and empty["observations"] == 0
