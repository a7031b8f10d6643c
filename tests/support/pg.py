"""Throwaway PostgreSQL clusters for the db_* checks, started from the server binaries.

PostgreSQL refuses to run as root and CI runs as root: then initdb and pg_ctl run as the
unprivileged `postgres` user (runuser), with the cluster's directory handed over to it.
Clusters listen on 127.0.0.1 only, on a free port, with their unix socket in their own
directory; the tests administer them over that socket (trust) and the checks connect over
TCP with a password (scram-sha-256), as they would to RDS.

Session fixtures (each cluster starts once, on first use, and stops at the end):
- `pg_ssl`: SSL with a trustme certificate; pg_hba rejects every non-SSL TCP connection.
- `pg_plain`: no SSL at all; max_connections 10 with no reserved slots, so a test can fill it.
- `pg_tuned`: pg_stat_statements preloaded and created, log_min_duration_statement 500 ms;
  database `slowlog` overrides it to 5000 ms.
- `pg_cleartext`: SSL with a trustme certificate, and pg_hba asking for a cleartext password
  (`password` method) with or without SSL; log_connections on, so its log shows whether a
  password was ever checked (`server_log()`).
Every cluster has the app role `preflight_app` (password PG_PASSWORD) owning database `tpedb`
with `contractor_partner_matches` (20,000 rows, no index on partner_id, ANALYZEd) and database
`tpedb_indexed` with the same table indexed on partner_id.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trustme

from checks.base import CheckContext

PG_USER = "preflight_app"
PG_PASSWORD = "not-a-real-password-123"  # obviously fake; tests assert it never leaks
PG_DB = "tpedb"
PG_DB_INDEXED = "tpedb_indexed"
TABLE_ROWS = 20_000


class PgClusterError(Exception):
    """A test cluster could not be created or started."""


def pg_bin_dir() -> Path:
    """The newest PostgreSQL server bin directory (Debian layout first, then PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if (Path(directory) / "initdb").exists() and (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    raise PgClusterError("PostgreSQL server binaries not found: install the 'postgresql' package")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _hand_over(path: Path) -> None:
    """Give a path to the postgres user when we are root (PostgreSQL checks ownership)."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class PgCluster:
    """A running throwaway cluster."""

    name: str
    root: Path
    port: int
    ssl: bool
    ca_path: str | None = None  # the CA that signed the server certificate (ssl clusters)
    host: str = "127.0.0.1"
    bin_dir: Path = field(default_factory=pg_bin_dir)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A superuser connection over the unix socket (trust), autocommit."""
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=dbname,
            autocommit=True,
        )

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.admin(dbname) as conn, conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else []

    def env(self, **overrides: str) -> dict[str, str]:
        """The DB_* settings a deployment would have for this cluster."""
        values = {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_USER": PG_USER,
            "DB_PASSWORD": PG_PASSWORD,
            "DB_NAME": PG_DB,
            "DB_SSL": "true" if self.ssl else "false",
        }
        if self.ca_path:
            values["PGSSLROOTCERT"] = self.ca_path
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    def ctx(self, timeout_s: float = 10.0, allow_active: bool = False, **env: str) -> CheckContext:
        return CheckContext(env=self.env(**env), timeout_s=timeout_s, allow_active=allow_active)

    def server_log(self) -> str:
        """The server's log so far (pg_ctl -l)."""
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        subprocess.run(
            _as_server_user(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
            ),
            capture_output=True,
            check=False,
            timeout=30,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise PgClusterError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def start_cluster(
    name: str,
    *,
    ca: trustme.CA | None = None,
    conf: dict[str, str] | None = None,
    host_auth: list[str] | None = None,
) -> PgCluster:
    """initdb + pg_ctl start in a fresh temp dir; with ca, SSL on and plaintext TCP rejected.

    host_auth replaces the TCP lines of pg_hba.conf (e.g. to ask for a cleartext password).
    """
    root = Path(tempfile.mkdtemp(prefix=f"preflight-pg-{name}-"))
    _hand_over(root)
    cluster = PgCluster(name=name, root=root, port=free_port(), ssl=ca is not None)
    atexit.register(cluster.stop)  # if the session ends without its finalizers (stop is idempotent)
    bin_dir = cluster.bin_dir
    try:
        cluster.socket_dir.mkdir()
        _hand_over(cluster.socket_dir)
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            "initdb",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(cluster.port),
            "unix_socket_directories": f"'{cluster.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "password_encryption": "scram-sha-256",
        }
        hba = ["local all all trust"]
        if ca is not None:
            leaf = ca.issue_cert("127.0.0.1", "localhost")
            cert_path, key_path = cluster.data_dir / "server.crt", cluster.data_dir / "server.key"
            leaf.cert_chain_pems[0].write_to_path(str(cert_path))
            leaf.private_key_pem.write_to_path(str(key_path))
            for path in (cert_path, key_path):
                _hand_over(path)
            os.chmod(key_path, 0o600)
            ca_path = root / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_path))
            cluster.ca_path = str(ca_path)
            settings.update(ssl="on", ssl_cert_file=f"'{cert_path}'", ssl_key_file=f"'{key_path}'")
            hba += host_auth or [
                "hostssl all all 127.0.0.1/32 scram-sha-256",
                "hostnossl all all 127.0.0.1/32 reject",
            ]
        else:
            hba += host_auth or ["host all all 127.0.0.1/32 scram-sha-256"]
        settings.update(conf or {})
        with (cluster.data_dir / "postgresql.conf").open("a") as f:
            f.write("\n# preflight test cluster\n")
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())
        (cluster.data_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        _run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(cluster.data_dir),
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            "pg_ctl start",
        )
        _populate(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _populate(cluster: PgCluster) -> None:
    cluster.sql(f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'")
    for dbname, indexed in ((PG_DB, False), (PG_DB_INDEXED, True)):
        cluster.sql(f"CREATE DATABASE {dbname} OWNER {PG_USER}")
        with cluster.admin(dbname) as conn:
            conn.execute(f"SET ROLE {PG_USER}")
            conn.execute(
                "CREATE TABLE contractor_partner_matches ("
                " id bigserial PRIMARY KEY, partner_id integer NOT NULL,"
                " contractor_id integer NOT NULL, score real NOT NULL)"
            )
            conn.execute(
                "INSERT INTO contractor_partner_matches (partner_id, contractor_id, score)"
                f" SELECT g % 200, g, (g % 97) / 97.0 FROM generate_series(1, {TABLE_ROWS}) g"
            )
            if indexed:
                conn.execute(
                    "CREATE INDEX contractor_partner_matches_partner_id"
                    " ON contractor_partner_matches (partner_id)"
                )
            conn.execute("ANALYZE contractor_partner_matches")


@contextlib.contextmanager
def _session_cluster(name: str, **kwargs: Any) -> Iterator[PgCluster]:
    cluster = start_cluster(name, **kwargs)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_ca() -> trustme.CA:
    """The CA that signs the SSL cluster's server certificate."""
    return trustme.CA()


@pytest.fixture(scope="session")
def pg_ssl(pg_ca: trustme.CA) -> Iterator[PgCluster]:
    with _session_cluster("ssl", ca=pg_ca) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_plain() -> Iterator[PgCluster]:
    with _session_cluster(
        "plain", conf={"max_connections": "10", "superuser_reserved_connections": "0"}
    ) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_cleartext(pg_ca: trustme.CA) -> Iterator[PgCluster]:
    with _session_cluster(
        "cleartext",
        ca=pg_ca,
        conf={"log_connections": "on"},
        host_auth=[
            "hostssl all all 127.0.0.1/32 password",
            "hostnossl all all 127.0.0.1/32 password",
        ],
    ) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_tuned() -> Iterator[PgCluster]:
    with _session_cluster(
        "tuned",
        conf={
            "shared_preload_libraries": "'pg_stat_statements'",
            "log_min_duration_statement": "500",
        },
    ) as cluster:
        cluster.sql("CREATE EXTENSION pg_stat_statements", dbname=PG_DB)
        cluster.sql(f"CREATE DATABASE slowlog OWNER {PG_USER}")
        cluster.sql("ALTER DATABASE slowlog SET log_min_duration_statement = 5000")
        cluster.sql("CREATE EXTENSION pg_stat_statements", dbname="slowlog")
        yield cluster


def result_text(result: Any) -> str:
    """Every string a result carries (summary, remediation, evidence as JSON), for the tests
    that assert a secret never appears. Shared by the part-2 check tests."""
    return "\n".join([result.summary, result.remediation, json.dumps(result.evidence, default=str)])


@contextlib.contextmanager
def stalling_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


@contextlib.contextmanager
def recording_proxy(port: int) -> Iterator[tuple[int, bytearray]]:
    """A loopback TCP relay to `port` that keeps every byte the client sent (a capture of what
    went over the wire, for asserting a password never did)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    sent = bytearray()
    lock = threading.Lock()
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with lock:
                        sent.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
            upstream.settimeout(None)
            sockets.extend((client, upstream))
            for args in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=pump, args=args, daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), sent
    finally:
        stop.set()
        thread.join(2)
        for s in sockets:
            s.close()
        listener.close()


# --- the store's PostgreSQL backend ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_store_cluster() -> Iterator[PgCluster]:
    """One cluster for every PostgreSQL store test; each test gets a database of its own."""
    with _session_cluster("store", conf={"max_connections": "200"}) as cluster:
        yield cluster


_store_dbs = iter(range(1, 1_000_000))


def fresh_store_url(cluster: PgCluster) -> str:
    """A new empty database on `cluster`, owned by the unprivileged test role, as a store URL."""
    name = f"store_{os.getpid()}_{next(_store_dbs)}"
    cluster.sql(f"CREATE DATABASE {name} OWNER {PG_USER}")
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{cluster.host}:{cluster.port}/{name}"
