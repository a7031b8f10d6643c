"""Database settings the checklist asks for: slow-query logging, pg_stat_statements, and
headroom below max_connections.

pg_stat_statements counts as available only when it can actually be queried: the extension is
created in this database (pg_extension) and its library is loaded (shared_preload_libraries).
Non-superusers cannot read shared_preload_libraries, so "loaded" is learnt by querying the
view: PostgreSQL answers "must be loaded via shared_preload_libraries" (SQLSTATE 55000)
when it is not. Created-but-not-loaded, loaded-but-not-created and neither are all WARN with
the step that is missing.
"""

from __future__ import annotations

from typing import Any

import psycopg

from checks import _pg
from checks.base import Check, CheckContext, Finding, Result, Status, from_findings

SLOW_QUERY_LIMIT_MS = 1000  # the checklist: "Slow query threshold set (e.g., > 1 second)"
CONNECTIONS_WARN_PERCENT = 80.0


def _slow_query_logging(value_ms: int) -> Finding | None:
    if value_ms < 0:
        return (
            Status.FAIL,
            "slow-query logging is off (log_min_duration_statement = -1)",
            "Set log_min_duration_statement to 1000 (ms) or less in the parameter group "
            "(RDS) or postgresql.conf.",
        )
    if value_ms > SLOW_QUERY_LIMIT_MS:
        return (
            Status.WARN,
            f"slow queries are logged only above {value_ms} ms",
            f"Lower log_min_duration_statement to {SLOW_QUERY_LIMIT_MS} ms or less.",
        )
    return None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _stat_statements(conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], Finding | None]:
    row = conn.execute(
        "SELECT"
        " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'),"
        " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'),"
        " (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries')"
    ).fetchone()
    available, created, preload = row if row else (False, False, None)
    info: dict[str, Any] = {
        "available": bool(available),
        "created": bool(created),
        # None when the role may not read it (not superuser nor pg_read_all_settings)
        "preloaded": None if preload is None else "pg_stat_statements" in preload,
        "queryable": False,
    }
    if created:
        try:
            with conn.transaction():
                conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
            info["queryable"] = True
            info["preloaded"] = True
        except psycopg.errors.ObjectNotInPrerequisiteState:
            info["preloaded"] = False
        except psycopg.Error as exc:
            info["query_error"] = type(exc).__name__
    if info["queryable"]:
        return info, None
    if not available:
        return info, (
            Status.WARN,
            "pg_stat_statements is not installed on the server",
            "Install the PostgreSQL contrib package (on RDS it is always available).",
        )
    preload_step = (
        "add pg_stat_statements to shared_preload_libraries (RDS: the instance's parameter "
        "group) and restart"
    )
    create_step = "run CREATE EXTENSION pg_stat_statements; in this database"
    if created and info["preloaded"] is False:
        return info, (
            Status.WARN,
            "pg_stat_statements is created but not loaded",
            f"{_sentence(preload_step)}.",
        )
    if not created and info["preloaded"]:
        return info, (
            Status.WARN,
            "pg_stat_statements is loaded but not created in this database",
            f"{_sentence(create_step)}.",
        )
    if not created:
        return info, (
            Status.WARN,
            "pg_stat_statements is not enabled",
            f"{_sentence(preload_step)}, then {create_step}.",
        )
    return info, (
        Status.WARN,
        "pg_stat_statements exists but could not be queried",
        "Grant this role pg_read_all_stats or check the extension's installation.",
    )


def _connections(conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], Finding | None]:
    row = conn.execute(
        "SELECT"
        # Without pg_read_all_stats, other users' rows hide backend_type but keep datid:
        # a hidden row with a database is a client backend (or, rarely, an autovacuum worker).
        " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        "  OR (backend_type IS NULL AND datid IS NOT NULL)),"
        " current_setting('max_connections')::int,"
        " current_setting('superuser_reserved_connections')::int"
    ).fetchone()
    used, maximum, reserved = row if row else (0, 0, 0)
    percent = round(100.0 * used / maximum, 1) if maximum else 0.0
    info = {
        "used": used,
        "max_connections": maximum,
        "superuser_reserved": reserved,
        "used_percent": percent,
    }
    if percent > CONNECTIONS_WARN_PERCENT:
        return info, (
            Status.WARN,
            f"{used} of {maximum} connections in use ({percent:g}%)",
            "Use a connection pool (pgbouncer / RDS Proxy) or smaller app pools, or raise "
            "max_connections (instance class on RDS).",
        )
    return info, None


def run(ctx: CheckContext) -> Result:
    tgt = _pg.configured_or_skip(ctx)
    if isinstance(tgt, Result):
        return tgt
    try:
        conn = _pg.connect(ctx, tgt)
    except psycopg.Error as exc:
        return _pg.connection_failure(exc, ctx, tgt)
    with conn:
        try:
            row = conn.execute(
                "SELECT setting::int FROM pg_settings WHERE name = 'log_min_duration_statement'"
            ).fetchone()
            slow_ms = int(row[0]) if row else -1
            pss, pss_finding = _stat_statements(conn)
            conns, conn_finding = _connections(conn)
        except psycopg.Error as exc:
            return _pg.query_failure(exc, ctx, tgt, "reading the server settings")
    evidence = {
        **tgt.describe(),
        "log_min_duration_statement_ms": slow_ms,
        "pg_stat_statements": pss,
        "connections": conns,
    }
    findings = [f for f in (_slow_query_logging(slow_ms), pss_finding, conn_finding) if f]
    where = f"PostgreSQL at {tgt.address}"
    if not findings:
        return Result(
            Status.PASS,
            f"{where} logs queries slower than {slow_ms} ms, has pg_stat_statements, and uses "
            f"{conns['used']} of {conns['max_connections']} connections",
            evidence,
            observations=3,  # the three settings read: slow-query log, statistics, connections
        )
    return from_findings(where, findings, evidence, observations=3)


CHECK = Check(
    id="db_settings",
    title="Database logging, statistics and connection headroom",
    section="Monitoring & Logging",
    run=run,
    settings=(*_pg.SETTINGS, "PGSSLROOTCERT", "PREFLIGHT_CA_BUNDLE"),
    severity="medium",
    blocking=False,
    timeout_s=15.0,
    max_age_s=3600,
    description=("Slow-query logging, `pg_stat_statements`, and connection headroom"),
    criteria=(
        "`log_min_duration_statement` -1 FAIL, above 1000 ms WARN, 0-1000 PASS. "
        "`pg_stat_statements` must be created in the database and loaded "
        "(`shared_preload_libraries`, learnt by querying the view): otherwise WARN naming the "
        "missing step. Client connections above 80% of `max_connections`: WARN (evidence: "
        "used/max). PASS names the three settings read (observations: 3). ERROR: unreachable. "
        "SKIPPED without `DB_HOST`"
    ),
)
