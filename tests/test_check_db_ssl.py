"""db_ssl against an SSL-only cluster, a plaintext cluster, and one that asks for cleartext
passwords; and the promise of every check connection: no password in cleartext outside
verified TLS (libpq's require_auth), with a capture of the wire to prove it."""

from __future__ import annotations

import psycopg
import pytest

from checks import _pg, db_connect, db_ssl
from checks.base import CheckContext, Status
from checks.runner import run_checks, run_one
from tests.support.pg import (
    PG_PASSWORD,
    PgCluster,
    free_port,
    recording_proxy,
    result_text,
)

CLEARTEXT_REFUSED = "server asked for a cleartext password"


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
    assert "no encryption" in result.evidence["plaintext_reason"]
    assert result.observations == 3


def test_plaintext_server_fails(pg_plain: PgCluster) -> None:
    result = run_one(db_ssl.CHECK, pg_plain.ctx())
    assert result.status is Status.FAIL
    assert result.evidence["plaintext_login"] == "accepted"
    assert result.evidence["ssl_in_use"] is False
    assert "accepts unencrypted logins" in result.summary
    assert "rds.force_ssl" in result.remediation
    # observed as pg_hba's answer (an authentication request), not by logging in
    assert result.evidence["plaintext_reason"] == "the server asked for SASL authentication"


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


def test_plaintext_probe_carries_no_password(pg_ssl: PgCluster) -> None:
    """The probe's bytes on the wire (unencrypted, so a capture reads them) hold no password,
    and the probe still tells a refusing server apart."""
    tgt = _pg.target(pg_ssl.ctx())
    assert tgt is not None
    with recording_proxy(pg_ssl.port) as (port, sent):
        outcome, reason = db_ssl._plaintext_probe(pg_ssl.ctx(), tgt.with_params(port=str(port)))
    assert outcome == "refused", reason
    assert b"preflight_app" in sent  # the capture saw the startup packet
    assert PG_PASSWORD.encode() not in sent


def test_every_check_connection_carries_require_auth(pg_ssl: PgCluster) -> None:
    verified = _pg.target(pg_ssl.ctx())
    unverified = _pg.target(pg_ssl.ctx(PGSSLROOTCERT=""))
    plain = _pg.target(pg_ssl.ctx(DB_SSL="false"))
    assert verified is not None and unverified is not None and plain is not None
    assert verified.sslmode == "verify-full" and "require_auth" not in verified.params
    assert unverified.sslmode == "require" and unverified.params["require_auth"] == "!password"
    assert plain.params["require_auth"] == "!password"
    # a stricter PGREQUIREAUTH is kept; one that allows cleartext is not
    strict = _pg.target(pg_ssl.ctx(DB_SSL="false", PGREQUIREAUTH="scram-sha-256"))
    loose = _pg.target(pg_ssl.ctx(DB_SSL="false", PGREQUIREAUTH="password,scram-sha-256"))
    assert strict is not None and strict.params["require_auth"] == "scram-sha-256"
    assert loose is not None and loose.params["require_auth"] == "!password"


def _password_checks(log: str) -> list[str]:
    """Server log lines that show a password was received and checked."""
    return [
        line
        for line in log.splitlines()
        if "method=password" in line or "password authentication failed" in line
    ]


def test_cleartext_server_gets_no_password_over_plaintext(pg_cleartext: PgCluster) -> None:
    """DB_SSL=false against a server asking for a cleartext password: the check refuses to
    send it; the capture of the (unencrypted) wire and the server log both show none."""
    log_before = len(pg_cleartext.server_log())
    with recording_proxy(pg_cleartext.port) as (port, sent):
        ctx = pg_cleartext.ctx(DB_SSL="false", PGSSLMODE="disable", DB_PORT=str(port))
        result = run_checks([db_ssl.CHECK], ctx)[0]
    assert result.status is Status.FAIL, result.summary
    assert CLEARTEXT_REFUSED in result.summary
    assert result.evidence["failure"] == _pg.ConnectFailure.CLEARTEXT
    assert "scram-sha-256" in result.remediation
    assert b"preflight_app" in sent
    assert PG_PASSWORD.encode() not in sent
    assert _password_checks(pg_cleartext.server_log()[log_before:]) == []
    assert PG_PASSWORD not in result_text(result)


@pytest.mark.parametrize("check", [db_ssl.CHECK, db_connect.CHECK], ids=lambda c: c.id)
def test_cleartext_server_gets_no_password_over_unverified_tls(
    pg_cleartext: PgCluster, check: object
) -> None:
    """DB_SSL=true without a CA bundle: encrypted but unverified (a man in the middle could
    be the server), so the cleartext password is still refused."""
    log_before = len(pg_cleartext.server_log())
    result = run_checks([check], pg_cleartext.ctx(PGSSLROOTCERT=""))[0]  # type: ignore[list-item]
    assert result.status is Status.FAIL, result.summary
    assert CLEARTEXT_REFUSED in result.summary
    assert "sslmode=require" in result.summary
    assert _password_checks(pg_cleartext.server_log()[log_before:]) == []


def test_cleartext_password_is_sent_inside_verified_tls_only(pg_cleartext: PgCluster) -> None:
    """With the certificate verified the password may go (inside TLS): the server logs the
    password check, which shows the log assertions above would have seen one. The plaintext
    probe finds the server asking for a cleartext password without encryption: FAIL."""
    log_before = len(pg_cleartext.server_log())
    result = run_checks([db_ssl.CHECK], pg_cleartext.ctx())[0]
    assert result.evidence["ssl_in_use"] is True
    assert result.evidence["certificate_verified"] is True
    assert result.evidence["plaintext_login"] == "accepted"
    assert result.evidence["plaintext_reason"] == "the server asked for a cleartext password"
    assert result.status is Status.FAIL
    assert "asked for a cleartext password" in result.summary
    assert len(_password_checks(pg_cleartext.server_log()[log_before:])) == 1


def test_libpq_without_require_auth_fails_closed(pg_ssl: PgCluster) -> None:
    """libpq before 16 rejects the require_auth keyword: the check says why and what to do
    rather than dropping the protection."""
    ctx = pg_ssl.ctx(DB_SSL="false")
    tgt = _pg.target(ctx)
    assert tgt is not None
    exc = psycopg.OperationalError('invalid connection option "require_auth"')
    result = _pg.connection_failure(exc, ctx, tgt)
    assert result.status is Status.ERROR
    assert "cannot refuse cleartext passwords" in result.summary
    assert "psycopg[binary]" in result.remediation
    assert result.evidence["failure"] == _pg.ConnectFailure.OLD_LIBPQ
