"""rds_monitoring against moto's RDS."""

from __future__ import annotations

from typing import Any

from checks import rds_monitoring
from checks.base import Status
from checks.runner import run_one
from tests.support.aws_moto import aws_ctx, create_instance, moto_instance


def test_skipped_without_instance(aws_clean_env: None) -> None:
    assert run_one(rds_monitoring.CHECK, aws_ctx(None)).status is Status.SKIPPED


def test_monitoring_and_insights_on_pass(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    result = run_one(rds_monitoring.CHECK, aws_ctx("db1"))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["monitoring_interval_s"] == 60
    assert result.evidence["performance_insights"] is True


def test_both_off_fail_naming_both(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1", good=False)
    result = run_one(rds_monitoring.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert "enhanced monitoring is off" in result.summary
    assert "Performance Insights is off" in result.summary
    assert "--monitoring-interval" in result.remediation


def test_insights_off_alone_fails(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    moto_instance("db1").performance_insights_enabled = False
    result = run_one(rds_monitoring.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert result.summary.endswith("Performance Insights is off")


def test_missing_performance_insights_field_is_unknown_not_off(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    moto_instance("db1").performance_insights_enabled = None  # moto then leaves it out
    result = run_one(rds_monitoring.CHECK, aws_ctx("db1"))
    assert result.status is Status.UNKNOWN, result.summary
    assert "did not report PerformanceInsightsEnabled" in result.summary
    assert "is off" not in result.summary
    assert result.evidence["performance_insights"] is None
    assert result.observations == 1  # MonitoringInterval was read


def test_missing_field_does_not_hide_a_failure(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1", good=False)
    moto_instance("db1").performance_insights_enabled = None
    result = run_one(rds_monitoring.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert "enhanced monitoring is off" in result.summary
    assert "did not report PerformanceInsightsEnabled" in result.summary


def test_pass_names_the_fields_read(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    result = run_one(rds_monitoring.CHECK, aws_ctx("db1"))
    assert result.observations == 2
    assert "PerformanceInsightsEnabled read" in result.summary
