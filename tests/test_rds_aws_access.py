"""How the rds_* checks fail when AWS cannot answer: no credentials, denied, rejected keys,
unreachable endpoint. None of them may show a credential."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from checks import _aws, rds_backups, rds_hardening, rds_monitoring
from checks.base import CheckContext, Status
from checks.runner import run_one
from tests.support.aws_moto import AWS_REGION, AWS_SECRET, aws_client, aws_ctx, create_instance
from tests.support.pg import free_port, result_text

RDS_CHECKS = [rds_backups.CHECK, rds_monitoring.CHECK, rds_hardening.CHECK]


@pytest.mark.parametrize("check", RDS_CHECKS, ids=lambda c: c.id)
def test_no_credentials_is_error(aws_clean_env: None, check: Any) -> None:
    ctx = CheckContext(env={"PREFLIGHT_RDS_INSTANCE": "db1", "AWS_REGION": AWS_REGION})
    result = run_one(check, ctx)
    assert result.status is Status.ERROR
    assert "no AWS credentials" in result.summary
    assert "AWS_ACCESS_KEY_ID" in result.remediation


def test_half_a_key_is_error(aws_clean_env: None) -> None:
    ctx = CheckContext(env={"PREFLIGHT_RDS_INSTANCE": "db1", "AWS_SECRET_ACCESS_KEY": AWS_SECRET})
    result = run_one(rds_backups.CHECK, ctx)
    assert result.status is Status.ERROR
    assert "half" in result.summary
    assert AWS_SECRET not in result_text(result)


def test_no_region_is_error(aws_clean_env: None) -> None:
    result = run_one(rds_backups.CHECK, aws_ctx("db1", AWS_REGION=""))
    assert result.status is Status.ERROR
    assert "AWS_REGION" in result.remediation


def test_unknown_profile_is_error(aws_clean_env: None) -> None:
    ctx = CheckContext(env={"PREFLIGHT_RDS_INSTANCE": "db1", "AWS_PROFILE": "nope"})
    result = run_one(rds_monitoring.CHECK, ctx)
    assert result.status is Status.ERROR
    assert "nope" in result.summary


def _stubbed(monkeypatch: pytest.MonkeyPatch, code: str, status: int) -> None:
    client = aws_client()
    stub = Stubber(client)
    stub.add_client_error(
        "describe_db_instances", code, f"{code} for the test", http_status_code=status
    )
    stub.activate()
    monkeypatch.setattr(_aws, "rds_client", lambda ctx: client)


@pytest.mark.parametrize(
    ("code", "status", "phrase"),
    [
        ("AccessDenied", 403, "rds:DescribeDBInstances"),
        ("InvalidClientTokenId", 403, "AWS_ACCESS_KEY_ID"),
        ("ExpiredToken", 400, "AWS_SESSION_TOKEN"),
        ("Throttling", 400, "retry"),
    ],
)
def test_aws_refusals_are_errors_with_a_fix(
    aws_clean_env: None, monkeypatch: pytest.MonkeyPatch, code: str, status: int, phrase: str
) -> None:
    _stubbed(monkeypatch, code, status)
    result = run_one(rds_backups.CHECK, aws_ctx("db1"))
    assert result.status is Status.ERROR
    assert phrase in result.remediation
    assert result.evidence["aws_error"] == code


def test_unreachable_endpoint_is_error(aws_clean_env: None) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = run_one(
        rds_hardening.CHECK, aws_ctx("db1", timeout_s=5, PREFLIGHT_AWS_ENDPOINT_URL=endpoint)
    )
    assert result.status is Status.ERROR
    assert "could not reach" in result.summary
    assert "PREFLIGHT_AWS_ENDPOINT_URL" in result.remediation


def test_client_uses_endpoint_and_bounded_timeouts(aws_clean_env: None) -> None:
    ctx = aws_ctx("db1", timeout_s=8, PREFLIGHT_AWS_ENDPOINT_URL="http://127.0.0.1:4566")
    client = _aws.rds_client(ctx)
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == AWS_REGION
    config = client.meta.config
    assert config.connect_timeout + config.read_timeout < 8
    assert config.retries["total_max_attempts"] == 2


@pytest.mark.parametrize("check", RDS_CHECKS, ids=lambda c: c.id)
def test_no_result_carries_a_credential(aws_rds: Any, check: Any) -> None:
    create_instance(aws_rds, "db1", good=False)
    for ctx in (aws_ctx("db1"), aws_ctx("missing-db")):
        text = result_text(check.run(ctx))
        assert AWS_SECRET not in text
        assert "not-a-real-password-123" not in text
