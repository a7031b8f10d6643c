"""How the db_* checks reach PostgreSQL: one place decides the connection settings, how the
server is trusted, how long to wait, and how a refused connection is explained.

The checklist's DB_* settings come first. libpq's own variables (PGSSLROOTCERT, PGSSLMODE,
PGSSLCERT, ...) keep working: they are passed through as conninfo keywords for whatever DB_*
does not say, and never override it. With DB_SSL=true the connection verifies the server
certificate (sslmode=verify-full) whenever a root certificate is known (PGSSLROOTCERT or
PREFLIGHT_CA_BUNDLE), else it still encrypts (sslmode=require).

Unless the connection is verified TLS (verify-ca, verify-full), libpq is told to refuse a
server that asks for the password in cleartext (require_auth=!password): on a plaintext or
unverified connection anyone on the path, or a server impersonating the database, would read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg
import re2

from checks.base import CheckContext, Result, Status, skipped
from checks.redact import Redactor

SETTINGS = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSL")

# libpq environment variables and the conninfo keywords they stand for.
_LIBPQ_ENV = {
    "PGHOST": "host",
    "PGHOSTADDR": "hostaddr",
    "PGPORT": "port",
    "PGDATABASE": "dbname",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGPASSFILE": "passfile",
    "PGSERVICE": "service",
    "PGSSLMODE": "sslmode",
    "PGSSLROOTCERT": "sslrootcert",
    "PGSSLCERT": "sslcert",
    "PGSSLKEY": "sslkey",
    "PGSSLCRL": "sslcrl",
    "PGSSLCRLDIR": "sslcrldir",
    "PGSSLSNI": "sslsni",
    "PGSSLMINPROTOCOLVERSION": "ssl_min_protocol_version",
    "PGSSLMAXPROTOCOLVERSION": "ssl_max_protocol_version",
    "PGGSSENCMODE": "gssencmode",
    "PGCHANNELBINDING": "channel_binding",
    "PGTARGETSESSIONATTRS": "target_session_attrs",
    "PGOPTIONS": "options",
    "PGAPPNAME": "application_name",
    "PGREQUIREAUTH": "require_auth",
}
_DB_KEYWORDS = {
    "DB_HOST": "host",
    "DB_PORT": "port",
    "DB_USER": "user",
    "DB_PASSWORD": "password",
    "DB_NAME": "dbname",
}
ENCRYPTING_MODES = frozenset({"require", "verify-ca", "verify-full"})
VERIFYING_MODES = frozenset({"verify-ca", "verify-full"})
APPLICATION_NAME = "preflight-readiness-check"
NO_CLEARTEXT = "!password"


@dataclass(frozen=True)
class PgTarget:
    """Where and how to connect. `params` holds the password: never show it, use describe()."""

    params: dict[str, str]

    @property
    def address(self) -> str:
        host = self.params.get("host") or self.params.get("hostaddr") or "localhost"
        return f"{host}:{self.params.get('port', '5432')}"

    @property
    def sslmode(self) -> str:
        return self.params.get("sslmode", "prefer")

    def describe(self) -> dict[str, Any]:
        """Secret-free description for evidence."""
        return {
            "host": self.params.get("host") or self.params.get("hostaddr") or "localhost",
            "port": int(self.params.get("port", "5432") or 5432),
            "database": self.params.get("dbname", ""),
            "user": self.params.get("user", ""),
            "sslmode": self.sslmode,
        }

    def with_params(self, **overrides: str) -> PgTarget:
        return replace(self, params={**self.params, **overrides})


def db_ssl_required(ctx: CheckContext) -> bool:
    return ctx.flag("DB_SSL")


def target(ctx: CheckContext) -> PgTarget | None:
    """Connection settings from ctx, or None when no database is configured (DB_HOST/PGHOST)."""
    if not (ctx.setting("DB_HOST") or ctx.setting("PGHOST") or ctx.setting("PGHOSTADDR")):
        return None
    params: dict[str, str] = {}
    for env_name, keyword in _LIBPQ_ENV.items():
        value = ctx.setting(env_name)
        if value is not None:
            params[keyword] = value
    for env_name, keyword in _DB_KEYWORDS.items():
        value = ctx.setting(env_name)
        if value is not None:
            params[keyword] = value

    libpq_mode = params.get("sslmode")
    root_cert = ctx.setting("PGSSLROOTCERT") or ctx.setting("PREFLIGHT_CA_BUNDLE")
    if db_ssl_required(ctx):
        if libpq_mode in ENCRYPTING_MODES:
            pass  # an explicit libpq choice at least as strict as "encrypt" is kept
        elif root_cert:
            params["sslmode"] = "verify-full"
        else:
            params["sslmode"] = "require"
        if root_cert and "sslrootcert" not in params:
            params["sslrootcert"] = root_cert
    elif libpq_mode is None:
        params["sslmode"] = "prefer"

    require_auth = _require_auth(params)
    if require_auth:
        params["require_auth"] = require_auth
    params["connect_timeout"] = str(connect_timeout(ctx))
    params.setdefault("application_name", APPLICATION_NAME)
    return PgTarget(params)


def _require_auth(params: dict[str, str]) -> str | None:
    """libpq's require_auth for these settings: cleartext passwords only inside verified TLS.

    A PGREQUIREAUTH that already excludes cleartext is kept (it may be stricter)."""
    chosen = params.get("require_auth")
    if params.get("sslmode") in VERIFYING_MODES:
        return chosen
    if chosen and _excludes_cleartext(chosen):
        return chosen
    return NO_CLEARTEXT


def _excludes_cleartext(require_auth: str) -> bool:
    methods = [m.strip().lower() for m in require_auth.split(",") if m.strip()]
    if methods and all(m.startswith("!") for m in methods):
        return "!password" in methods
    return bool(methods) and "password" not in methods


def connect_timeout(ctx: CheckContext) -> int:
    """libpq's connect_timeout (whole seconds, 2 at least) leaving time for the queries."""
    return max(2, int(ctx.timeout_s * 0.5))


def statement_timeout_ms(ctx: CheckContext) -> int:
    return max(500, int(ctx.timeout_s * 1000 * 0.4))


def connect(ctx: CheckContext, tgt: PgTarget) -> psycopg.Connection[Any]:
    """An autocommit connection whose statements give up before the check's deadline.

    Raises psycopg.Error when the connection fails (see connection_failure). Use it as a
    context manager: leaving the block closes it.
    """
    conn = psycopg.connect(**tgt.params, autocommit=True)  # type: ignore[arg-type]
    try:
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false)",
            [f"{statement_timeout_ms(ctx)}ms"],
        )
    except BaseException:
        conn.close()
        raise
    return conn


def ssl_in_use(conn: psycopg.Connection[Any]) -> bool:
    return bool(conn.pgconn.ssl_in_use)


class ConnectFailure:
    """Kinds of refused connections, from libpq's and the server's messages."""

    CLEARTEXT = "cleartext_password"
    OLD_LIBPQ = "libpq_without_require_auth"
    AUTH_METHOD = "auth_method"
    AUTH = "authentication"
    HBA = "pg_hba"
    DATABASE = "database"
    NO_SSL = "ssl_unsupported"
    CERTIFICATE = "certificate"
    UNREACHABLE = "unreachable"


# RE2: libpq's messages echo server text, which is outside input.
_KINDS: tuple[tuple[str, Any], ...] = tuple(
    (kind, re2.compile("(?i)" + pattern))
    for kind, pattern in (
        # libpq's require_auth refusing what the server asked for (the password was not sent)
        (ConnectFailure.CLEARTEXT, r"server requested a cleartext password"),
        (ConnectFailure.AUTH_METHOD, r"authentication method requirement"),
        # libpq before 16 does not know require_auth: fail closed rather than drop it
        (ConnectFailure.OLD_LIBPQ, r"invalid connection option \"require_auth\""),
        (ConnectFailure.AUTH, r"authentication failed|role \"[^\"]*\" does not exist"),
        (ConnectFailure.HBA, r"pg_hba\.conf"),
        (ConnectFailure.DATABASE, r"database \"[^\"]*\" does not exist"),
        (ConnectFailure.NO_SSL, r"server does not support SSL"),
        (ConnectFailure.CERTIFICATE, r"certificate|root\.crt|does not match host name|SSL error"),
    )
)


def failure_kind(exc: BaseException) -> str:
    text = str(exc).encode("utf-8", "replace").decode("utf-8")
    for kind, pattern in _KINDS:
        if pattern.search(text):
            return kind
    return ConnectFailure.UNREACHABLE


def server_message(exc: BaseException, ctx: CheckContext, limit: int = 240) -> str:
    """libpq's reason, without the "connection to server at ... failed:" preamble, redacted.

    Redaction comes first: a secret echoed with two spaces would no longer match its value
    once whitespace is collapsed (the redactor also knows the collapsed form: both guard)."""
    redactor = Redactor.from_env(ctx.env)
    text = redactor.text(str(exc))
    if "FATAL:" in text:
        text = text.rsplit("FATAL:", 1)[1]
    elif "failed:" in text:
        text = text.rsplit("failed:", 1)[1]
    text = redactor.text(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def connection_failure(exc: BaseException, ctx: CheckContext, tgt: PgTarget) -> Result:
    """A refused or failed connection as a result: FAIL when the server (or its certificate)
    said no to these settings, ERROR when it could not be reached at all."""
    kind = failure_kind(exc)
    reason = server_message(exc, ctx)
    where = f"PostgreSQL at {tgt.address}"
    user = tgt.params.get("user", "")
    evidence = {**tgt.describe(), "failure": kind, "reason": reason}
    if kind == ConnectFailure.CLEARTEXT:
        return Result(
            Status.FAIL,
            f"{where}: server asked for a cleartext password on a connection that is not "
            f"verified TLS (sslmode={tgt.sslmode}); Preflight refused to send it",
            evidence,
            "Use scram-sha-256 instead of `password` in pg_hba.conf (password_encryption = "
            "scram-sha-256, then set the role's password again), and connect over verified "
            "TLS: DB_SSL=true with PGSSLROOTCERT (or PREFLIGHT_CA_BUNDLE) naming the server's CA.",
        )
    if kind == ConnectFailure.OLD_LIBPQ:
        return Result(
            Status.ERROR,
            f"this libpq ({psycopg.pq.version()}) cannot refuse cleartext passwords "
            f"(require_auth needs libpq 16 or later), so {where} was not contacted",
            evidence,
            "Install psycopg[binary] (it bundles a current libpq), or connect over verified "
            "TLS: DB_SSL=true with PGSSLROOTCERT (or PREFLIGHT_CA_BUNDLE).",
        )
    if kind == ConnectFailure.AUTH_METHOD:
        return Result(
            Status.FAIL,
            f"{where} asked for an authentication method this connection refuses: {reason}",
            evidence,
            "Use scram-sha-256 in pg_hba.conf, or relax PGREQUIREAUTH if it is stricter than "
            "the server can be.",
        )
    if kind == ConnectFailure.AUTH:
        return Result(
            Status.FAIL,
            f"{where} refused user {user}: authentication failed",
            evidence,
            "Check DB_USER and DB_PASSWORD against the secrets manager entry for this "
            "database, and that the role exists and may log in.",
        )
    if kind == ConnectFailure.HBA:
        return Result(
            Status.FAIL,
            f"{where} refused the connection: {reason}",
            evidence,
            "The server's access rules (pg_hba.conf / RDS parameter group) do not allow this "
            "host, user, database and encryption; allow it or connect over SSL (DB_SSL=true).",
        )
    if kind == ConnectFailure.DATABASE:
        return Result(
            Status.FAIL,
            f"{where} has no database {tgt.params.get('dbname', '')!r}",
            evidence,
            "Check DB_NAME, or create the database and run the migrations.",
        )
    if kind == ConnectFailure.NO_SSL:
        return Result(
            Status.FAIL,
            f"{where} does not accept SSL connections",
            evidence,
            "Enable SSL on the server (ssl=on; on RDS it is always available), or fix DB_HOST.",
        )
    if kind == ConnectFailure.CERTIFICATE:
        return Result(
            Status.FAIL,
            f"{where}: the server certificate could not be verified ({reason})",
            evidence,
            "Point PGSSLROOTCERT (or PREFLIGHT_CA_BUNDLE) at the CA bundle that signed the "
            "server certificate (for RDS: the AWS RDS global bundle) and check that DB_HOST "
            "is the name in the certificate.",
        )
    return Result(
        Status.ERROR,
        f"could not reach {where}: {reason}",
        evidence,
        "Check DB_HOST and DB_PORT, that the server is running, and that security groups or "
        "firewalls let this machine reach it.",
    )


def configured_or_skip(ctx: CheckContext) -> PgTarget | Result:
    """The target, or the SKIPPED result naming DB_HOST when none is configured."""
    tgt = target(ctx)
    if tgt is None:
        return skipped("DB_HOST")
    return tgt


def query_failure(exc: psycopg.Error, ctx: CheckContext, tgt: PgTarget, what: str) -> Result:
    """A query that failed on a live connection (timeout, permissions, lost connection)."""
    reason = server_message(exc, ctx)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        reason = f"cancelled after {statement_timeout_ms(ctx)} ms ({reason})"
    return Result(
        Status.ERROR,
        f"{what} failed on PostgreSQL at {tgt.address}: {reason}",
        {**tgt.describe(), "error": type(exc).__name__, "reason": reason},
        "Check that the role may read the system views (pg_settings, pg_stat_activity) and "
        "that the server is not overloaded; then re-run the check.",
    )
