"""Database connections are encrypted, and the server refuses unencrypted ones.

Three observations: DB_SSL=true (what the app is told), pg_stat_ssl for this check's own
backend (what the connection really uses), and a second connection with sslmode=disable that
the server must refuse (on RDS: rds.force_ssl=1; self-hosted: `hostnossl ... reject` in pg_hba).

The plaintext probe never sends a password: it goes without one and with libpq's
require_auth=none, so libpq hangs up as soon as the server asks for any authentication. What
is observed is pg_hba's decision on an unencrypted connection: a refusal, or a request for
credentials (which means a plaintext login would be let in), or no authentication at all.
"""

from __future__ import annotations

import psycopg
import re2

from checks import _pg
from checks.base import Check, CheckContext, Finding, Result, Status, from_findings

# libpq: 'authentication method requirement "none" failed: server requested SASL authentication'
_ASKED = re2.compile(
    r'authentication method requirement "none" failed: server requested ([^\n]{1,80})'
)
_CLEARTEXT = "a cleartext password"


def _plaintext_probe(ctx: CheckContext, tgt: _pg.PgTarget) -> tuple[str, str]:
    """("refused" | "accepted" | "unknown", what the server did) for an unencrypted connection
    that carries no password."""
    params = {k: v for k, v in tgt.params.items() if k not in {"password", "passfile"}}
    params.update(
        sslmode="disable",
        gssencmode="disable",
        require_auth="none",
        # The first connection already used part of the budget: the probe gets less.
        connect_timeout=str(max(2, int(ctx.timeout_s * 0.3))),
    )
    try:
        psycopg.connect(**params, autocommit=True).close()  # type: ignore[arg-type]
        return "accepted", "the server asked for no authentication at all"
    except psycopg.Error as exc:
        asked = _ASKED.search(str(exc).encode("utf-8", "replace").decode("utf-8"))
        if asked:
            return "accepted", f"the server asked for {asked.group(1).strip()}"
        reason = _pg.server_message(exc, ctx)
        if _pg.failure_kind(exc) == _pg.ConnectFailure.HBA:
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
    evidence["plaintext_probe_sent_password"] = False

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
        if probe_reason.endswith(_CLEARTEXT):
            problems.append(
                (
                    Status.FAIL,
                    "on unencrypted connections the server asked for a cleartext password",
                    "Use scram-sha-256 instead of `password` in pg_hba.conf "
                    "(password_encryption = scram-sha-256, then set the role's password again).",
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
    # DB_SSL, this session's pg_stat_ssl row, the plaintext probe
    observed = 3
    if not problems:
        return Result(
            Status.PASS,
            f"{where} uses {tls_version} ({cipher}), verifies its certificate and refuses "
            "unencrypted logins (3 observations: DB_SSL, pg_stat_ssl, an unencrypted probe "
            "without a password)",
            evidence,
            observations=observed,
        )
    return from_findings(where, problems, evidence, observations=observed)


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
        "the server refuses an unencrypted connection before any authentication (probed "
        "without a password). No connection sends a password in cleartext outside verified TLS."
    ),
    criteria=(
        "PASS: DB_SSL=true, pg_stat_ssl shows TLS for this session, the certificate is "
        "verified (sslmode=verify-full or verify-ca), and pg_hba refuses a connection with "
        "sslmode=disable. FAIL: the session is unencrypted, DB_SSL is not true, the server "
        "offers authentication (or none) on an unencrypted connection, or it asks for a "
        "cleartext password outside verified TLS (Preflight refuses to send it). WARN: "
        "encrypted but the certificate is not verified (no PGSSLROOTCERT/PREFLIGHT_CA_BUNDLE). "
        "UNKNOWN: the probe's outcome was neither a refusal nor an authentication request. "
        "SKIPPED: no DB_HOST."
    ),
    anchor="AWS RDS rds.force_ssl; PostgreSQL pg_hba hostssl/hostnossl and libpq require_auth",
)
