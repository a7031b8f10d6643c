"""db_query_plans: EXPLAIN of the configured queries on a real cluster."""

from __future__ import annotations

import pytest

from checks import db_query_plans
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.pg import PG_DB, PG_DB_INDEXED, PG_USER, TABLE_ROWS, PgCluster


def test_skipped_without_db_host() -> None:
    assert run_one(db_query_plans.CHECK, CheckContext(env={})).status is Status.SKIPPED


def test_checklist_query_without_index_fails(pg_plain: PgCluster) -> None:
    result = run_one(db_query_plans.CHECK, pg_plain.ctx())
    assert result.status is Status.FAIL
    [query] = result.evidence["queries"]
    assert query["query"] == db_query_plans.DEFAULT_QUERY
    [scan] = query["seq_scans"]
    assert scan["table"] == "public.contractor_partner_matches"
    assert "partner_id = 94" in scan["filter"]
    assert scan["table_rows"] == TABLE_ROWS
    assert scan["estimated_rows"] > 0
    assert "contractor_partner_matches" in result.summary
    assert "CREATE INDEX" in result.remediation


def test_checklist_query_with_index_passes(pg_plain: PgCluster) -> None:
    result = run_one(db_query_plans.CHECK, pg_plain.ctx(DB_NAME=PG_DB_INDEXED))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["queries"][0]["seq_scans"] == []


def test_threshold_is_configurable(pg_plain: PgCluster) -> None:
    result = run_one(db_query_plans.CHECK, pg_plain.ctx(PREFLIGHT_SEQSCAN_ROWS="50000"))
    assert result.status is Status.PASS
    assert result.evidence["seqscan_rows_limit"] == 50000


def test_multiple_statements_are_refused_by_the_server(pg_plain: PgCluster) -> None:
    query = "SELECT 1; DROP TABLE contractor_partner_matches"
    result = run_one(db_query_plans.CHECK, pg_plain.ctx(PREFLIGHT_DB_QUERIES=query))
    assert result.status is Status.ERROR
    assert "more than one SQL statement" in result.summary
    assert pg_plain.sql("SELECT count(*) FROM contractor_partner_matches", dbname=PG_DB) == [
        (TABLE_ROWS,)
    ]


def test_missing_table_fails_naming_it(pg_plain: PgCluster) -> None:
    result = run_one(
        db_query_plans.CHECK,
        pg_plain.ctx(PREFLIGHT_DB_QUERIES="SELECT * FROM partner_leads WHERE id = 1"),
    )
    assert result.status is Status.FAIL
    assert "partner_leads" in result.summary
    assert result.evidence["queries"][0]["missing_table"] == "partner_leads"


def test_explain_analyze_stays_read_only(pg_plain: PgCluster) -> None:
    ctx = pg_plain.ctx(
        PREFLIGHT_DB_QUERIES="DELETE FROM contractor_partner_matches WHERE partner_id = 94",
        PREFLIGHT_DB_EXPLAIN_ANALYZE="true",
    )
    result = run_one(db_query_plans.CHECK, ctx)
    assert result.status is Status.ERROR
    assert "read-only transaction" in result.summary
    assert pg_plain.sql("SELECT count(*) FROM contractor_partner_matches", dbname=PG_DB) == [
        (TABLE_ROWS,)
    ]


def test_explain_analyze_reports_execution_time(pg_plain: PgCluster) -> None:
    ctx = pg_plain.ctx(DB_NAME=PG_DB_INDEXED, PREFLIGHT_DB_EXPLAIN_ANALYZE="1")
    result = run_one(db_query_plans.CHECK, ctx)
    assert result.status is Status.PASS
    assert result.evidence["queries"][0]["execution_ms"] >= 0


def test_never_analyzed_table_warns(pg_plain: PgCluster) -> None:
    pg_plain.sql(
        "CREATE TABLE fresh_leads WITH (autovacuum_enabled = false) AS"
        " SELECT g AS id, g % 10 AS partner_id FROM generate_series(1, 100) g",
        dbname=PG_DB_INDEXED,
    )
    pg_plain.sql(f"ALTER TABLE fresh_leads OWNER TO {PG_USER}", dbname=PG_DB_INDEXED)
    try:
        # CREATE TABLE AS sets reltuples; forget it, as for a table that was never analyzed
        pg_plain.sql(
            "UPDATE pg_class SET reltuples = -1 WHERE relname = 'fresh_leads'",
            dbname=PG_DB_INDEXED,
        )
        result = run_one(
            db_query_plans.CHECK,
            pg_plain.ctx(
                DB_NAME=PG_DB_INDEXED,
                PREFLIGHT_DB_QUERIES="SELECT * FROM fresh_leads WHERE partner_id = 3",
            ),
        )
    finally:
        pg_plain.sql("DROP TABLE fresh_leads", dbname=PG_DB_INDEXED)
    assert result.status is Status.WARN
    assert "never been analyzed" in result.summary


def test_several_queries_report_the_worst(pg_plain: PgCluster) -> None:
    queries = (
        "SELECT id FROM contractor_partner_matches WHERE id = 5;;"
        "SELECT * FROM contractor_partner_matches WHERE score > 0.5"
    )
    result = run_one(db_query_plans.CHECK, pg_plain.ctx(PREFLIGHT_DB_QUERIES=queries))
    assert result.status is Status.FAIL
    statuses = [q["status"] for q in result.evidence["queries"]]
    assert statuses == ["PASS", "FAIL"]
    assert "score" in result.summary


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [db_query_plans.DEFAULT_QUERY]),
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1;", ["SELECT 1"]),
        ("SELECT 1\nSELECT 2\n\n", ["SELECT 1", "SELECT 2"]),
        # with ;; a query may span lines
        (
            "SELECT *\n FROM t\n WHERE a = 1;; SELECT 2;",
            ["SELECT *\n FROM t\n WHERE a = 1", "SELECT 2"],
        ),
        ("EXPLAIN ANALYZE SELECT * FROM t WHERE x = 'a;b';", ["SELECT * FROM t WHERE x = 'a;b'"]),
        ("explain (analyze, buffers) SELECT 1", ["SELECT 1"]),
        # one ; inside stays: the server decides whether it is a second statement
        ("SELECT 1; SELECT 2", ["SELECT 1; SELECT 2"]),
    ],
)
def test_parse_queries(value: str | None, expected: list[str]) -> None:
    assert db_query_plans.parse_queries(value) == expected


def test_only_separators_is_a_configuration_error(pg_plain: PgCluster) -> None:
    result = run_one(db_query_plans.CHECK, pg_plain.ctx(PREFLIGHT_DB_QUERIES=";;;;"))
    assert result.status is Status.ERROR
    assert "PREFLIGHT_DB_QUERIES" in result.remediation


def _stale_table(pg: PgCluster, name: str, rows_after: int) -> None:
    """A table analysed at 100 rows, autovacuum off, then grown to rows_after rows without
    an index: the planner still believes 100."""
    pg.sql(
        f"CREATE TABLE {name} (id bigint, partner_id integer) WITH (autovacuum_enabled = false)",
        dbname=PG_DB_INDEXED,
    )
    pg.sql(f"ALTER TABLE {name} OWNER TO {PG_USER}", dbname=PG_DB_INDEXED)
    pg.sql(
        f"INSERT INTO {name} SELECT g, g % 200 FROM generate_series(1, 100) g",
        dbname=PG_DB_INDEXED,
    )
    pg.sql(f"ANALYZE {name}", dbname=PG_DB_INDEXED)
    pg.sql(
        f"INSERT INTO {name} SELECT g, g % 200 FROM generate_series(101, {rows_after}) g",
        dbname=PG_DB_INDEXED,
    )


def test_stale_statistics_do_not_hide_a_big_sequential_scan(pg_plain: PgCluster) -> None:
    _stale_table(pg_plain, "stale_leads", 300_000)
    try:
        assert pg_plain.sql(
            "SELECT reltuples FROM pg_class WHERE relname = 'stale_leads'", dbname=PG_DB_INDEXED
        ) == [(100.0,)]
        result = run_one(
            db_query_plans.CHECK,
            pg_plain.ctx(
                DB_NAME=PG_DB_INDEXED,
                PREFLIGHT_DB_QUERIES="SELECT * FROM stale_leads WHERE partner_id = 94",
            ),
        )
    finally:
        pg_plain.sql("DROP TABLE stale_leads", dbname=PG_DB_INDEXED)
    assert result.status is Status.FAIL, result.summary
    assert "public.stale_leads sequentially" in result.summary
    assert "statistics are stale: the planner counts 100 rows" in result.summary
    [scan] = result.evidence["queries"][0]["seq_scans"]
    assert scan["table_rows"] == 100
    assert scan["live_rows"] > 100_000  # rows per page at analyze x pages now
    assert scan["stale_statistics"] is True
    assert result.observations == 1


def test_stale_statistics_under_the_limit_warn_naming_the_table(pg_plain: PgCluster) -> None:
    _stale_table(pg_plain, "stale_small", 5_000)
    try:
        result = run_one(
            db_query_plans.CHECK,
            pg_plain.ctx(
                DB_NAME=PG_DB_INDEXED,
                PREFLIGHT_DB_QUERIES="SELECT * FROM stale_small WHERE partner_id = 94",
            ),
        )
    finally:
        pg_plain.sql("DROP TABLE stale_small", dbname=PG_DB_INDEXED)
    assert result.status is Status.WARN, result.summary
    assert "stale statistics of public.stale_small" in result.summary
    assert "the planner counts 100 rows" in result.summary
    assert "ANALYZE public.stale_small" in result.remediation
    [stale] = result.evidence["queries"][0]["stale_statistics"]
    assert stale["last_analyzed"] is not None


def test_pass_names_the_queries_explained(pg_plain: PgCluster) -> None:
    result = run_one(db_query_plans.CHECK, pg_plain.ctx(DB_NAME=PG_DB_INDEXED))
    assert result.status is Status.PASS, result.summary
    assert result.observations == 1
    assert "1 query on" in result.summary and "explained" in result.summary
    assert "statistics of 1 table(s) current" in result.summary
