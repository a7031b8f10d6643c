"""db_ssl against an SSL-only cluster and a plaintext cluster."""

from __future__ import annotations

from checks import db_ssl
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import PG_PASSWORD, PgCluster, free_port, result_text


def test_skipped_without_db_host() -> None:
    assert run_one(db_ssl.CHECK, CheckContext(env={})).status is Status.SKIPPED


def test_ssl_only_server_with_verified_certificate_passes(pg_ssl: PgCluster) -> None:
    result = run_one(db_ssl.CHECK, pg_ssl.ctx())
    assert result.status is Status.PASS, result.summary
    assert result.evidence["ssl_in_use"] is True
    assert result.evidence["tls_version"].startswith("TLSv1.")
    assert result.evidence["cipher"]
    assert result.evidence["certificate_verified"] is True
    assert result.evidence["plaintext_login"] == "refused"
    assert "refuses unencrypted logins" in result.summary


def test_plaintext_server_fails(pg_plain: PgCluster) -> None:
    result = run_one(db_ssl.CHECK, pg_plain.ctx())
    assert result.status is Status.FAIL
    assert result.evidence["plaintext_login"] == "accepted"
    assert result.evidence["ssl_in_use"] is False
    assert "accepts unencrypted logins" in result.summary
    assert "rds.force_ssl" in result.remediation


def test_unverified_certificate_warns(pg_ssl: PgCluster) -> None:
    env = pg_ssl.env()
    del env["PGSSLROOTCERT"]
    result = run_one(db_ssl.CHECK, CheckContext(env=env))
    assert result.status is Status.WARN
    assert result.evidence["certificate_verified"] is False
    assert "PGSSLROOTCERT" in result.remediation


def test_db_ssl_not_true_fails_even_when_connection_is_encrypted(pg_ssl: PgCluster) -> None:
    result = run_one(db_ssl.CHECK, pg_ssl.ctx(DB_SSL="false"))
    # sslmode=prefer still negotiates SSL with this server, but the app is told not to
    assert result.status is Status.FAIL
    assert result.evidence["ssl_in_use"] is True
    assert "DB_SSL is not true" in result.summary


def test_wrong_password_fails_without_leaking_it(pg_ssl: PgCluster) -> None:
    result = run_one(db_ssl.CHECK, pg_ssl.ctx(DB_PASSWORD="wrong-but-fake-789"))
    assert result.status is Status.FAIL
    text = result_text(result)
    assert "wrong-but-fake-789" not in text and PG_PASSWORD not in text


def test_database_down_is_error() -> None:
    env = {"DB_HOST": "127.0.0.1", "DB_PORT": str(free_port()), "DB_SSL": "true"}
    assert run_one(db_ssl.CHECK, CheckContext(env=env)).status is Status.ERROR
