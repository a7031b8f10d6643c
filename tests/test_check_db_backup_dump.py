"""db_backup_dump: a real pg_dump of a throwaway cluster, read back with pg_restore."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from checks import db_backup_dump
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import PG_PASSWORD, PgCluster, free_port, result_text


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The check's temporary directory goes here, so the test can see it is removed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture
def recording_pg_dump(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A pg_dump first on PATH that records its argv and whether PGPASSWORD is set, then
    runs the real one."""
    real = db_backup_dump.find_tool("pg_dump")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "pg_dump.log"
    script = bin_dir / "pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {log}\n'
        f'echo "PGPASSWORD=${{PGPASSWORD:+set}}" >> {log}\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_opt_in_only(pg_plain: PgCluster) -> None:
    result = run_one(db_backup_dump.CHECK, pg_plain.ctx(allow_active=False))
    assert result.status is Status.SKIPPED
    assert db_backup_dump.CHECK.active is True


def test_skipped_without_db_host() -> None:
    result = run_one(db_backup_dump.CHECK, CheckContext(env={}, allow_active=True))
    assert result.status is Status.SKIPPED


def test_dump_verified_and_removed(
    pg_ssl: PgCluster, private_tmp: Path, recording_pg_dump: Path
) -> None:
    result = run_one(db_backup_dump.CHECK, pg_ssl.ctx(allow_active=True, timeout_s=60))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["size_bytes"] > 10_000
    assert result.evidence["toc_entries"] > 0
    assert result.evidence["tables"] >= 1
    assert result.observations == result.evidence["toc_entries"]
    assert result.evidence["dump_ms"] >= 0
    assert list(private_tmp.glob("preflight-dump-*")) == []
    recorded = recording_pg_dump.read_text()
    assert "--format=custom" in recorded
    assert "PGPASSWORD=set" in recorded
    assert PG_PASSWORD not in recorded  # never on the command line


def test_wrong_password_fails_without_leaking_it(pg_plain: PgCluster, private_tmp: Path) -> None:
    wrong = "also-not-a-real-password-000"
    result = run_one(
        db_backup_dump.CHECK, pg_plain.ctx(allow_active=True, timeout_s=60, DB_PASSWORD=wrong)
    )
    assert result.status is Status.FAIL
    assert "authentication failed" in result.summary
    assert wrong not in result_text(result)
    assert list(private_tmp.glob("preflight-dump-*")) == []


def test_database_down_is_error(private_tmp: Path) -> None:
    env = {"DB_HOST": "127.0.0.1", "DB_PORT": str(free_port()), "DB_PASSWORD": PG_PASSWORD}
    result = run_one(db_backup_dump.CHECK, CheckContext(env=env, allow_active=True))
    assert result.status is Status.ERROR
    assert "could not reach" in result.summary
    assert PG_PASSWORD not in result_text(result)


def test_missing_tools_are_an_error(monkeypatch: pytest.MonkeyPatch, pg_plain: PgCluster) -> None:
    def missing(name: str) -> str:
        raise db_backup_dump.ToolNotFound(name)

    monkeypatch.setattr(db_backup_dump, "find_tool", missing)
    result = run_one(db_backup_dump.CHECK, pg_plain.ctx(allow_active=True))
    assert result.status is Status.ERROR
    assert "postgresql-client" in result.remediation


def test_find_tool_falls_back_to_debian_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "/usr/lib/postgresql/" in db_backup_dump.find_tool("pg_dump")


def test_an_old_pg_dump_never_gets_a_password_a_cleartext_server_asks_for(
    pg_cleartext: PgCluster, private_tmp: Path
) -> None:
    """This machine's pg_dump (libpq 15) ignores PGREQUIREAUTH: a probe with libpq that
    enforces it runs first, so a server asking for a cleartext password gets none and pg_dump
    never starts."""
    assert db_backup_dump.tool_major(db_backup_dump.find_tool("pg_dump")) < 16
    log_before = len(pg_cleartext.server_log())
    ctx = pg_cleartext.ctx(allow_active=True, timeout_s=60, DB_SSL="false", PGSSLMODE="disable")
    result = run_one(db_backup_dump.CHECK, ctx)
    assert result.status is Status.FAIL, result.summary
    assert "server asked for a cleartext password" in result.summary
    new_log = pg_cleartext.server_log()[log_before:]
    assert "method=password" not in new_log and "password authentication failed" not in new_log
    assert PG_PASSWORD not in result_text(result)
