"""rds_hardening against moto's RDS, plus botocore's Stubber for what moto lacks
(DescribeCertificates is not implemented by moto 5; default parameter groups are absent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from checks import rds_hardening
from checks.base import Status
from checks.runner import run_one
from tests.support.aws_moto import aws_client, aws_ctx, create_instance, moto_instance


def test_skipped_without_instance(aws_clean_env: None) -> None:
    assert run_one(rds_hardening.CHECK, aws_ctx(None)).status is Status.SKIPPED


def test_hardened_instance_passes(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.PASS, result.summary
    ev = result.evidence
    assert ev["storage_encrypted"] and ev["deletion_protection"] and ev["multi_az"]
    assert ev["publicly_accessible"] is False
    assert ev["force_ssl"]["value"] == "1"
    assert ev["force_ssl"]["parameter"] == "rds.force_ssl"
    assert ev["certificate"]["days_left"] > 90


def test_weak_instance_fails_on_every_point(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1", good=False)
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    for phrase in (
        "storage is not encrypted",
        "deletion protection is off",
        "publicly accessible",
        "Multi-AZ is off",
        "rds.force_ssl is 0",
        "expires in",
    ):
        assert phrase in result.summary
    assert result.evidence["certificate"]["days_left"] < 90


def test_only_multi_az_off_warns(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1", MultiAZ=False)
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.WARN
    assert result.summary.endswith("Multi-AZ is off")


def test_expired_certificate_fails(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    moto_instance("db1").certificate_details = {
        "CAIdentifier": "rds-ca-2019",
        "ValidTill": datetime.now(UTC) - timedelta(days=3),
    }
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert "expired" in result.summary


def _instance(**fields: Any) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": "db1",
        "Engine": "mysql",
        "StorageEncrypted": True,
        "DeletionProtection": True,
        "PubliclyAccessible": False,
        "MultiAZ": True,
        "DBParameterGroups": [{"DBParameterGroupName": "default.mysql8.0"}],
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        **fields,
    }


def test_certificate_from_describe_certificates_and_mysql_parameter(aws_clean_env: None) -> None:
    client = aws_client()
    now = datetime.now(UTC)
    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_parameters",
            {
                "Parameters": [
                    {"ParameterName": "max_connections", "ParameterValue": "100"},
                    {"ParameterName": "require_secure_transport", "ParameterValue": "ON"},
                ]
            },
            {"DBParameterGroupName": "default.mysql8.0"},
        )
        stub.add_response(
            "describe_certificates",
            {
                "Certificates": [
                    {
                        "CertificateIdentifier": "rds-ca-rsa2048-g1",
                        "ValidTill": now + timedelta(days=45),
                    }
                ]
            },
            {"CertificateIdentifier": "rds-ca-rsa2048-g1"},
        )
        result = rds_hardening.check_instance(aws_ctx("db1"), client, _instance(), now=now)
    assert result.status is Status.WARN, result.summary
    assert result.evidence["force_ssl"]["parameter"] == "require_secure_transport"
    assert result.evidence["certificate"]["source"] == "DescribeCertificates"
    assert result.evidence["certificate"]["days_left"] == 45
    assert "expires in 45 days" in result.summary


def test_access_denied_on_certificates_is_unknown(aws_clean_env: None) -> None:
    client = aws_client()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_db_parameters",
            {"Parameters": [{"ParameterName": "rds.force_ssl", "ParameterValue": "1"}]},
        )
        stub.add_client_error("describe_certificates", "AccessDenied", http_status_code=403)
        result = rds_hardening.check_instance(aws_ctx("db1"), client, _instance(Engine="postgres"))
    assert result.status is Status.UNKNOWN
    assert "rds:DescribeCertificates" in result.remediation


def test_unreadable_parameter_group_is_unknown_not_hidden(aws_clean_env: None) -> None:
    client = aws_client()
    now = datetime.now(UTC)
    instance = _instance(
        Engine="postgres",
        StorageEncrypted=False,
        CertificateDetails={
            "CAIdentifier": "rds-ca-rsa2048-g1",
            "ValidTill": now + timedelta(days=400),
        },
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_db_parameters", "DBParameterGroupNotFound", http_status_code=404
        )
        result = rds_hardening.check_instance(aws_ctx("db1"), client, instance, now=now)
    # the unreadable parameter is UNKNOWN; the encryption finding is still reported
    assert result.status is Status.FAIL
    assert "could not read rds.force_ssl" in result.summary
    assert "storage is not encrypted" in result.summary
    assert result.evidence["certificate"]["source"] == "CertificateDetails"


def _no_certificate_details(identifier: str) -> None:
    """As for an instance whose API answer lacks CertificateDetails: the check falls back to
    DescribeCertificates."""
    moto_instance(identifier).certificate_details = None


def test_unsupported_describe_certificates_is_unknown_with_other_findings(aws_rds: Any) -> None:
    # moto does not implement DescribeCertificates: the call fails inside botocore.
    create_instance(aws_rds, "db1", StorageEncrypted=False, MultiAZ=False)
    _no_certificate_details("db1")
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL, result.summary  # not ERROR "failed to run"
    assert "storage is not encrypted" in result.summary
    assert "Multi-AZ is off" in result.summary
    assert "could not read the validity of CA certificate rds-ca-rsa2048-g1" in result.summary
    assert result.evidence["certificate"]["source"] == "DescribeCertificates"
    assert "error" in result.evidence["certificate"]
    assert result.evidence["force_ssl"]["value"] == "1"


# Common AWS errors (InvalidAction, InternalFailure) are not in RDS's own error model; moto
# serialises them anyway and says so.
_GENERIC_AWS_ERROR = pytest.mark.filterwarnings("ignore:Exception\\(RDSClientError\\):UserWarning")


@_GENERIC_AWS_ERROR
def test_describe_certificates_answered_with_an_error_is_unknown(
    aws_rds: Any, aws_action_error
) -> None:
    aws_action_error("describe_certificates", "InvalidAction")
    create_instance(aws_rds, "db1")
    _no_certificate_details("db1")
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.UNKNOWN, result.summary
    assert "could not read the validity of CA certificate" in result.summary
    assert "InvalidAction" in result.summary
    assert "rds:DescribeCertificates" in result.remediation
    # everything else was judged and is in the evidence
    assert result.evidence["storage_encrypted"] is True
    assert result.evidence["force_ssl"]["value"] == "1"
    assert result.observations == 6


@_GENERIC_AWS_ERROR
def test_unsupported_parameter_call_is_unknown_with_other_findings(
    aws_rds: Any, aws_action_error
) -> None:
    aws_action_error("describe_db_parameters", "InternalFailure")
    create_instance(aws_rds, "db1", DeletionProtection=False)
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert "deletion protection is off" in result.summary
    assert "could not read rds.force_ssl" in result.summary


def test_pass_names_the_settings_read(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    result = run_one(rds_hardening.CHECK, aws_ctx("db1"))
    assert result.status is Status.PASS
    assert result.observations == 6
    assert "(6 settings read)" in result.summary
