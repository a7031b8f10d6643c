"""db_connect against real throwaway PostgreSQL clusters (tests/support/pg.py)."""

from __future__ import annotations

import pytest
import trustme

from checks import _pg, db_connect
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import PG_PASSWORD, PgCluster, free_port, result_text, stalling_server


def test_skipped_without_db_host() -> None:
    result = run_one(db_connect.CHECK, CheckContext(env={"DB_USER": "x"}))
    assert result.status is Status.SKIPPED
    assert "DB_HOST" in result.summary


def test_ssl_cluster_verified_connection_passes(pg_ssl: PgCluster) -> None:
    result = run_one(db_connect.CHECK, pg_ssl.ctx())
    assert result.status is Status.PASS, result.summary
    assert result.evidence["server_version"].startswith(("15", "16", "17", "18"))
    assert result.evidence["sslmode"] == "verify-full"
    assert result.evidence["ssl_in_use"] is True
    assert "PostgreSQL" in result.summary and "tpedb" in result.summary
    assert result.observations == 1


def test_plain_cluster_connects_without_ssl(pg_plain: PgCluster) -> None:
    result = run_one(db_connect.CHECK, pg_plain.ctx())
    assert result.status is Status.PASS, result.summary
    assert result.evidence["ssl_in_use"] is False


def test_wrong_password_fails_without_leaking_it(pg_ssl: PgCluster) -> None:
    wrong = "not-the-right-password-456"
    ctx = pg_ssl.ctx(DB_PASSWORD=wrong)
    for result in (db_connect.run(ctx), run_one(db_connect.CHECK, ctx)):
        assert result.status is Status.FAIL
        assert "authentication failed" in result.summary
        assert result.evidence["failure"] == "authentication"
        text = result_text(result)
        assert wrong not in text and PG_PASSWORD not in text


def test_unknown_database_fails(pg_plain: PgCluster) -> None:
    result = run_one(db_connect.CHECK, pg_plain.ctx(DB_NAME="no_such_db"))
    assert result.status is Status.FAIL
    assert "no_such_db" in result.summary


def test_database_down_is_error() -> None:
    ctx = CheckContext(
        env={
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(free_port()),
            "DB_USER": "preflight_app",
            "DB_PASSWORD": PG_PASSWORD,
            "DB_NAME": "tpedb",
        }
    )
    result = run_one(db_connect.CHECK, ctx)
    assert result.status is Status.ERROR
    assert "could not reach" in result.summary
    assert "DB_HOST" in result.remediation
    assert PG_PASSWORD not in result_text(result)


def test_hung_server_is_error_from_connect_timeout() -> None:
    with stalling_server() as port:
        ctx = CheckContext(
            env={"DB_HOST": "127.0.0.1", "DB_PORT": str(port), "DB_PASSWORD": PG_PASSWORD},
            timeout_s=5.0,
        )
        result = run_one(db_connect.CHECK, ctx)
    assert result.status is Status.ERROR
    # our own connect_timeout answered, not the runner's deadline
    assert "could not reach" in result.summary


def test_ssl_required_but_server_has_none(pg_plain: PgCluster) -> None:
    result = run_one(db_connect.CHECK, pg_plain.ctx(DB_SSL="true"))
    assert result.status is Status.FAIL
    assert "SSL" in result.summary


def test_ssl_without_root_certificate_still_encrypts(pg_ssl: PgCluster) -> None:
    env = pg_ssl.env()
    del env["PGSSLROOTCERT"]
    result = run_one(db_connect.CHECK, CheckContext(env=env))
    assert result.status is Status.PASS
    assert result.evidence["sslmode"] == "require"
    assert result.evidence["ssl_in_use"] is True


def test_untrusted_server_certificate_fails(pg_ssl: PgCluster, tmp_path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    env = pg_ssl.env(PREFLIGHT_CA_BUNDLE=str(other_ca))
    del env["PGSSLROOTCERT"]
    result = run_one(db_connect.CHECK, CheckContext(env=env))
    assert result.status is Status.FAIL
    assert result.evidence["failure"] == "certificate"
    assert "PGSSLROOTCERT" in result.remediation


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DB_SSL": "true"}, {"sslmode": "require"}),
        ({"DB_SSL": "true", "PGSSLROOTCERT": "/ca.pem"}, {"sslmode": "verify-full"}),
        (
            {"DB_SSL": "true", "PREFLIGHT_CA_BUNDLE": "/b.pem"},
            {"sslmode": "verify-full", "sslrootcert": "/b.pem"},
        ),
        # an explicit libpq mode at least as strict as "encrypt" is kept
        ({"DB_SSL": "true", "PGSSLMODE": "verify-ca"}, {"sslmode": "verify-ca"}),
        # DB_SSL=true wins over a weaker libpq mode
        ({"DB_SSL": "true", "PGSSLMODE": "disable"}, {"sslmode": "require"}),
        ({"DB_SSL": "false"}, {"sslmode": "prefer"}),
        ({"PGSSLMODE": "require"}, {"sslmode": "require"}),
        # libpq variables fill in only what DB_* does not say
        ({"PGPORT": "6543"}, {"port": "6543"}),
        ({"PGPORT": "6543", "DB_PORT": "5432"}, {"port": "5432"}),
        ({"PGSSLCERT": "/c.pem", "PGAPPNAME": "x"}, {"sslcert": "/c.pem", "application_name": "x"}),
    ],
)
def test_connection_settings(env: dict[str, str], expected: dict[str, str]) -> None:
    tgt = _pg.target(CheckContext(env={"DB_HOST": "db.example.test", **env}, timeout_s=10))
    assert tgt is not None
    for key, value in expected.items():
        assert tgt.params[key] == value
    assert tgt.params["connect_timeout"] == "5"
    assert "password" not in tgt.describe()
