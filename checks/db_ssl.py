"""Database connections are encrypted, and the server refuses unencrypted ones.

Three observations: DB_SSL=true (what the app is told), pg_stat_ssl for this check's own
backend (what the connection really uses), and a second login with sslmode=disable that the
server must refuse (on RDS: rds.force_ssl=1; self-hosted: `hostnossl ... reject` in pg_hba).
"""

from __future__ import annotations

import psycopg

from checks import _pg
from checks.base import Check, CheckContext, Finding, Result, Status, from_findings


def _plaintext_probe(ctx: CheckContext, tgt: _pg.PgTarget) -> tuple[str, str]:
    """("refused" | "accepted" | "unknown", reason) for a login with sslmode=disable."""
    # The first connection already used part of the budget: the probe gets less.
    probe = tgt.with_params(
        sslmode="disable", connect_timeout=str(max(2, int(ctx.timeout_s * 0.3)))
    )
    try:
        _pg.connect(ctx, probe).close()
        return "accepted", ""
    except psycopg.Error as exc:
        reason = _pg.server_message(exc, ctx)
        # The same credentials worked a moment ago over SSL, so an access-rule or
        # authentication refusal of the unencrypted login is the server refusing plaintext.
        if _pg.failure_kind(exc) in {_pg.ConnectFailure.HBA, _pg.ConnectFailure.AUTH}:
            return "refused", reason
        return "unknown", reason


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
                "SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        except psycopg.Error as exc:
            return _pg.query_failure(exc, ctx, tgt, "reading pg_stat_ssl")
    in_use, tls_version, cipher, bits = row if row else (False, None, None, None)
    plaintext, probe_reason = _plaintext_probe(ctx, tgt)
    db_ssl = _pg.db_ssl_required(ctx)
    evidence = {
        **tgt.describe(),
        "db_ssl_setting": ctx.setting("DB_SSL") or "(unset)",
        "ssl_in_use": bool(in_use),
        "tls_version": tls_version,
        "cipher": cipher,
        "bits": bits,
        "certificate_verified": tgt.sslmode in _pg.VERIFYING_MODES,
        "plaintext_login": plaintext,
    }
    if probe_reason:
        evidence["plaintext_reason"] = probe_reason

    problems: list[Finding] = []
    if not in_use:
        problems.append(
            (
                Status.FAIL,
                "the connection is not encrypted",
                "Enable SSL on the server and connect with sslmode=require or stricter.",
            )
        )
    if not db_ssl:
        problems.append(
            (
                Status.FAIL,
                "DB_SSL is not true",
                "Set DB_SSL=true in the backend's .env.production.",
            )
        )
    if plaintext == "accepted":
        problems.append(
            (
                Status.FAIL,
                "the server accepts unencrypted logins",
                "Refuse plaintext: on RDS set rds.force_ssl=1 in the instance's parameter group; "
                "self-hosted, use hostssl lines and `hostnossl all all 0.0.0.0/0 reject` in "
                "pg_hba.conf.",
            )
        )
    elif plaintext == "unknown":
        problems.append(
            (
                Status.UNKNOWN,
                f"could not tell whether unencrypted logins are refused ({probe_reason})",
                "Re-run the check; if it persists, check the server log for the probe login.",
            )
        )
    if in_use and tgt.sslmode not in _pg.VERIFYING_MODES:
        problems.append(
            (
                Status.WARN,
                "the server certificate is not verified",
                "Set PGSSLROOTCERT (or PREFLIGHT_CA_BUNDLE) to the CA bundle (for RDS: the AWS "
                "RDS global bundle) so connections use sslmode=verify-full.",
            )
        )

    where = f"PostgreSQL at {tgt.address}"
    if not problems:
        return Result(
            Status.PASS,
            f"{where} uses {tls_version} ({cipher}), verifies its certificate and refuses "
            "unencrypted logins",
            evidence,
        )
    return from_findings(where, problems, evidence)


CHECK = Check(
    id="db_ssl",
    title="Database connections use SSL",
    section="Production Infrastructure Readiness",
    run=run,
    settings=(*_pg.SETTINGS, "PGSSLROOTCERT", "PREFLIGHT_CA_BUNDLE"),
    severity="critical",
    blocking=True,
    timeout_s=20.0,
    max_age_s=3600,
    description=(
        "DB_SSL=true, this connection is encrypted (pg_stat_ssl: TLS version and cipher), and "
        "a login with sslmode=disable is refused by the server. FAIL: unencrypted, DB_SSL not "
        "true, or plaintext accepted; WARN: encrypted but the certificate is not verified "
        "(no PGSSLROOTCERT/PREFLIGHT_CA_BUNDLE)."
    ),
)
