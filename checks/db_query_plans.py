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


# Statistics are stale when the table's live row count is off from what the planner was
# told (pg_class.reltuples) by more than half and by more than this many rows.
STALE_MIN_ROWS = 1000
STALE_RATIO = 0.5


def _table_stats(
    conn: psycopg.Connection[Any], schema: str | None, table: str
) -> dict[str, Any] | None:
    """What the planner believes about a table (reltuples, relpages) beside what it holds now:
    pg_stat_user_tables.n_live_tup, its size in pages, rows changed since the last analyze."""
    row = conn.execute(
        "SELECT c.reltuples, c.relpages,"
        " pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages_now,"
        " s.n_live_tup, s.n_mod_since_analyze, s.last_analyze, s.last_autoanalyze"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid"
        " WHERE c.relname = %s AND (%s::text IS NULL AND pg_table_is_visible(c.oid)"
        " OR n.nspname = %s)",
        [table, schema, schema],
    ).fetchone()
    if row is None:
        return None
    reltuples, relpages, pages_now, n_live, n_mod, last_analyze, last_auto = row
    planner_rows = int(reltuples) if reltuples is not None and reltuples >= 0 else None
    # The live count: the planner's own rows per page times the table's size now (the
    # physical truth, what it extrapolates to), else the statistics collector's n_live_tup.
    # n_live_tup alone misleads right after a bulk load and ANALYZE in one session: the
    # loader's insert counts reach the collector after the analyze and double it.
    if planner_rows and relpages and pages_now is not None:
        live_rows, source = int(reltuples / relpages * pages_now), "pages"
    else:
        live_rows, source = int(n_live or 0), "n_live_tup"
    analyzed = max((t for t in (last_analyze, last_auto) if t is not None), default=None)
    stats: dict[str, Any] = {
        "table_rows": planner_rows,
        "live_rows": live_rows,
        "live_rows_from": source,
        "n_live_tup": int(n_live) if n_live is not None else None,
        "modified_since_analyze": int(n_mod) if n_mod is not None else None,
        "last_analyzed": analyzed.isoformat() if analyzed else None,
    }
    stale = False
    if planner_rows is not None:
        gap = abs(live_rows - planner_rows)
        stale = gap > STALE_MIN_ROWS and gap > STALE_RATIO * planner_rows
    stats["stale"] = stale
    return stats


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
    stale: list[dict[str, Any]] = []
    tables: dict[str, dict[str, Any]] = {}
    for node in plan_nodes(plan):
        table = node.get("Relation Name")
        if not table:
            continue
        schema = node.get("Schema")
        name = f"{schema}.{table}" if schema else table
        if name not in tables:
            tables[name] = _table_stats(conn, schema, table) or {}
        stats = tables[name]
        if stats.get("stale") and name not in [s["table"] for s in stale]:
            stale.append({"table": name, **stats, "estimated_rows": node.get("Plan Rows")})
        if node.get("Node Type") != "Seq Scan" or "Filter" not in node:
            continue
        rows = stats.get("table_rows")
        live = stats.get("live_rows") or 0
        scan = {
            "table": name,
            "filter": node["Filter"],
            "table_rows": rows,
            "live_rows": live,
            "stale_statistics": bool(stats.get("stale")),
            "estimated_rows": node.get("Plan Rows"),
        }
        # Judge the larger of what the planner believes and what the table holds now:
        # statistics from when the table was small must not hide a scan of a big one.
        if max(rows or 0, live) > limit:
            seq_scans.append(scan)
        elif rows is None:
            unanalyzed.append(scan)
    entry["seq_scans"] = seq_scans
    entry["tables"] = tables
    if stale:
        entry["stale_statistics"] = stale
    if seq_scans:
        first = seq_scans[0]
        size = max(first["table_rows"] or 0, first["live_rows"])
        note = ""
        if first["stale_statistics"] or first["table_rows"] is None:
            believed = first["table_rows"]
            note = (
                f" (its statistics are stale: the planner counts {believed:,} rows)"
                if believed is not None
                else " (never analyzed)"
            )
        entry.update(
            status=Status.FAIL,
            summary=f"scans all ~{size:,} rows of {first['table']} sequentially "
            f"to filter {first['filter']}{note}",
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
    elif stale:
        first = stale[0]
        entry.update(
            status=Status.WARN,
            summary=f"is planned on stale statistics of {first['table']}: the planner counts "
            f"{first['table_rows']:,} rows, the table holds ~{first['live_rows']:,} (last "
            f"analyzed {first['last_analyzed'] or 'never'})",
            remediation=f"Run ANALYZE {first['table']}; and check that autovacuum runs on it, "
            "then re-run this check: the plan may change.",
        )
    else:
        entry.update(
            status=Status.PASS,
            summary=f"uses no sequential scan of a large table ({len(tables)} table(s)' "
            "statistics current)",
        )
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
    tables = {t for r in reviews for t in r.get("tables", {})}
    if not bad:
        n = len(reviews)
        return Result(
            Status.PASS,
            f"{n} quer{'y' if n == 1 else 'ies'} on {where} explained: no sequential scan of a "
            f"table above {limit:,} rows, statistics of {len(tables)} table(s) current",
            evidence,
            observations=n,
        )
    first = next(r for r in bad if r["status"] == status)
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return Result(
        status,
        f"query `{_shorten(first['query'])[:80]}` on {where} {first['summary']}{more}",
        evidence,
        " ".join(dict.fromkeys(r["remediation"] for r in bad if r.get("remediation"))),
        observations=len(reviews),
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
    description="The key queries use indexes (EXPLAIN), planned on current statistics",
    criteria=(
        "`EXPLAIN (FORMAT JSON)` in a read-only transaction with a statement timeout, rolled "
        "back; each table in the plan has its planner statistics (`pg_class.reltuples`) "
        "compared with what it holds now (the planner's rows per page times its current size "
        "in pages, else `pg_stat_user_tables.n_live_tup`) and `last_analyze`/"
        "`last_autoanalyze`. FAIL: a "
        "Seq Scan with a Filter on a table above the row limit by either count (so statistics "
        "from when the table was small do not hide it; evidence: table, filter, planner rows, "
        "live rows, estimated rows), or a missing table. WARN: such a scan on a never-analyzed "
        f"table under the limit, or stale statistics (live rows off from the planner's by more "
        f"than {int(STALE_RATIO * 100)}% and {STALE_MIN_ROWS:,} rows; last analyze shown), "
        "naming the table. ERROR: more than one statement in an entry "
        "(refused by the server: sent as a prepared statement) or invalid SQL. PASS names the "
        "queries explained"
    ),
    anchor="PostgreSQL EXPLAIN / pg_stat_user_tables",
)
