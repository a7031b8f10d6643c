"""Canary secrets in every shape, reflected by real servers into checks that echo what they
see, run through checks.runner.run_checks: the runner's redaction is what is tested. No canary
may appear in any field of a result (summary, evidence, remediation).

- api_health against a local HTTP API that echoes the token back in the headers the check
  reports (Location of a redirect, Content-Type);
- log_errors on log files that hold the AWS secret key in each shape;
- the db_* checks against a real PostgreSQL whose error message echoes the password (two
  spaces and all: the database name is set to it, as when DB_NAME and DB_PASSWORD are swapped).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from checks import _pg, api_health, db_connect, db_settings, db_ssl, log_errors
from checks.base import CheckContext, Result, Status
from checks.runner import run_checks
from tests.security.canaries import API_TOKEN, AWS_SECRET, CANARY_ENV, DB_PASSWORD, leaks, shapes
from tests.support.http_apps import Reply, Request
from tests.support.pg import PgCluster

SHAPES = sorted(shapes("x" * 20))


def everything(result: Result) -> str:
    """Every string the result carries, as it would be stored, posted or exported."""
    return json.dumps(result.to_dict(), default=str)


def _echoing_api(echo: str) -> Callable[[Request], Reply]:
    """Redirects every request to a login page, with the token's echo in the Location and
    the Content-Type it answers with (both end up in api_health's evidence)."""

    def app(request: Request) -> Reply:
        return Reply(
            302,
            {"Location": f"/login?next=%2F&t={echo}", "Content-Type": f"text/html; t={echo}"},
            b"",
        )

    return app


@pytest.mark.parametrize("shape", SHAPES)
def test_api_health_echoing_the_token(http_app, shape: str) -> None:
    echo = shapes(API_TOKEN)[shape]
    api = http_app(_echoing_api(echo))
    ctx = CheckContext(env={**CANARY_ENV, "PREFLIGHT_API_URL": api.url}, timeout_s=5.0)
    # The check itself reflects what the server said (else this test would prove nothing) ...
    raw = api_health.CHECK.run(ctx)
    assert echo in json.dumps(raw.evidence), raw.evidence
    # ... and nothing of the token is left once the runner has redacted the result.
    result = run_checks([api_health.CHECK], ctx)[0]
    assert result.status is Status.FAIL, result.summary
    assert leaks(API_TOKEN, everything(result)) == [], everything(result)


def _log_with(tmp_path: Path, line: str) -> Path:
    when = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    path = tmp_path / "app.log"
    path.write_text(
        f"{when} info: upload worker started\n"
        f"{when} error: S3 upload failed: {line}\n"
        f"{when} info: retrying\n"
    )
    return path


@pytest.mark.parametrize("shape", SHAPES)
def test_log_errors_sampling_a_line_with_the_aws_secret(tmp_path: Path, shape: str) -> None:
    path = _log_with(tmp_path, f"signature mismatch for {shapes(AWS_SECRET)[shape]} (400)")
    ctx = CheckContext(env={**CANARY_ENV, "PREFLIGHT_LOG_FILES": str(path)})
    result = run_checks([log_errors.CHECK], ctx)[0]
    assert result.status is Status.WARN, result.summary
    text = everything(result)
    assert "S3 upload failed: signature mismatch for" in text  # the line was sampled
    assert leaks(AWS_SECRET, text) == [], text


@pytest.fixture(scope="module")
def canary_role(pg_plain: PgCluster) -> str:
    """A role whose password is the canary (two spaces included)."""
    role = "canary_role"
    with pg_plain.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{DB_PASSWORD}'")
    return role


def _swapped(pg_plain: PgCluster, role: str) -> CheckContext:
    """DB_NAME set to the password: the server's error echoes the password verbatim."""
    return pg_plain.ctx(**CANARY_ENV, DB_USER=role, DB_NAME=DB_PASSWORD)


def test_postgres_error_echoing_the_password(pg_plain: PgCluster, canary_role: str) -> None:
    ctx = _swapped(pg_plain, canary_role)
    tgt = _pg.target(ctx)
    assert tgt is not None
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(**tgt.params)  # type: ignore[arg-type]
    assert f'database "{DB_PASSWORD}" does not exist' in str(caught.value)  # two spaces
    message = _pg.server_message(caught.value, ctx)
    assert message.startswith("database ") and message.endswith(" does not exist")
    assert leaks(DB_PASSWORD, message) == [], message


@pytest.mark.parametrize(
    "check", [db_connect.CHECK, db_ssl.CHECK, db_settings.CHECK], ids=lambda c: c.id
)
def test_db_checks_with_the_password_echoed(
    pg_plain: PgCluster, canary_role: str, check: object
) -> None:
    result = run_checks([check], _swapped(pg_plain, canary_role))[0]  # type: ignore[list-item]
    assert result.status is Status.FAIL, result.summary
    assert result.evidence["failure"] == _pg.ConnectFailure.DATABASE
    assert leaks(DB_PASSWORD, everything(result)) == [], everything(result)
