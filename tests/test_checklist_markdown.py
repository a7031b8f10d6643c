"""Any Markdown checklist imports: list syntaxes, nesting, continuation, headings, ids, files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.checklist import (
    ChecklistError,
    diff_items,
    extract_targets,
    load_bundled,
    load_runbook_files,
    parse_checklist,
    read_checklist_file,
    slugify,
)
from bot.model import Checklist, ItemKind, Targets


def rows(checklist: Checklist) -> list[tuple[str, str, bool]]:
    return [(i.id, i.text, i.checked) for i in checklist.items]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("", []),
        ("# Only a title\n\nSome prose.\n", []),
        ("## S\n- [ ] dash\n", [("s/dash", "dash", False)]),
        ("## S\n- [x] done\n", [("s/done", "done", True)]),
        ("## S\n- [X] upper\n", [("s/upper", "upper", True)]),
        ("## S\n* [ ] star\n", [("s/star", "star", False)]),
        ("## S\n+ [ ] plus\n", [("s/plus", "plus", False)]),
        ("## S\n1. [ ] one\n2. [x] two\n", [("s/one", "one", False), ("s/two", "two", True)]),
        ("## S\n1) [ ] paren\n", [("s/paren", "paren", False)]),
        ("## S\n- [ ]\n- [ ] real\n", [("s/real", "real", False)]),  # empty box: not an item
        ("## S\n- [] not a box\n- [y] nor this\n", []),
        ("## S\n- plain bullet\n", []),
        (
            "## S\n- [ ] item that\ncontinues lazily\n",
            [("s/item-that-continues-lazily", "item that continues lazily", False)],
        ),
        (
            "## S\n- [ ] item that\n      continues indented\n",
            [("s/item-that-continues-indented", "item that continues indented", False)],
        ),
        (
            "## S\r\n- [ ] crlf one\r\n- [x] crlf two\r\n",
            [("s/crlf-one", "crlf one", False), ("s/crlf-two", "crlf two", True)],
        ),
        ("## S\r- [ ] old mac\r", [("s/old-mac", "old mac", False)]),
        ("\ufeff## S\n- [ ] bom\n", [("s/bom", "bom", False)]),
        ("## Closed heading ##\n- [ ] a\n", [("closed-heading/a", "a", False)]),
        ("## 🚀 Launch ✅\n- [ ] go\n", [("launch/go", "go", False)]),
        ("## S\n- [ ] 🎉\n", [("s/item", "🎉", False)]),
        (
            "## S\n- [ ] use `npm audit` and [docs](https://x.example/y) **now** <b>b</b>\n",
            [
                (
                    "s/use-npm-audit-and-docs-now-b",
                    "use `npm audit` and [docs](https://x.example/y) **now** <b>b</b>",
                    False,
                )
            ],
        ),
        (
            "## S\n- [ ] a &amp; b <!-- a note -->\n",
            [("s/a-b", "a &amp; b <!-- a note -->", False)],
        ),
        (
            "## S\n- [ ] dup\n- [ ] dup\n- [ ] dup\n",
            [
                ("s/dup", "dup", False),
                ("s/dup-2", "dup", False),
                ("s/dup-3", "dup", False),
            ],
        ),
        ("## S\n- [ ] named <!-- id: my-item -->\n", [("my-item", "named", False)]),
        ("## S\n- [ ] <!-- id: front.id_1 --> first\n", [("front.id_1", "first", False)]),
        ("## S\n- [ ] bad <!-- id: Not Valid -->\n", [("s/bad", "bad", False)]),
        (
            "## S\n- [ ] own line\n  <!-- id: on-its-own -->\n",
            [("on-its-own", "own line", False)],
        ),
        (
            "## S\n- [ ] a <!-- id: s/b -->\n- [ ] b\n",  # explicit wins; generated one moves
            [("s/b", "a", False), ("s/b-2", "b", False)],
        ),
        (
            "> ## Quoted heading\n> - [ ] quoted\n",
            [("quoted-heading/quoted", "quoted", False)],
        ),
        ("## S\n```\n- [ ] in a fence\n```\n", []),
        ("## S\n\n    - [ ] indented code\n", []),
    ],
)
def test_item_syntax(doc: str, expected: list[tuple[str, str, bool]]) -> None:
    assert rows(parse_checklist(doc)) == expected


@pytest.mark.parametrize("indent", ["  ", "    ", "\t"])
def test_nesting_at_any_indentation(indent: str) -> None:
    doc = f"## S\n- [ ] parent\n{indent}- [ ] child\n{indent}{indent}- [x] grandchild\n- [ ] next\n"
    items = parse_checklist(doc).items
    assert [(i.id, i.parent_id) for i in items] == [
        ("s/parent", None),
        ("s/child", "s/parent"),
        ("s/grandchild", "s/child"),
        ("s/next", None),
    ]
    assert items[2].checked


def test_details_and_checkboxes_below_plain_bullets() -> None:
    doc = (
        "## S\n"
        "- [ ] parent\n"
        "  - Host: `db.example`\n"
        "    - deeper note\n"
        "      - [ ] child under a note\n"
        "\n"
        "  A later paragraph.\n"
        "- plain top bullet\n"
        "  - [ ] orphan checkbox\n"
    )
    items = parse_checklist(doc).items
    parent = items[0]
    assert parent.details == ("Host: `db.example`", "deeper note", "A later paragraph.")
    assert [(i.text, i.parent_id) for i in items[1:]] == [
        ("child under a note", "s/parent"),
        ("orphan checkbox", None),
    ]


def test_sections_paths_and_title() -> None:
    doc = (
        "- [ ] before anything\n"
        "# The Title\n"
        "- [ ] under the title\n"
        "## One\n"
        "### Sub\n"
        "#### Deeper\n"
        "- [ ] deep\n"
        "### Sibling\n"
        "- [ ] sib\n"
        "## Empty section\n"
        "## Two\n"
        "- [ ] direct\n"
    )
    c = parse_checklist(doc)
    assert c.title == "The Title"
    # Items before the first `##` go to a section named after the document (issue 8).
    assert c.sections == ("The Title", "One", "Two")
    assert [(i.id, i.section, i.path, i.line) for i in c.items] == [
        ("before-anything", "The Title", (), 1),
        ("the-title/under-the-title", "The Title", (), 3),
        ("deeper/deep", "One", ("One", "Sub", "Deeper"), 7),
        ("sibling/sib", "One", ("One", "Sibling"), 9),
        ("two/direct", "Two", ("Two",), 12),
    ]
    assert c.items[2].subsection == "Deeper"
    assert c.items[0].subsection == "The Title"
    assert [(n.line, n.kind) for n in c.notes] == [(1, "before_heading"), (3, "before_heading")]


def test_setext_headings() -> None:
    c = parse_checklist("Title\n=====\n\nSection\n-------\n- [ ] x\n")
    assert c.title == "Title"
    assert [(i.id, i.section) for i in c.items] == [("section/x", "Section")]


@pytest.mark.parametrize(
    ("doc", "condition"),
    [
        ("## S\n- [ ] a (if using Redis)\n", "if using Redis"),
        ("## S\n- [ ] a (Optional)\n", "optional"),
        ("## S\n### Docker (if using Docker)\n- [ ] a\n", "if using Docker"),
        ("## S (optional)\n### T\n- [ ] a\n", "optional"),
        ("## S\n- [ ] parent (if needed)\n  - [ ] child\n", "if needed"),
        ("## S\n- [ ] a (recommended)\n", None),
        ("## S\n- [ ] a\n", None),
    ],
)
def test_conditions(doc: str, condition: str | None) -> None:
    assert parse_checklist(doc).items[-1].condition == condition


def test_claims_and_checks_are_not_done() -> None:
    items = parse_checklist("## S\n- [ ] deployed ✅\n- [x] ticked\n").items
    assert (items[0].claimed, items[0].checked, items[0].text) == (True, False, "deployed ✅")
    # A `[x]` in the source is a claim (issue 8): shown as such, never done.
    assert (items[1].claimed, items[1].checked) == (True, True)


def test_decisions_in_any_checklist() -> None:
    doc = (
        "## Infra\n"
        "- [ ] **Decision needed**: CDN provider (CloudFront / Fastly)\n"
        "- [ ] Decision needed: Queue (SQS, RabbitMQ or Kafka)\n"
        "## DECISION TRACKING\n"
        "1. **CDN**\n"
        "   - [ ] Amazon CloudFront\n"
        "   - [ ] Fastly\n"
        "   - [ ] Akamai\n"
        "2. **Database**: Which engine?\n"
        "   - [ ] PostgreSQL\n"
        "   - [ ] MySQL\n"
        "- [ ] a real item in the decision section\n"
    )
    c = parse_checklist(doc)
    assert [(d.id, d.topic, [o.label for o in d.options], d.item_id) for d in c.decisions] == [
        (
            "cdn",
            "CDN",
            ["Amazon CloudFront", "Fastly", "Akamai"],
            "infra/decision-needed-cdn-provider-cloudfront-fastly",
        ),
        (
            "queue",
            "Queue",
            ["SQS", "RabbitMQ", "Kafka"],
            "infra/decision-needed-queue-sqs-rabbitmq-or-kafka",
        ),
        ("database", "Database", ["PostgreSQL", "MySQL"], None),
    ]
    assert c.decisions[2].question == "Which engine?"
    assert [i.kind for i in c.items] == [ItemKind.DECISION, ItemKind.DECISION, ItemKind.MANUAL]
    assert c.sections == ("Infra", "DECISION TRACKING")


def test_runbooks_in_any_checklist() -> None:
    doc = (
        "## Emergency Procedures\n"
        "### When the database is down\n"
        "1. Check RDS status\n"
        "2. Fail over\n"
        "\n"
        "Some prose between steps.\n"
        "\n"
        "3. Tell the team\n"
        "### If Deployment Fails\n"
        "1. Roll back\n"
        "## Quick start\n"
        "### Step 4 - Celebrate (10 minutes)\n"
        "1. Cake\n"
        "## Other\n"
        "### Not a runbook\n"
        "1. numbered but elsewhere\n"
    )
    c = parse_checklist(doc, source="team.md")
    assert [(r.id, r.title, r.steps, r.section, r.source) for r in c.runbooks] == [
        (
            "the-database-is-down",
            "When the database is down",
            ("Check RDS status", "Fail over", "Tell the team"),
            "Emergency Procedures",
            "team.md",
        ),
        (
            "deployment-fails",
            "If Deployment Fails",
            ("Roll back",),
            "Emergency Procedures",
            "team.md",
        ),
        ("celebrate", "Celebrate", ("Cake",), "Quick start", "team.md"),
    ]


def test_verify_blocks_and_env_templates_in_any_checklist() -> None:
    doc = (
        "## Deploy\n"
        "### Service\n"
        "- [ ] it runs\n"
        "\n"
        "**Smoke Test:**\n"
        "```sh\n"
        "curl -f http://localhost/health\n"
        "```\n"
        "\n"
        "```\n"
        "unlabelled\n"
        "```\n"
        "### Worker (.env)\n"
        "```\n"
        "# comment\n"
        "export QUEUE_URL=redis://secret@host\n"
        "WORKERS=4\n"
        "```\n"
        "### Check the .env file\n"
        "```bash\n"
        "grep -c = .env\n"
        "```\n"
        "```dotenv\n"
        "A=1\n"
        "```\n"
    )
    c = parse_checklist(doc)
    assert [(v.label, v.language, v.code, v.section_path) for v in c.verify_blocks] == [
        ("Smoke Test", "sh", "curl -f http://localhost/health", ("Deploy", "Service")),
        ("", "", "unlabelled", ("Deploy", "Service")),
        ("", "bash", "grep -c = .env", ("Deploy", "Check the .env file")),
    ]
    assert c.env_templates == {"worker": ("QUEUE_URL", "WORKERS"), "check-the-file": ("A",)}
    assert "secret" not in repr(c.env_templates)


@pytest.mark.parametrize(
    ("text", "targets"),
    [
        ("", Targets()),
        ("- RTO: 4h\n- RPO: 15 min\n", Targets(rto_minutes=240, rpo_minutes=15)),
        ("Recovery time objective is 1 day", Targets(rto_minutes=1440)),
        ("p95 latency under 1.5 s", Targets(p95_ms=1500)),
        ("error rate below 0.5%", Targets(error_rate_percent=0.5)),
        ("Backup retention: 7 days", Targets(backup_retention_days=7)),
        ("- [ ] RTO defined\n- [ ] Log retention 90 days\n", Targets()),
    ],
)
def test_targets_from_text(text: str, targets: Targets) -> None:
    assert extract_targets(text) == targets


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("SSL certificate obtained", "ssl-certificate-obtained"),
        (
            "SSL certificate obtained for `tpx.power100.io`",
            "ssl-certificate-obtained-for-tpx-power100-io",
        ),
        ("**Decision needed**: Email", "decision-needed-email"),
        ("[the docs](https://example.com/very/long) page", "the-docs-page"),
        ("a <span class='x'>b</span> <!-- hidden --> c", "a-b-c"),
        ("Crème brûlée ✅ 🚀", "creme-brulee"),
        ("Tom &amp; Jerry", "tom-jerry"),
        ("`<b>` in code", "b-in-code"),
        ("   ", ""),
        (
            "Database user privileges reviewed (principle of least privilege)",
            "database-user-privileges-reviewed-principle-of",
        ),
        ("x" * 60, "x" * 48),
        ("a" * 47 + " bcd", "a" * 47),
        ("a" * 48 + " bcd", "a" * 48),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug
    assert len(slug) <= 48


BASE = """# Launch
## Security
### TLS
- [ ] Certificate installed
- [ ] HSTS enabled
### Access
- [ ] SSH keys only
## Backups
- [ ] Snapshots daily
"""


@pytest.mark.parametrize(
    "edited",
    [
        BASE.replace("### Access\n", "### Access\n- [ ] A brand new item\n"),
        BASE.replace("- [ ] HSTS enabled", "- [ ] HSTS enabled with preload"),
        BASE.replace("## Backups", "## Monitoring\n- [ ] Alerts\n## Backups"),
        BASE.replace("- [ ] HSTS enabled\n", ""),
        "Intro paragraph.\n\n" + BASE + "\n## Appendix\n- [ ] later\n",
        BASE.replace("\n", "\r\n"),
    ],
)
def test_ids_stable_under_edits_elsewhere(edited: str) -> None:
    old, new = parse_checklist(BASE), parse_checklist(edited)
    new_by_text = {i.text: i.id for i in new.items}
    for item in old.items:
        if item.text in new_by_text:
            assert new_by_text[item.text] == item.id


def test_diff_items() -> None:
    old = parse_checklist(BASE + "- [ ] Restore tested <!-- id: restore -->\n")
    new = parse_checklist(
        BASE.replace("- [ ] HSTS enabled\n", "").replace("SSH keys only", "SSH keys only, no root")
        + "- [ ] Restore drill done <!-- id: restore -->\n- [ ] Offsite copy\n"
    )
    diff = diff_items(old, new)
    assert diff.added == ("access/ssh-keys-only-no-root", "backups/offsite-copy")
    assert diff.changed == ("restore",)
    assert diff.removed == ("tls/hsts-enabled", "access/ssh-keys-only")
    assert diff.unchanged == ("tls/certificate-installed", "backups/snapshots-daily")
    same = diff_items(old, old)
    assert (same.added, same.changed, same.removed) == ((), (), ())


def test_parse_rejects_bytes() -> None:
    with pytest.raises(TypeError):
        parse_checklist(b"- [ ] x")  # type: ignore[arg-type]


def test_read_checklist_file(tmp_path: Path) -> None:
    good = tmp_path / "ok.md"
    good.write_bytes(b"\xef\xbb\xbf## S\r\n- [ ] from a file\r\n")
    assert rows(read_checklist_file(good)) == [("s/from-a-file", "from a file", False)]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.md", None, "not found"),
        ("adir", "DIR", "is a directory"),
        ("nul.md", b"## S\n- [ ] a\x00b\n", "binary"),
        ("latin1.md", "## Café\n- [ ] x\n".encode("latin-1"), "not UTF-8"),
        ("big.md", b"- [ ] x\n" * 200, "too large"),
    ],
)
def test_read_checklist_file_errors(
    tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ChecklistError) as err:
        read_checklist_file(path, max_bytes=1000)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_load_runbook_files(tmp_path: Path) -> None:
    (tmp_path / "db-failover.md").write_text(
        "# Database failover\n\nWhen RDS is down.\n\n1. Check status\n2. Promote replica\n"
        "   - sub note\n3. Update DNS\n",
        "utf-8",
    )
    (tmp_path / "Cache Flush.markdown").write_text("- [ ] Flush Redis\n- Warm cache\n", "utf-8")
    (tmp_path / "notes.txt").write_text("1. not markdown\n", "utf-8")
    (tmp_path / "sub.md").mkdir()
    runbooks = load_runbook_files(tmp_path)
    assert [(r.id, r.title, r.steps, r.section) for r in runbooks] == [
        ("cache-flush", "Cache Flush", ("Flush Redis", "Warm cache"), ""),
        ("db-failover", "Database failover", ("Check status", "Promote replica", "Update DNS"), ""),
    ]
    assert runbooks[1].source == str(tmp_path / "db-failover.md")


def test_load_runbook_files_errors(tmp_path: Path) -> None:
    with pytest.raises(ChecklistError, match="not found"):
        load_runbook_files(tmp_path / "nope")
    (tmp_path / "f.md").write_text("x", "utf-8")
    with pytest.raises(ChecklistError, match="not a directory"):
        load_runbook_files(tmp_path / "f.md")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.md").write_bytes(b"\xff\xfe1. a\n")
    with pytest.raises(ChecklistError, match="not UTF-8"):
        load_runbook_files(tmp_path / "bad")


def test_bundled_edit_keeps_other_ids() -> None:
    bundled = load_bundled()
    text = (Path(__file__).resolve().parents[1] / "bot" / "content" / "checklist.md").read_text()
    edited = text.replace(
        "- [ ] HSTS headers configured", "- [ ] HSTS headers configured (max-age 1 year)"
    ).replace("### Access Control\n", "### Access Control\n- [ ] MFA enforced for admins\n")
    diff = diff_items(bundled, parse_checklist(edited))
    assert diff.added == (
        "ssl-tls-certificates/hsts-headers-configured-max-age-1-year",
        "access-control/mfa-enforced-for-admins",
    )
    assert diff.removed == ("ssl-tls-certificates/hsts-headers-configured",)
    assert diff.changed == ()
    assert len(diff.unchanged) == 222


def test_explicit_ids_on_runbook_headings_and_tracked_decisions() -> None:
    doc = (
        "## DECISION TRACKING\n"
        "1. **Message queue** <!-- id: mq -->\n"
        "   - [ ] SQS\n"
        "2. **Message queue**\n"
        "   - [ ] Kafka\n"
        "## Runbooks\n"
        "### Restart the app <!-- id: restart -->\n"
        "1. Stop\n"
        "### Restart the app\n"
        "1. Start\n"
        "### Restart the app\n"
        "1. Again\n"
    )
    c = parse_checklist(doc)
    assert [(d.id, d.topic) for d in c.decisions] == [
        ("mq", "Message queue"),
        ("message-queue", "Message queue"),
    ]
    assert [(r.id, r.title) for r in c.runbooks] == [
        ("restart", "Restart the app"),
        ("restart-the-app", "Restart the app"),
        ("restart-the-app-2", "Restart the app"),
    ]


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("Step 1: Final Preparation (1 day)", "Final Preparation"),
        ("Step 2 - Deployment (2-4 hours)", "Deployment"),
        ("Rollback (manual)", "Rollback (manual)"),
        ("Step 3. Verify (30 min)", "Verify"),
    ],
)
def test_runbook_titles(heading: str, title: str) -> None:
    c = parse_checklist(f"## QUICK START\n### {heading}\n1. do it\n")
    assert c.runbooks[0].title == title


def test_the_last_id_comment_counts() -> None:
    c = parse_checklist("## S\n- [ ] a <!-- id: first --> b <!-- id: second -->\n")
    assert rows(c) == [("second", "a <!-- id: first --> b", False)]
