"""A manual backup can be taken: pg_dump -F c of the production database, verified with
pg_restore --list, then deleted. Opt-in (active): it reads the whole database.

The password reaches pg_dump through PGPASSWORD in its environment, never its argv (argv is
visible to every user of the machine through ps).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from checks import _pg
from checks.base import Check, CheckContext, Result, Status
from checks.redact import Redactor

# conninfo keyword -> libpq environment variable, for the subprocess
_ENV_FOR = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "require_auth": "PGREQUIREAUTH",  # honoured by libpq 16+; see _refuses_cleartext
}
_UNREACHABLE = re.compile(
    r"could not connect|connection refused|timeout expired|could not translate host name|"
    r"no route to host|network is unreachable",
    re.I,
)


class ToolNotFound(Exception):
    """pg_dump or pg_restore is not installed."""


def find_tool(name: str) -> str:
    """A PostgreSQL client tool: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found

    def major(path: str) -> int:
        version = Path(path).parent.parent.name
        return int(version) if version.isdigit() else 0

    for path in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major, reverse=True):
        if os.access(path, os.X_OK):
            return path
    raise ToolNotFound(name)


def subprocess_env(tgt: _pg.PgTarget) -> dict[str, str]:
    """The process environment with the connection settings as libpq variables (those the
    check decided replace the process's own; others, like PGSERVICEFILE, pass through)."""
    decided = set(_ENV_FOR.values())
    env = {k: v for k, v in os.environ.items() if k not in decided}
    for keyword, value in tgt.params.items():
        if keyword in _ENV_FOR:
            env[_ENV_FOR[keyword]] = value
    return env


def tool_major(path: str) -> int:
    """The major version of a PostgreSQL client tool (`pg_dump (PostgreSQL) 15.18` -> 15)."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    words = out.split()
    version = words[-1] if words else ""
    major = version.split(".")[0]
    return int(major) if major.isdigit() else 0


def _cleartext_probe(ctx: CheckContext, tgt: _pg.PgTarget) -> Result | None:
    """A pg_dump older than 16 ignores PGREQUIREAUTH and would hand the password to a server
    that asks for it in cleartext. Before it runs, our own libpq (which enforces require_auth)
    connects once: a server asking for a cleartext password is refused there, the password
    unsent, and pg_dump never starts. None when the probe connected."""
    try:
        with _pg.connect(ctx, tgt):
            return None
    except psycopg.Error as exc:
        return _pg.connection_failure(exc, ctx, tgt)


def _last_line(text: str, redactor: Redactor) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = redactor.text(lines[-1]) if lines else ""
    return line if len(line) <= 240 else line[:239] + "…"


def run(ctx: CheckContext) -> Result:
    tgt = _pg.configured_or_skip(ctx)
    if isinstance(tgt, Result):
        return tgt
    try:
        pg_dump, pg_restore = find_tool("pg_dump"), find_tool("pg_restore")
    except ToolNotFound as exc:
        return Result(
            Status.ERROR,
            f"{exc} is not installed on this machine",
            {"missing_tool": str(exc)},
            "Install the PostgreSQL client tools (Debian: postgresql-client) matching the "
            "server's major version or newer.",
        )
    if "require_auth" in tgt.params and tool_major(pg_dump) < 16:
        refused = _cleartext_probe(ctx, tgt)
        if refused is not None:
            return refused
    redactor = Redactor.from_env(ctx.env)
    env = subprocess_env(tgt)
    deadline = time.monotonic() + max(ctx.timeout_s - 1.0, 1.0)
    where = f"{tgt.address}/{tgt.params.get('dbname', '')}"
    with tempfile.TemporaryDirectory(prefix="preflight-dump-") as workdir:
        dump_path = Path(workdir) / "preflight-check.dump"
        started = time.monotonic()
        try:
            dump = subprocess.run(
                [pg_dump, "--format=custom", "--no-password", f"--file={dump_path}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=max(deadline - time.monotonic(), 1.0),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Result(
                Status.ERROR,
                f"pg_dump of {where} did not finish within {ctx.timeout_s:g} s",
                {**tgt.describe(), "pg_dump": pg_dump},
                "Run the check with a longer timeout, or verify the manual backup procedure "
                "by hand for a database this size.",
            )
        dump_ms = int((time.monotonic() - started) * 1000)
        if dump.returncode != 0:
            reason = _last_line(dump.stderr, redactor)
            evidence = {**tgt.describe(), "pg_dump": pg_dump, "reason": reason}
            if _UNREACHABLE.search(dump.stderr):
                return Result(
                    Status.ERROR,
                    f"pg_dump could not reach PostgreSQL at {tgt.address}: {reason}",
                    evidence,
                    "Check DB_HOST and DB_PORT and that this machine may reach the database.",
                )
            if "version mismatch" in dump.stderr:
                return Result(
                    Status.ERROR,
                    f"pg_dump at {pg_dump} is older than the server: {reason}",
                    evidence,
                    "Install a pg_dump of the server's major version or newer.",
                )
            return Result(
                Status.FAIL,
                f"pg_dump of {where} failed: {reason}",
                evidence,
                "Fix what pg_dump reports (credentials, privileges: the role must be able to "
                "read every table) so the documented manual backup works.",
            )
        size = dump_path.stat().st_size
        try:
            listing = subprocess.run(
                [pg_restore, "--list", str(dump_path)],
                capture_output=True,
                text=True,
                timeout=max(deadline - time.monotonic(), 1.0),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Result(
                Status.ERROR,
                f"pg_restore --list of the dump of {where} did not finish in time",
                {**tgt.describe(), "size_bytes": size, "dump_ms": dump_ms},
                "Run the check with a longer timeout.",
            )
    entries = [
        line for line in listing.stdout.splitlines() if line.strip() and not line.startswith(";")
    ]
    evidence = {
        **tgt.describe(),
        "pg_dump": pg_dump,
        "size_bytes": size,
        "dump_ms": dump_ms,
        "toc_entries": len(entries),
        "tables": sum(1 for line in entries if " TABLE DATA " in line),
    }
    if listing.returncode != 0 or not entries:
        return Result(
            Status.FAIL,
            f"the pg_dump archive of {where} does not read back: "
            f"{_last_line(listing.stderr, redactor) or 'no entries'}",
            evidence,
            "Check the pg_dump and pg_restore versions and the disk the dump is written to.",
        )
    return Result(
        Status.PASS,
        f"pg_dump of {where} wrote {size:,} bytes in {dump_ms / 1000:.1f} s and pg_restore "
        f"lists {len(entries)} entries",
        evidence,
        observations=len(entries),
    )


CHECK = Check(
    id="db_backup_dump",
    title="Manual database backup works (pg_dump)",
    section="Backup & Disaster Recovery",
    run=run,
    settings=(*_pg.SETTINGS, "PGSSLROOTCERT", "PREFLIGHT_CA_BUNDLE"),
    severity="high",
    blocking=False,
    active=True,
    timeout_s=300.0,
    max_age_s=24 * 3600,
    description=(
        "A manual backup works: `pg_dump -F c` reads back with `pg_restore --list` (active: opt-in)"
    ),
    criteria=(
        "PASS: archive written and listed, naming its size, duration and entries "
        "(observations: entries listed); the file is deleted. FAIL: pg_dump refused "
        "(credentials, privileges) or the archive does not read back (no entries). ERROR: "
        "unreachable, pg_dump older than the server, client tools missing, out of time. "
        "Password passed in `PGPASSWORD`, never argv. SKIPPED without `DB_HOST` or `--active`"
    ),
    anchor="PostgreSQL pg_dump / pg_restore",
)
