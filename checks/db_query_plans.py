"""The application's important queries use indexes: EXPLAIN shows no sequential scan that
filters a big table.

PREFLIGHT_DB_QUERIES lists the queries: separated by `;;` when the value contains `;;`,
otherwise one per line; a single trailing `;` and a leading `EXPLAIN [ANALYZE]` (as pasted
from the checklist) are dropped. Each query is planned with EXPLAIN (FORMAT JSON, VERBOSE)
in a read-only transaction under a statement timeout, and rolled back. EXPLAIN ANALYZE (which
executes the query, still read-only) only with PREFLIGHT_DB_EXPLAIN_ANALYZE=true.

One statement per query is enforced by the server, not by parsing SQL here: the query is sent
as a prepared statement (extended protocol), and PostgreSQL refuses to prepare more than one
command ("cannot insert multiple commands into a prepared statement").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg

from checks import _pg
from checks.base import Check, CheckContext, Result, Status, worst

DEFAULT_QUERY = "SELECT * FROM contractor_partner_matches WHERE partner_id = 94"
DEFAULT_SEQSCAN_ROWS = 10_000
_LEADING_EXPLAIN = re.compile(
    r"^\s*EXPLAIN\b\s*(?:\([^)]*\)\s*)?(?:(?:ANALYZE|ANALYSE|VERBOSE)\b\s*)*", re.I
)
_MAX_QUERY_CHARS = 300  # how much of a query's text evidence shows


class QueryListError(Exception):
    """PREFLIGHT_DB_QUERIES could not be understood."""


def parse_queries(value: str | None) -> list[str]:
    """The configured queries (the checklist's example when unset)."""
    if value is None or not value.strip():
        return [DEFAULT_QUERY]
    parts = value.split(";;") if ";;" in value else value.splitlines()
    queries = []
    for part in parts:
        query = _LEADING_EXPLAIN.sub("", part.strip()).strip()
        if query.endswith(";"):
            query = query[:-1].rstrip()
        if query:
            queries.append(query)
    if not queries:
        raise QueryListError("PREFLIGHT_DB_QUERIES holds no query")
    return queries


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan tree, depth first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_QUERY_CHARS else text[: _MAX_QUERY_CHARS - 1] + "…"


def _table_rows(conn: psycopg.Connection[Any], schema: str | None, table: str) -> int | None:
    """The planner's row count for a table (pg_class.reltuples), None if never analyzed."""
    row = conn.execute(
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND (%s::text IS NULL AND pg_table_is_visible(c.oid)"
        " OR n.nspname = %s)",
        [table, schema, schema],
    ).fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def _explain(
    conn: psycopg.Connection[Any], query: str, ctx: CheckContext, analyze: bool
) -> dict[str, Any]:
    options = "FORMAT JSON, VERBOSE" + (", ANALYZE" if analyze else "")
    with conn.transaction(force_rollback=True):
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true)",
            [f"{_pg.statement_timeout_ms(ctx)}ms"],
        )
        # prepare=True sends the extended protocol, where the server refuses a second
        # statement; without parameters psycopg leaves the text (and any %) untouched.
        row = conn.execute(f"EXPLAIN ({options}) {query}", prepare=True).fetchone()
    doc = json.loads(row[0]) if row and isinstance(row[0], str) else (row[0] if row else None)
    if not doc:
        raise QueryListError("EXPLAIN returned no plan")
    return dict(doc[0])


def _review(
    conn: psycopg.Connection[Any], query: str, ctx: CheckContext, limit: int, analyze: bool
) -> dict[str, Any]:
    """One query's plan review: {"query", "status", "summary", ...}."""
    entry: dict[str, Any] = {"query": _shorten(query)}
    try:
        explained = _explain(conn, query, ctx, analyze)
    except psycopg.errors.UndefinedTable as exc:
        missing = re.search(r'relation "([^"]+)" does not exist', str(exc))
        name = missing.group(1) if missing else "?"
        entry.update(
            status=Status.FAIL,
            missing_table=name,
            summary=f"table {name} does not exist",
            remediation=f"Run the migrations that create {name}, or check DB_NAME and "
            "PREFLIGHT_DB_QUERIES.",
        )
        return entry
    except psycopg.errors.SyntaxError as exc:
        if "multiple commands" in str(exc):
            entry.update(
                status=Status.ERROR,
                summary="holds more than one SQL statement",
                remediation="Give one statement per entry of PREFLIGHT_DB_QUERIES (separate "
                "entries with ;; or newlines).",
            )
        else:
            entry.update(
                status=Status.ERROR,
                summary=f"is not valid SQL: {_pg.server_message(exc, ctx)}",
                remediation="Fix the query in PREFLIGHT_DB_QUERIES.",
            )
        return entry
    except psycopg.Error as exc:
        entry.update(
            status=Status.ERROR,
            summary=f"could not be explained: {_pg.server_message(exc, ctx)}",
            remediation="Check the query in PREFLIGHT_DB_QUERIES and the role's privileges.",
        )
        return entry

    plan = explained["Plan"]
    entry["total_cost"] = plan.get("Total Cost")
    entry["plan_rows"] = plan.get("Plan Rows")
    if analyze:
        entry["execution_ms"] = explained.get("Execution Time")
    seq_scans = []
    unanalyzed = []
    for node in plan_nodes(plan):
        if node.get("Node Type") != "Seq Scan" or "Filter" not in node:
            continue
        table = node.get("Relation Name", "?")
        schema = node.get("Schema")
        rows = _table_rows(conn, schema, table)
        scan = {
            "table": f"{schema}.{table}" if schema else table,
            "filter": node["Filter"],
            "table_rows": rows,
            "estimated_rows": node.get("Plan Rows"),
        }
        if rows is None:
            unanalyzed.append(scan)
        elif rows > limit:
            seq_scans.append(scan)
    entry["seq_scans"] = seq_scans
    if seq_scans:
        first = seq_scans[0]
        entry.update(
            status=Status.FAIL,
            summary=f"scans all ~{first['table_rows']:,} rows of {first['table']} sequentially "
            f"to filter {first['filter']}",
            remediation="Add an index on the filtered column(s) (e.g. CREATE INDEX CONCURRENTLY "
            f"ON {first['table']} (...)), then ANALYZE.",
        )
    elif unanalyzed:
        entry["unanalyzed"] = unanalyzed
        entry.update(
            status=Status.WARN,
            summary=f"filters {unanalyzed[0]['table']} sequentially and the table has never "
            "been analyzed",
            remediation=f"Run ANALYZE {unanalyzed[0]['table']}; so the planner knows its size.",
        )
    else:
        entry.update(status=Status.PASS, summary="uses no sequential scan of a large table")
    return entry


def run(ctx: CheckContext) -> Result:
    tgt = _pg.configured_or_skip(ctx)
    if isinstance(tgt, Result):
        return tgt
    try:
        queries = parse_queries(ctx.setting("PREFLIGHT_DB_QUERIES"))
        limit = int(ctx.setting("PREFLIGHT_SEQSCAN_ROWS") or DEFAULT_SEQSCAN_ROWS)
    except (QueryListError, ValueError) as exc:
        return Result(
            Status.ERROR,
            f"query plan review is misconfigured: {exc}",
            remediation="Set PREFLIGHT_DB_QUERIES to one or more SELECTs and "
            "PREFLIGHT_SEQSCAN_ROWS to a whole number.",
        )
    analyze = ctx.flag("PREFLIGHT_DB_EXPLAIN_ANALYZE")
    try:
        conn = _pg.connect(ctx, tgt)
    except psycopg.Error as exc:
        return _pg.connection_failure(exc, ctx, tgt)
    with conn:
        reviews = [_review(conn, q, ctx, limit, analyze) for q in queries]

    status = worst([r["status"] for r in reviews])
    bad = [r for r in reviews if r["status"] != Status.PASS]
    evidence = {
        **tgt.describe(),
        "seqscan_rows_limit": limit,
        "analyze": analyze,
        "queries": [{**r, "status": r["status"].value} for r in reviews],
    }
    for r in evidence["queries"]:
        r.pop("remediation", None)
    where = f"{tgt.address}/{tgt.params.get('dbname', '')}"
    if not bad:
        n = len(reviews)
        return Result(
            Status.PASS,
            f"{n} quer{'y' if n == 1 else 'ies'} on {where} use no sequential scan of a table "
            f"above {limit:,} rows",
            evidence,
        )
    first = next(r for r in bad if r["status"] == status)
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return Result(
        status,
        f"query `{_shorten(first['query'])[:80]}` on {where} {first['summary']}{more}",
        evidence,
        " ".join(dict.fromkeys(r["remediation"] for r in bad if r.get("remediation"))),
    )


CHECK = Check(
    id="db_query_plans",
    title="Key queries use indexes (EXPLAIN)",
    section="Performance Requirements",
    run=run,
    settings=(
        *_pg.SETTINGS,
        "PREFLIGHT_DB_QUERIES",
        "PREFLIGHT_SEQSCAN_ROWS",
        "PREFLIGHT_DB_EXPLAIN_ANALYZE",
    ),
    severity="medium",
    blocking=False,
    timeout_s=20.0,
    max_age_s=6 * 3600,
    description=(
        "EXPLAIN (FORMAT JSON) of each query in PREFLIGHT_DB_QUERIES (default: the checklist's "
        "contractor_partner_matches lookup) in a read-only transaction. FAIL: a sequential scan "
        "with a filter on a table above PREFLIGHT_SEQSCAN_ROWS (10,000) rows, or a missing "
        "table; WARN: such a scan on a never-analyzed table; ERROR: more than one statement."
    ),
)
