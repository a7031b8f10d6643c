"""AWS RDS for the rds_* checks, through moto (no AWS account, no network).

moto 5 models most of DescribeDBInstances. What it does not model is supplied through moto's
own backend objects (attributes on the DBInstance it serialises): PerformanceInsightsEnabled
and CertificateDetails; LatestRestorableTime is a property of moto's DBInstance that always
answers "now", so a lagging restore point is made by overriding that property. moto does not
implement DescribeCertificates nor the default parameter groups: those paths are tested with
botocore's Stubber on a real client (see the rds_hardening tests), with moto as it is (an
unimplemented action: moto raises NotImplementedError inside the call), and with
`aws_action_error`, which makes moto's RDS answer one action with an AWS error response.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from checks import _aws
from checks.base import CheckContext

AWS_REGION = "us-east-1"
AWS_KEY_ID = "testing"
AWS_SECRET = "testing-secret-key-not-real-0000"  # obviously fake; tests assert it never leaks
MONITORING_ROLE = "arn:aws:iam::123456789012:role/rds-monitoring-role"


@pytest.fixture
def aws_clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Nothing on this machine may supply AWS credentials or reach instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def aws_ctx(instance: str | None, timeout_s: float = 10.0, **env: str) -> CheckContext:
    values = {
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_REGION": AWS_REGION,
    }
    if instance:
        values["PREFLIGHT_RDS_INSTANCE"] = instance
    values.update(env)
    return CheckContext(env={k: v for k, v in values.items() if v}, timeout_s=timeout_s)


def moto_instance(identifier: str) -> Any:
    """moto's own model object for an instance, to set what its API cannot."""
    return rds_backends[DEFAULT_ACCOUNT_ID][AWS_REGION].databases[identifier]


def create_instance(client: Any, identifier: str, *, good: bool = True, **overrides: Any) -> Any:
    """An RDS PostgreSQL instance with every readiness setting right (good) or wrong."""
    params: dict[str, Any] = {
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": "db.t3.micro",
        "Engine": "postgres",
        "EngineVersion": "15.4",
        "MasterUsername": "tpeadmin",
        "MasterUserPassword": "not-a-real-password-123",
        "AllocatedStorage": 20,
        # a security group of our own spares moto building a default EC2 VPC for each test
        "VpcSecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    group = f"{identifier}-params"
    client.create_db_parameter_group(
        DBParameterGroupName=group, DBParameterGroupFamily="postgres15", Description="test"
    )
    force_ssl = {"ParameterName": "rds.force_ssl", "ApplyMethod": "immediate"}
    client.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[{**force_ssl, "ParameterValue": "1" if good else "0"}],
    )
    params["DBParameterGroupName"] = group
    if good:
        params.update(
            BackupRetentionPeriod=30,
            StorageEncrypted=True,
            DeletionProtection=True,
            PubliclyAccessible=False,
            MultiAZ=True,
            MonitoringInterval=60,
            MonitoringRoleArn=MONITORING_ROLE,
            EnablePerformanceInsights=True,
            CACertificateIdentifier="rds-ca-rsa2048-g1",
        )
    else:
        params.update(
            BackupRetentionPeriod=0,
            StorageEncrypted=False,
            DeletionProtection=False,
            PubliclyAccessible=True,
            MultiAZ=False,
            CACertificateIdentifier="rds-ca-2019",
        )
    params.update(overrides)
    client.create_db_instance(**params)
    model = moto_instance(identifier)
    # Not modelled by moto's API: set on its own instance object, which it serialises.
    model.performance_insights_enabled = good
    model.certificate_details = {
        "CAIdentifier": params["CACertificateIdentifier"],
        "ValidTill": datetime.now(UTC) + (timedelta(days=800) if good else timedelta(days=20)),
    }
    return model


def aws_client(**kwargs: Any) -> Any:
    """An RDS client with the fake credentials, sharing the checks' loaded service models
    (a fresh boto3 client reads megabytes of JSON: this keeps the tests fast)."""
    return _aws.session(aws_ctx(None)).client("rds", **kwargs)


@pytest.fixture
def aws_rds(aws_clean_env: None) -> Iterator[Any]:
    """An in-process mocked AWS; yields an RDS client for setting up instances."""
    with mock_aws():
        yield aws_client()


@pytest.fixture
def aws_restore_lag(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Make moto's LatestRestorableTime lag behind now by a given amount."""
    from moto.rds.models import DBInstance

    def set_lag(lag: timedelta) -> None:
        monkeypatch.setattr(
            DBInstance,
            "latest_restorable_time",
            property(lambda self: datetime.now(UTC) - lag),
        )

    return set_lag


@pytest.fixture
def aws_action_error(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """`aws_action_error("describe_certificates", "InvalidAction")`: moto's RDS answers
    that action with this AWS error (serialised by moto like any other error, parsed by
    botocore from the HTTP response), as an endpoint that does not support it would."""
    from moto.rds.exceptions import RDSClientError
    from moto.rds.responses import RDSResponse

    def answer_with(action: str, code: str) -> None:
        def fail(self: Any) -> Any:
            raise RDSClientError(code, f"The action {action} is not valid for this endpoint")

        monkeypatch.setattr(RDSResponse, action, fail, raising=False)

    return answer_with
