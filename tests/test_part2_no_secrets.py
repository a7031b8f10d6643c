"""No part-2 check puts a secret in its result, whatever goes wrong.

Every check runs with the same environment full of fake secrets (database password, AWS
secret key, Sentry DSN key, JWT secret) against failing targets, called directly (without
the runner's redactor, so the check's own strings are tested) and through the runner. Every
string of every result (summary, remediation, evidence as JSON) is searched for them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from checks import (
    db_backup_dump,
    db_connect,
    db_query_plans,
    db_settings,
    db_ssl,
    env_config,
    load_test,
    log_errors,
    npm_audit,
    rds_backups,
    rds_hardening,
    rds_monitoring,
    secrets_plaintext,
    sentry_dsn,
)
from checks.base import Check, CheckContext, Result
from checks.runner import run_one
from tests.support.aws_moto import AWS_SECRET, create_instance
from tests.support.pg import PG_PASSWORD, PgCluster, free_port, result_text

SENTRY_KEY = "fedcba9876543210fedcba9876543210"
JWT = "not-a-real-jwt-secret-" + "f" * 60
WRONG_PASSWORD = "wrong-fake-password-42"
SECRETS = (PG_PASSWORD, WRONG_PASSWORD, AWS_SECRET, SENTRY_KEY, JWT)

PG_CHECKS = [
    db_connect.CHECK,
    db_ssl.CHECK,
    db_settings.CHECK,
    db_query_plans.CHECK,
    db_backup_dump.CHECK,
]
OTHER_CHECKS = [
    rds_backups.CHECK,
    rds_monitoring.CHECK,
    rds_hardening.CHECK,
    env_config.CHECK,
    secrets_plaintext.CHECK,
    npm_audit.CHECK,
    sentry_dsn.CHECK,
    log_errors.CHECK,
    load_test.CHECK,
]


def secret_env(**overrides: str) -> dict[str, str]:
    return {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(free_port()),
        "DB_USER": "preflight_app",
        "DB_PASSWORD": PG_PASSWORD,
        "DB_NAME": "tpedb",
        "DB_SSL": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_REGION": "us-east-1",
        "PREFLIGHT_RDS_INSTANCE": "db-missing",
        "SENTRY_DSN": f"https://{SENTRY_KEY}@127.0.0.1:{free_port()}/not-a-number",
        "JWT_SECRET": JWT,
        "NODE_ENV": "production",
        **overrides,
    }


def assert_clean(check: Check, ctx: CheckContext) -> list[Result]:
    results = [check.run(ctx), run_one(check, ctx)]
    for result in results:
        text = result_text(result)
        for secret in SECRETS:
            assert secret not in text, f"{check.id} leaked a secret: {result.summary}"
    return results


@pytest.mark.parametrize("check", PG_CHECKS, ids=lambda c: c.id)
def test_database_down(check: Check) -> None:
    assert_clean(check, CheckContext(env=secret_env(), allow_active=True, timeout_s=10))


@pytest.mark.parametrize("check", PG_CHECKS, ids=lambda c: c.id)
def test_wrong_password(check: Check, pg_ssl: PgCluster) -> None:
    env = secret_env(**pg_ssl.env(DB_PASSWORD=WRONG_PASSWORD))
    assert_clean(check, CheckContext(env=env, allow_active=True, timeout_s=30))


@pytest.mark.parametrize("check", OTHER_CHECKS, ids=lambda c: c.id)
def test_other_checks_failing(check: Check, aws_rds: Any, tmp_path: Any) -> None:
    create_instance(aws_rds, "db-weak", good=False)
    leaky = tmp_path / "notes.md"
    leaky.write_text(f"DB_PASSWORD={PG_PASSWORD}\n- Password: {WRONG_PASSWORD}\n")
    log = tmp_path / "app.log"
    log.write_text(f"ERROR login failed password={PG_PASSWORD} token {JWT}\n")
    ctx = CheckContext(
        env=secret_env(
            PREFLIGHT_SCAN_PATHS=str(leaky),
            PREFLIGHT_LOG_FILES=str(log),
            PREFLIGHT_NPM_AUDIT_REPORT=str(tmp_path / "missing.json"),
            PREFLIGHT_LOAD_URL=f"http://user:{PG_PASSWORD}@127.0.0.1:{free_port()}/?t={JWT}",
            PREFLIGHT_SENTRY_TEST_EVENT="true",
        ),
        allow_active=True,
        timeout_s=10,
    )
    assert_clean(check, ctx)
    if check.id.startswith("rds_"):
        assert_clean(check, replace(ctx, env={**ctx.env, "PREFLIGHT_RDS_INSTANCE": "db-weak"}))
