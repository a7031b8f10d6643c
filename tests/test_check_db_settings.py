"""db_settings: slow-query logging, pg_stat_statements and connection headroom."""

from __future__ import annotations

import contextlib

from checks import db_settings
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import PG_DB_INDEXED, PG_USER, PgCluster


def test_skipped_without_db_host() -> None:
    assert run_one(db_settings.CHECK, CheckContext(env={})).status is Status.SKIPPED


def test_tuned_server_passes(pg_tuned: PgCluster) -> None:
    result = run_one(db_settings.CHECK, pg_tuned.ctx())
    assert result.status is Status.PASS, result.summary
    assert result.evidence["log_min_duration_statement_ms"] == 500
    pss = result.evidence["pg_stat_statements"]
    assert pss["created"] and pss["queryable"] and pss["preloaded"]
    assert result.observations == 3
    conns = result.evidence["connections"]
    assert conns["used"] >= 1
    assert conns["max_connections"] == 100


def test_slow_query_logging_off_fails(pg_plain: PgCluster) -> None:
    result = run_one(db_settings.CHECK, pg_plain.ctx())
    assert result.status is Status.FAIL
    assert result.evidence["log_min_duration_statement_ms"] == -1
    assert "slow-query logging is off" in result.summary
    assert "log_min_duration_statement" in result.remediation
    # and pg_stat_statements is neither loaded nor created there
    assert "pg_stat_statements is not enabled" in result.summary


def test_slow_query_threshold_above_one_second_warns(pg_tuned: PgCluster) -> None:
    result = run_one(db_settings.CHECK, pg_tuned.ctx(DB_NAME="slowlog"))
    assert result.status is Status.WARN
    assert result.evidence["log_min_duration_statement_ms"] == 5000
    assert "5000 ms" in result.summary


def test_extension_created_but_not_loaded_warns(pg_plain: PgCluster) -> None:
    pg_plain.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", dbname=PG_DB_INDEXED)
    try:
        result = run_one(db_settings.CHECK, pg_plain.ctx(DB_NAME=PG_DB_INDEXED))
    finally:
        pg_plain.sql("DROP EXTENSION pg_stat_statements", dbname=PG_DB_INDEXED)
    pss = result.evidence["pg_stat_statements"]
    assert pss["created"] is True and pss["preloaded"] is False
    assert "created but not loaded" in result.summary
    assert "shared_preload_libraries" in result.remediation


def test_extension_loaded_but_not_created_warns(pg_tuned: PgCluster) -> None:
    # With pg_read_all_settings the role can see shared_preload_libraries.
    pg_tuned.sql(f"GRANT pg_read_all_settings TO {PG_USER}")
    try:
        result = run_one(db_settings.CHECK, pg_tuned.ctx(DB_NAME=PG_DB_INDEXED))
    finally:
        pg_tuned.sql(f"REVOKE pg_read_all_settings FROM {PG_USER}")
    assert result.status is Status.WARN
    assert result.evidence["pg_stat_statements"]["preloaded"] is True
    assert "loaded but not created" in result.summary
    assert "CREATE EXTENSION" in result.remediation


def test_connections_near_max_warn(pg_plain: PgCluster) -> None:
    # max_connections is 10 on this cluster: 8 held + the check's own = 90%.
    with contextlib.ExitStack() as stack:
        for _ in range(8):
            stack.enter_context(pg_plain.admin())
        result = run_one(db_settings.CHECK, pg_plain.ctx(DB_NAME=PG_DB_INDEXED))
    conns = result.evidence["connections"]
    assert conns["max_connections"] == 10
    assert conns["used"] >= 9
    assert conns["used_percent"] > 80
    assert "connections in use" in result.summary
    assert "pool" in result.remediation
