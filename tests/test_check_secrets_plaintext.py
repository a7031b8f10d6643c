"""secrets_plaintext on fixture files, compared with detect-secrets."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from checks import secrets_plaintext
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import result_text

FIXTURES = Path(__file__).parent / "fixtures" / "part2" / "secrets"
LEAKY = FIXTURES / "leaky"
CLEAN = FIXTURES / "clean"
# every fake credential in the leaky fixtures: none may appear in a result
FAKE_VALUES = (
    "not-a-real-password-789",
    "hunter2-not-real",
    "not-a-real-password-123",
    "not-a-real-token-456",
    "not-a-real-url-pass",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "xoxb-000000000000-fake",
    "not-a-real-env-password-321",
    "not-a-real-jwt-secret",
    "not-a-real-yaml-pass",
    "not-a-real-key-000",
    "not-a-real-json-pass",
    "not-a-real-js-pass",
    "MIIEfakeNOTaREALkey",
)


def scan(*paths: Path, **env: str) -> CheckContext:
    return CheckContext(
        env={"PREFLIGHT_SCAN_PATHS": ",".join(str(p) for p in paths), **env}, timeout_s=20
    )


def files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def test_bundled_checklist_is_clean_by_default() -> None:
    result = run_one(secrets_plaintext.CHECK, CheckContext(env={}))
    assert result.status is Status.PASS, result.evidence
    assert result.evidence["paths"] == [str(secrets_plaintext.BUNDLED_CHECKLIST)]
    assert result.evidence["files_scanned"] == 1


def test_checklist_path_from_context(tmp_path: Path) -> None:
    doc = tmp_path / "checklist.md"
    doc.write_text("- [ ] DB ready\n  - Password: not-a-real-password-999\n")
    result = run_one(secrets_plaintext.CHECK, CheckContext(env={}, checklist_path=str(doc)))
    assert result.status is Status.FAIL
    assert result.evidence["findings"] == [
        {
            "file": str(doc),
            "line": 2,
            "kind": "secret_field",
            "fingerprint": secrets_plaintext.fingerprint("not-a-real-password-999"),
        }
    ]


def test_clean_fixtures_pass() -> None:
    result = run_one(secrets_plaintext.CHECK, scan(CLEAN))
    assert result.status is Status.PASS, result.evidence["findings"]
    assert result.evidence["files_scanned"] == len(files_in(CLEAN))


def test_leaky_fixtures_fail_without_showing_values() -> None:
    result = run_one(secrets_plaintext.CHECK, scan(LEAKY))
    assert result.status is Status.FAIL
    findings = result.evidence["findings"]
    assert {tuple(sorted(f)) for f in findings} == {("file", "fingerprint", "kind", "line")}
    kinds = {f["kind"] for f in findings}
    assert kinds >= {
        "secret_field",
        "secret_assignment",
        "url_credentials",
        "aws_access_key",
        "slack_token",
        "private_key",
    }
    assert all(len(f["fingerprint"]) == 16 for f in findings)
    text = result_text(result)
    for value in FAKE_VALUES:
        assert value not in text
    assert "PREFLIGHT_SECRETS_ALLOWLIST" in result.remediation


def test_finds_everything_detect_secrets_finds_and_more() -> None:
    files = files_in(FIXTURES)
    collection = SecretsCollection()
    with default_settings():
        for path in files:
            collection.scan_file(str(path))
    theirs = {(str(Path(name).resolve()), secret.line_number) for name, secret in collection}
    assert theirs, "detect-secrets found nothing: the fixtures are not testing anything"

    found, _, complete = secrets_plaintext.scan_paths([FIXTURES])
    assert complete
    ours = {(str(Path(f.file).resolve()), f.line) for f in found}

    assert theirs <= ours, f"missed: {sorted(theirs - ours)}"
    # and the shell-assignment and Markdown-list forms detect-secrets does not report
    runbook = str((LEAKY / "runbook.md").resolve())
    only_ours = {line for name, line in ours - theirs if name == runbook}
    assert {7, 11} <= only_ours  # "- Password: value" and "PGPASSWORD=value psql ..."


def test_allowlist_by_fingerprint(tmp_path: Path) -> None:
    doc = tmp_path / "notes.md"
    doc.write_text("DB_PASSWORD=not-a-real-password-555\nAPI_TOKEN=not-a-real-token-555\n")
    allowed = secrets_plaintext.fingerprint("not-a-real-password-555")
    result = run_one(
        secrets_plaintext.CHECK, scan(doc, PREFLIGHT_SECRETS_ALLOWLIST=f"{allowed.upper()}, x")
    )
    assert result.status is Status.FAIL
    assert result.evidence["allowlisted"] == 1
    assert [f["line"] for f in result.evidence["findings"]] == [2]


@pytest.mark.parametrize(
    "line",
    [
        'PGPASSWORD="$DB_PASSWORD" psql -h host',
        "PGPASSWORD=$DB_PASSWORD psql",
        "DB_PASSWORD=${DB_PASSWORD:-}",
        "TOKEN=$(aws secretsmanager get-secret-value --secret-id x)",
        "DB_PASSWORD=[SECURE_IN_AWS_SECRETS_MANAGER]",
        "JWT_SECRET=[NEW_PRODUCTION_SECRET_64_CHARS]",
        "SENDGRID_API_KEY=<your key here>",
        "API_TOKEN=YOUR_TOKEN",
        "API_TOKEN={{ api_token }}",
        "SECRET_TOKEN=***",
        "REDIS_PASSWORD=",
        "- Password: kept in the secrets manager, read from `DB_PASSWORD`",
        "- Password: `$DB_PASSWORD`",
        "  password: ${SMTP_PASSWORD}",
        "password: process.env.DB_PASSWORD",
        '"password": ""',
        'curl -H "Authorization: Bearer YOUR_TOKEN" https://x.test',
        "Authorization: Bearer PREFLIGHT_API_TOKEN",
        "postgres://user:<password>@db.example.test/tpedb",
        "postgres://user:password@db.example.test/tpedb",
        "postgres://user:${DB_PASSWORD}@db.example.test/tpedb",
        "- [ ] Secrets rotation policy defined",
        "- [ ] **Decision needed**: Secrets storage solution (AWS Secrets Manager / Vault)",
        "Auth token obtained",
        "DB_PASSWORD=hunter2-fake  # pragma: allowlist secret",
        "if PASSWORD == expected:",
    ],
)
def test_placeholders_and_prose_are_not_secrets(line: str) -> None:
    assert list(secrets_plaintext.scan_lines([line], "x.md")) == []


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("PGPASSWORD=not-a-real-password-123 psql -h db", "secret_assignment"),
        ("export API_TOKEN='not-a-real-token-456'", "secret_assignment"),
        ("AWS_SECRET_ACCESS_KEY = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "secret_assignment"),
        ('DB_PASSWORD="correct horse battery staple"', "secret_assignment"),
        ("- Password: not-a-real-password-789", "secret_field"),
        ("* **DB password**: `not-a-real-password-789`", "secret_field"),
        ("- [x] Admin password: not-a-real-password-789", "secret_field"),
        ("password: not-a-real-yaml-pass", "secret_field"),
        ('{"db": {"password": "not-a-real-json-pass"}}', "secret_field"),
        ("mysql://app:not-a-real-url-pass@db.example.test/app", "url_credentials"),
        ("curl -H 'Authorization: Bearer not-a-real-bearer-0000'", "bearer_token"),
        ("key id AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        ("token xoxb-000000000000-fake", "slack_token"),
        (
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXfakeXXXXfakeXXXX",
            "slack_webhook",
        ),
    ],
)
def test_credentials_found(line: str, kind: str) -> None:
    [finding] = list(secrets_plaintext.scan_lines([line], "x.md"))
    assert finding.kind == kind
    assert finding.line == 1


def test_source_code_counts_only_string_literals() -> None:
    lines = [
        "password = get_password()",
        "token_verification_enabled=token_verification_enabled,",
        '"jwt_secret": jwt_checks,',
        'connect(password="not-a-real-py-pass")',
    ]
    found = list(secrets_plaintext.scan_lines(lines, "app.py", code=True))
    assert [(f.line, f.kind) for f in found] == [(4, "secret_field")]


def test_private_key_block_is_one_finding() -> None:
    lines = (LEAKY / "deploy_key.pem").read_text().splitlines()
    found = list(secrets_plaintext.scan_lines(lines, "k.pem"))
    assert [(f.line, f.kind) for f in found] == [(1, "private_key")]


def test_skips_binary_large_and_vendored(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\0\1PGPASSWORD=not-a-real-password-1\n")
    (tmp_path / "big.log").write_text(
        "x" * (secrets_plaintext.MAX_FILE_BYTES + 1) + "\nPGPASSWORD=not-a-real-password-2\n"
    )
    for vendored in ("node_modules", ".git", ".venv"):
        (tmp_path / vendored).mkdir()
        (tmp_path / vendored / "leak.env").write_text("PGPASSWORD=not-a-real-password-3\n")
    (tmp_path / "ok.md").write_text("nothing here\n")
    result = run_one(secrets_plaintext.CHECK, scan(tmp_path))
    assert result.status is Status.PASS
    assert result.evidence["files_scanned"] == 1
    assert result.evidence["skipped_binary"] == 1
    assert result.evidence["skipped_large"] == 1


def test_missing_path_is_error(tmp_path: Path) -> None:
    result = run_one(secrets_plaintext.CHECK, scan(tmp_path / "nope.md"))
    assert result.status is Status.ERROR
    assert "PREFLIGHT_SCAN_PATHS" in result.remediation


def test_scan_stops_at_deadline() -> None:
    found, _, complete = secrets_plaintext.scan_paths([LEAKY], deadline=0.0)
    assert found == [] and complete is False


# --- symlinks, empty scans, `$`-leading values (issue 10) ----------------------------------

DOLLAR_PASSWORD = "$uperS3cret!2024"  # the example: a password, not a $VAR


def _k8s_secret_mount(mount: Path, files: dict[str, str]) -> None:
    """A directory laid out as Kubernetes mounts a Secret: every key is a symlink into
    `..data`, itself a symlink to a timestamped directory holding the real files."""
    mount.mkdir()
    stamped = mount / "..2026_11_28_05_00_00.000000001"
    stamped.mkdir()
    for name, text in files.items():
        (stamped / name).write_text(text)
    (mount / "..data").symlink_to(stamped.name)
    for name in files:
        (mount / name).symlink_to(Path("..data") / name)


def test_a_symlinked_env_named_directly_is_scanned(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_text("DB_PASSWORD=not-a-real-password-777\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    result = run_one(secrets_plaintext.CHECK, scan(link))
    assert result.status is Status.FAIL
    assert result.evidence["files_scanned"] == 1
    assert result.evidence["findings"][0]["file"] == str(link)
    assert f"{link}:1" in result.summary


def test_kubernetes_secret_mount_is_scanned_once_per_real_file(tmp_path: Path) -> None:
    mount = tmp_path / "secrets"
    _k8s_secret_mount(mount, {"password": "PASSWORD=not-a-real-k8s-pass-1\n", "user": "app\n"})
    result = run_one(secrets_plaintext.CHECK, scan(mount))
    assert result.status is Status.FAIL, result.summary
    assert result.evidence["files_scanned"] == 2  # two real files, reached three ways each
    assert result.evidence["duplicates"] >= 2
    [finding] = result.evidence["findings"]
    assert finding["file"] == str(mount / "password")  # the path people know
    assert "not-a-real-k8s-pass-1" not in result_text(result)


def test_symlink_loops_end_and_count_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "conf"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "notes.md").write_text("nothing secret\n")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "self").symlink_to(".", target_is_directory=True)
    (root / "dangling.env").symlink_to(tmp_path / "gone.env")
    result = run_one(secrets_plaintext.CHECK, scan(root))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["files_scanned"] == 1
    assert result.evidence["broken_links"] == 1
    assert result.observations == 1
    assert "1 file scanned" in result.summary


def test_an_empty_directory_is_unknown_not_pass(tmp_path: Path) -> None:
    result = run_one(secrets_plaintext.CHECK, scan(tmp_path))
    assert result.status is Status.UNKNOWN
    assert "no file could be scanned" in result.summary
    assert result.evidence["files_scanned"] == 0


def test_only_unscannable_files_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2")
    (tmp_path / "dangling.env").symlink_to(tmp_path / "gone.env")
    result = run_one(secrets_plaintext.CHECK, scan(tmp_path))
    assert result.status is Status.UNKNOWN
    assert "skipped binary: 1" in result.summary and "broken links: 1" in result.summary


def test_pass_names_the_files_scanned_as_observations() -> None:
    result = run_one(secrets_plaintext.CHECK, scan(CLEAN))
    assert result.status is Status.PASS
    n = len(files_in(CLEAN))
    assert result.observations == n
    assert f"{n} files scanned" in result.summary


@pytest.mark.parametrize(
    "line",
    [
        f"ADMIN_PASSWORD={DOLLAR_PASSWORD}",
        f'ADMIN_PASSWORD="{DOLLAR_PASSWORD}"',
        f"- Admin password: {DOLLAR_PASSWORD}",
        "DB_PASSWORD=$3cr3t-not-real",
        "DB_PASSWORD=${PREFIX}not-a-real-suffix",
        "postgres://app:$not-a-real-pw@db.example.test/app",
    ],
)
def test_dollar_leading_values_are_secrets(line: str) -> None:
    assert len(list(secrets_plaintext.scan_lines([line], "x.env"))) == 1


@pytest.mark.parametrize(
    "value", ["$DB_PASSWORD", "${DB_PASSWORD}", "${DB_PASSWORD:-}", "$(vault read x)"]
)
def test_whole_variable_references_are_placeholders(value: str) -> None:
    assert secrets_plaintext.is_placeholder(value)
    assert list(secrets_plaintext.scan_lines([f"DB_PASSWORD={value}"], "x.env")) == []


def _detect_secrets_lines(files: list[Path]) -> set[tuple[str, int]]:
    collection = SecretsCollection()
    with default_settings():
        for path in files:
            collection.scan_file(str(path))
    return {(os.path.realpath(name), secret.line_number) for name, secret in collection}


def test_detect_secrets_is_the_floor_including_symlinks_and_dollar_passwords(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "repo"
    shutil.copytree(FIXTURES, tree)
    (tree / "admin.env").write_text(
        f"ADMIN_USER=admin\nADMIN_PASSWORD={DOLLAR_PASSWORD}\nAPI_URL=https://api.example.test\n"
    )
    _k8s_secret_mount(
        tree / "k8s",
        {
            "db.env": "DB_PASSWORD=not-a-real-k8s-pass-2\n",
            "aws": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
        },
    )
    outside = tmp_path / "outside.env"
    outside.write_text(f"export SMTP_PASSWORD='{DOLLAR_PASSWORD}'\n")
    (tree / "linked.env").symlink_to(outside)

    every_path = sorted(p for p in tree.rglob("*") if p.is_file())  # symlinked files too
    theirs = _detect_secrets_lines(every_path)
    assert theirs, "detect-secrets found nothing: the fixtures are not testing anything"

    found, counts, complete = secrets_plaintext.scan_paths([tree])
    assert complete
    ours = {(os.path.realpath(f.file), f.line) for f in found}
    assert theirs <= ours, f"missed what detect-secrets finds: {sorted(theirs - ours)}"
    # and beyond detect-secrets: the `$`-leading passwords, in place and behind a symlink,
    # and the files of the Kubernetes mount
    assert (os.path.realpath(tree / "admin.env"), 2) in ours
    assert (os.path.realpath(outside), 1) in ours
    assert (os.path.realpath(tree / "k8s" / "db.env"), 1) in ours
    assert (os.path.realpath(tree / "k8s" / "aws"), 1) in ours
    assert counts["files_scanned"] == len({os.path.realpath(p) for p in every_path})


def test_a_rescan_reuses_findings_only_for_the_same_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Findings are kept by content hash: an unchanged file is not matched line by line again,
    a file changed in place (same size, same mtime) is, and a copy elsewhere reports its own
    path."""
    scanned: list[str] = []
    real_scan_lines = secrets_plaintext.scan_lines

    def counting(lines: list[str], display: str, code: bool = False):  # type: ignore[no-untyped-def]
        scanned.append(display)
        return real_scan_lines(lines, display, code)

    monkeypatch.setattr(secrets_plaintext, "scan_lines", counting)
    doc = tmp_path / "a.md"
    doc.write_text("Password: not-a-real-password-111\n")
    stamp = doc.stat()
    first = run_one(secrets_plaintext.CHECK, scan(doc))
    again = run_one(secrets_plaintext.CHECK, scan(doc))
    assert first.status is again.status is Status.FAIL
    assert first.evidence["findings"] == again.evidence["findings"]
    assert scanned == [str(doc)]  # the second run matched nothing again
    doc.write_text("Password: not-a-real-password-222\n")  # same length
    os.utime(doc, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    changed = run_one(secrets_plaintext.CHECK, scan(doc))
    assert scanned == [str(doc), str(doc)]
    assert (
        changed.evidence["findings"][0]["fingerprint"]
        != (first.evidence["findings"][0]["fingerprint"])
    )
    doc.write_text("nothing here\n")
    assert run_one(secrets_plaintext.CHECK, scan(doc)).status is Status.PASS
    copy = tmp_path / "b.md"
    copy.write_text("Password: not-a-real-password-222\n")
    elsewhere = run_one(secrets_plaintext.CHECK, scan(copy))
    assert elsewhere.evidence["findings"][0]["file"] == str(copy)
    assert "not-a-real-password" not in result_text(elsewhere)
