"""The gate from a terminal: WARN blocks until accepted, advisory checks never block, overrides
are shown as such, nothing to verify is never READY, blockers grouped by cause within 100
columns, and every bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from store import Store
from tests.support.gate import BINDINGS, DNS_ITEMS, Probes, probes, write_checklist


@pytest.fixture
def gate_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Probes]:
    """A team's small checklist, bound to three test checks; no Slack, nothing leaves."""
    monkeypatch.setenv("PREFLIGHT_DB", str(tmp_path / "preflight.db"))
    monkeypatch.setenv("PREFLIGHT_CHECKLIST", str(write_checklist(tmp_path)))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    monkeypatch.setenv("SLACK_APP_TOKEN", "")
    # A team's own bindings file, as PREFLIGHT_BINDINGS documents it.
    bindings = tmp_path / "bindings.yml"
    bindings.write_text(yaml.safe_dump({k: list(v) for k, v in BINDINGS.items()}), "utf-8")
    monkeypatch.setenv("PREFLIGHT_BINDINGS", str(bindings))
    with probes() as found:
        yield found


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def check_now(found: Probes) -> None:
    code, out, err = run("check", *found.ids)
    assert code in (0, 1), (out, err)


def state(tmp_path: Path) -> tuple[int, int, int, int]:
    """Everything a command could write: sign-off events, acceptances, overrides, audit rows."""
    with Store.open(tmp_path / "preflight.db") as store:
        return (
            store.signoff_count(),
            len(store.acceptances()),
            sum(len(v) for v in store.overrides().values()),
            len(store.audit_log(10_000)),
        )


def all_lines_fit(*outputs: str) -> None:
    for text in outputs:
        for line in text.splitlines():
            assert len(line) <= 100, line


def test_a_warn_blocks_until_accepted_and_a_different_warn_blocks_again(
    gate_env: Probes, tmp_path: Path
) -> None:
    found = gate_env
    found.dns.status, found.dns.summary = found.dns.status.PASS, "6 records resolved"
    check_now(found)
    assert run("signoff", "ops/runbook", "--as", "alice")[0] == 0
    # the advisory check fails: the item waits on a person, whose sign-off it does not outvote
    code, out, _ = run("status", "--cached")
    assert "SECURITY: waiting on a sign-off — blocks 1 item" in out
    assert run("signoff", "sec/logs", "--as", "bob", "--note", "known noise")[0] == 0
    code, out, _ = run("gate", "--cached")
    assert code == 1
    assert "zz_gate_tls WARN: TLS 1.0 accepted on api.example.com:443 — blocks 1 item" in out
    assert 'preflight accept sec/tls --as … --reason "…"' in out

    code, out, _ = run("accept", "sec/tls", "--as", "alice", "--reason", "one partner, until May")
    assert code == 0 and "Accepted zz_gate_tls WARN for sec/tls as alice" in out
    code, out, _ = run("gate", "--cached")
    assert code == 0 and out.startswith("READY TO DEPLOY"), out
    # the advisory check's FAIL is shown, and never blocks
    assert "advisory (does not block): zz_gate_logs FAIL: 12 errors in the last hour" in out
    with Store.open(tmp_path / "preflight.db") as store:
        (accepted,) = store.acceptances()
    assert (accepted.item_id, accepted.check_id, accepted.status) == (
        "sec/tls",
        "zz_gate_tls",
        "WARN",
    )
    assert accepted.user == "alice" and accepted.reason == "one partner, until May"

    found.tls.summary = "TLS 1.1 accepted on api.example.com:443"
    check_now(found)
    code, out, _ = run("gate", "--cached")
    assert code == 1 and "zz_gate_tls WARN: TLS 1.1 accepted" in out


def test_accept_by_check_id_covers_every_item_its_warning_holds(gate_env: Probes) -> None:
    found = gate_env
    found.dns.status, found.dns.summary = found.dns.status.WARN, "TTL 30 s on 5 records"
    check_now(found)
    code, out, _ = run("status", "--cached")
    assert "zz_gate_dns WARN: TTL 30 s on 5 records — blocks 5 items" in out
    assert 'preflight accept zz_gate_dns --as … --reason "…"' in out
    code, out, _ = run("accept", "zz_gate_dns", "--as", "bob", "--reason", "TTL is fine for now")
    assert code == 0 and out.count("Accepted zz_gate_dns WARN") == 5
    data = json.loads(run("status", "--cached", "--json")[1])
    assert not [b for b in data["blocking_items"] if b["id"] in DNS_ITEMS]


def test_signoff_on_a_failing_item_is_stored_but_still_blocked_until_overridden(
    gate_env: Probes, tmp_path: Path
) -> None:
    check_now(gate_env)
    code, out, _ = run("signoff", "net/dns-1", "--as", "alice", "--note", "looked fine to me")
    assert code == 0 and "Signed off net/dns-1 as alice." in out
    assert "still blocked by zz_gate_dns: FAIL api.example.com does not resolve" in out
    with Store.open(tmp_path / "preflight.db") as store:
        assert [s.user for s in store.signoffs()["net/dns-1"]] == ["alice"]
    data = json.loads(run("status", "--cached", "--json")[1])
    assert "net/dns-1" in {b["id"] for b in data["blocking_items"]}

    code, out, _ = run(
        "signoff", "net/dns-1", "--as", "carol", "--override", "--reason", "internal-only host"
    )
    assert code == 0 and "Overrode net/dns-1" in out and "overridden" in out
    data = json.loads(run("status", "--cached", "--json")[1])
    assert "net/dns-1" not in {b["id"] for b in data["blocking_items"]}
    (over,) = data["overridden"]
    assert over["id"] == "net/dns-1" and over["overrides"][0]["user"] == "carol"
    assert over["overrides"][0]["reason"] == "internal-only host"
    code, out, _ = run("status", "--cached")
    assert "! net/dns-1 OVERRIDDEN — overridden by carol: internal-only host" in out
    assert "zz_gate_dns FAIL: api.example.com does not resolve — blocks 4 items" in out
    # withdrawing the sign-off withdraws the override with it
    assert run("unsign", "net/dns-1", "--as", "carol")[0] == 0
    data = json.loads(run("status", "--cached", "--json")[1])
    assert data["overridden"] == []
    assert "net/dns-1" in {b["id"] for b in data["blocking_items"]}


def test_a_checklist_with_nothing_applicable_is_blocked_with_nothing_to_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFLIGHT_DB", str(tmp_path / "preflight.db"))
    path = write_checklist(
        tmp_path, "# Launch\n\n## OPS\n\n- [ ] Pager set up <!-- id: ops/pager -->\n"
    )
    monkeypatch.setenv("PREFLIGHT_CHECKLIST", str(path))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    assert run("signoff", "ops/pager", "--as", "bob", "--na", "no pager in this team")[0] == 0
    code, out, _ = run("gate", "--cached")
    assert code == 1 and "nothing to verify" in out and "READY" not in out
    data = json.loads(run("status", "--cached", "--json")[1])
    assert data["gate"] == "BLOCKED" and data["nothing_to_verify"] is True
    assert data["blockers"][0]["kind"] == "empty"


def test_one_failure_bound_to_five_items_is_one_line(gate_env: Probes) -> None:
    check_now(gate_env)
    code, out, _ = run("status", "--cached")
    assert code == 0
    lines = [line for line in out.splitlines() if "api.example.com does not resolve" in line]
    assert lines == ["  • zz_gate_dns FAIL: api.example.com does not resolve — blocks 5 items"]
    data = json.loads(run("status", "--cached", "--json")[1])
    dns = next(b for b in data["blockers"] if b["check"] == "zz_gate_dns")
    assert dns["count"] == 5 and dns["items"] == list(DNS_ITEMS) and dns["kind"] == "check"
    # severity orders the groups: the critical WARN before the high FAIL; sign-offs last
    kinds = [(b["kind"], b["check"]) for b in data["blockers"]]
    assert kinds[:2] == [("check", "zz_gate_dns"), ("warning", "zz_gate_tls")]
    assert kinds[-1] == ("signoff", None)
    assert data["blockers"][-1]["next"] == "preflight signoff ops/runbook --as …"


def test_gate_prints_at_most_20_causes_and_every_line_fits_100_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sections = "".join(
        f"## SECTION {n} {'WITH A VERY LONG NAME ' * 6}\n\n- [ ] Item {n} {'word ' * 60}\n\n"
        for n in range(25)
    )
    monkeypatch.setenv("PREFLIGHT_DB", str(tmp_path / "preflight.db"))
    monkeypatch.setenv("PREFLIGHT_CHECKLIST", str(write_checklist(tmp_path, "# L\n\n" + sections)))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "")
    code, out, _ = run("gate", "--cached")
    assert code == 1
    bullets = [line for line in out.splitlines() if line.startswith("  • ")]
    assert len(bullets) == 20
    assert out.splitlines()[-1] == "5 more: preflight status --json"
    code, status_out, _ = run("status", "--cached")
    all_lines_fit(out, status_out)


def test_long_results_fit_100_columns(gate_env: Probes) -> None:
    gate_env.dns.summary = "resolver said " + "SERVFAIL " * 60
    gate_env.tls.summary = "x" * 400
    check_now(gate_env)
    outs = [run("status", "--cached")[1], run("gate", "--cached")[1]]
    all_lines_fit(*outs)
    assert "blocks 5 items" in outs[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["signoff", "ops/runbook", "--as", ""], "--as NAME"),
        (["signoff", "ops/runbook", "--as", "   "], "--as NAME"),
        (["signoff", "ops/runbook", "--as", "\x1b[31mroot"], "not a user name"),
        (["signoff", "%", "--as", "alice"], "No checklist item matches"),
        (["signoff", "ctl", "--as", "alice"], "No checklist item matches"),
        (["signoff", "dn", "--as", "alice"], "No checklist item matches"),
        (["signoff", "DNS", "--as", "alice"], "Candidates:"),
        (["accept", "sec/tls", "--as", "alice"], "Give a reason"),
        (["accept", "sec/tls", "--as", "alice", "--reason", "\x1b[0m \x07"], "Give a reason"),
        (["accept", "sec/tls", "--as", "", "--reason", "ok"], "--as NAME"),
        (["accept", "ops/runbook", "--as", "alice", "--reason", "ok"], "No warning to accept"),
        (["accept", "zz_gate_logs", "--as", "alice", "--reason", "ok"], "No warning to accept"),
        (["signoff", "net/dns-1", "--as", "carol", "--override"], "Give a reason"),
        (["signoff", "net/dns-1", "--as", "carol", "--reason", "x"], "--reason goes with"),
        (["signoff", "ops/runbook", "--as", "bob", "--na", " "], "not applicable"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    gate_env: Probes, tmp_path: Path, args: list[str], message: str
) -> None:
    check_now(gate_env)
    before = state(tmp_path)
    code, out, err = run(*args)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message.lower() in lines[0].lower(), err
    assert "\x1b" not in err
    assert state(tmp_path) == before


def test_ansi_and_control_characters_are_stripped_from_notes_and_reasons(
    gate_env: Probes, tmp_path: Path
) -> None:
    check_now(gate_env)
    note = "\x1b[31mrestore\x1b[0m tested\x07 \x1b]8;;http://evil\x07link\x1b]8;;\x07\u202e"
    assert run("signoff", "ops/runbook", "--as", "alice", "--note", note)[0] == 0
    reason = "\x1b[2Jpartner\x00 needs it\x1b[1A"
    assert run("accept", "sec/tls", "--as", "alice", "--reason", reason)[0] == 0
    assert (
        run("signoff", "net/dns-1", "--as", "c", "--override", "--reason", "\x1b[1mok\x1b[0m")[0]
        == 0
    )
    with Store.open(tmp_path / "preflight.db") as store:
        assert store.signoffs()["ops/runbook"][0].note == "restore tested link"
        assert store.acceptances()[0].reason == "partner needs it"
        assert store.overrides()["net/dns-1"][0].reason == "ok"
        details = " ".join(e.detail for e in store.audit_log())
    assert "\x1b" not in details and "\x07" not in details


def test_exports_keep_overrides_and_acceptances(gate_env: Probes) -> None:
    found = gate_env
    check_now(found)
    assert (
        run("signoff", "net/dns-1", "--as", "carol", "--override", "--reason", "lab host")[0] == 0
    )
    assert run("accept", "sec/tls", "--as", "alice", "--reason", "one partner, until May")[0] == 0
    code, markdown, _ = run("export", "--format", "markdown")
    assert code == 0
    dns_line = next(line for line in markdown.splitlines() if "<!-- id: net/dns-1 -->" in line)
    assert dns_line.startswith("- [x]")
    assert "Overridden (carol): lab host" in markdown
    code, raw, _ = run("export", "--format", "json")
    data = json.loads(raw)
    dns = next(i for i in data["items"] if i["id"] == "net/dns-1")
    assert dns["status"] == "overridden"
    assert [(o["user"], o["reason"]) for o in dns["overrides"]] == [("carol", "lab host")]
    assert [(a["item_id"], a["user"]) for a in data["acceptances"]] == [("sec/tls", "alice")]
