"""The production database accepts the deployment's credentials and answers a query."""

from __future__ import annotations

import time

import psycopg

from checks import _pg
from checks.base import Check, CheckContext, Result, Status


def run(ctx: CheckContext) -> Result:
    tgt = _pg.configured_or_skip(ctx)
    if isinstance(tgt, Result):
        return tgt
    started = time.monotonic()
    try:
        conn = _pg.connect(ctx, tgt)
    except psycopg.Error as exc:
        return _pg.connection_failure(exc, ctx, tgt)
    connect_ms = int((time.monotonic() - started) * 1000)
    with conn:
        try:
            row = conn.execute("SELECT version(), current_setting('server_version')").fetchone()
        except psycopg.Error as exc:
            return _pg.query_failure(exc, ctx, tgt, "SELECT version()")
        encrypted = _pg.ssl_in_use(conn)
    version_text, server_version = (row or ("", ""))[:2]
    evidence = {
        **tgt.describe(),
        "server_version": server_version,
        "version": version_text,
        "connect_ms": connect_ms,
        "ssl_in_use": encrypted,
    }
    over = "over SSL" if encrypted else "without SSL"
    return Result(
        Status.PASS,
        f"PostgreSQL {server_version} at {tgt.address}/{tgt.params.get('dbname', '')} accepted "
        f"user {tgt.params.get('user', '')} {over} in {connect_ms} ms",
        evidence,
        observations=1,  # one server answered SELECT version()
    )


CHECK = Check(
    id="db_connect",
    title="Database reachable with the deployment's credentials",
    section="Production Infrastructure Readiness",
    run=run,
    settings=(*_pg.SETTINGS, "PGSSLROOTCERT", "PREFLIGHT_CA_BUNDLE"),
    severity="critical",
    blocking=True,
    timeout_s=15.0,
    max_age_s=900,
    description=(
        "The production database accepts the deployment's credentials and answers `SELECT "
        "version()`"
    ),
    criteria=(
        "PASS: connected and answered, naming server version, SSL in use and connect time "
        "(observations: 1 server). FAIL: authentication failed, pg_hba refusal, unknown "
        "database, SSL required but unsupported, certificate not verifiable. ERROR: "
        "unreachable or timed out. SKIPPED without `DB_HOST`"
    ),
)
