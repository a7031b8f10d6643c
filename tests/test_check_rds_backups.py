"""rds_backups against moto's RDS (tests/support/aws_moto.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from checks import rds_backups
from checks.base import Status
from checks.runner import run_one
from tests.support.aws_moto import AWS_SECRET, aws_ctx, create_instance
from tests.support.pg import result_text


def test_skipped_without_instance(aws_clean_env: None) -> None:
    result = run_one(rds_backups.CHECK, aws_ctx(None))
    assert result.status is Status.SKIPPED
    assert "PREFLIGHT_RDS_INSTANCE" in result.summary


def test_thirty_days_and_fresh_restore_point_pass(aws_rds: Any) -> None:
    create_instance(aws_rds, "tpe-database-production")
    result = run_one(rds_backups.CHECK, aws_ctx("tpe-database-production"))
    assert result.status is Status.PASS, result.summary
    assert result.evidence["backup_retention_days"] == 30
    assert result.evidence["backup_window"] == "13:14-13:44"
    assert result.evidence["restore_lag_minutes"] <= 5
    assert "tpe-database-production" in result.summary


@pytest.mark.parametrize(
    ("days", "status"),
    [
        (35, Status.PASS),
        (30, Status.PASS),
        (29, Status.WARN),
        (7, Status.WARN),
        (6, Status.FAIL),
        (1, Status.FAIL),
        (0, Status.FAIL),
    ],
)
def test_retention_thresholds(aws_rds: Any, days: int, status: Status) -> None:
    create_instance(aws_rds, "db1", BackupRetentionPeriod=days)
    result = run_one(rds_backups.CHECK, aws_ctx("db1"))
    assert result.status is status, result.summary
    assert result.evidence["backup_retention_days"] == days


def test_disabled_backups_say_so(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1", good=False)
    result = run_one(rds_backups.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert "disabled" in result.summary
    assert "--backup-retention-period" in result.remediation


def test_restore_point_older_than_rpo_fails(aws_rds: Any, aws_restore_lag: Any) -> None:
    create_instance(aws_rds, "db1")
    aws_restore_lag(timedelta(minutes=20))
    result = run_one(rds_backups.CHECK, aws_ctx("db1"))
    assert result.status is Status.FAIL
    assert result.evidence["restore_lag_minutes"] >= 19.9
    assert "RPO 5 min" in result.summary


def test_targets_come_from_the_checklist(aws_rds: Any, aws_restore_lag: Any) -> None:
    from dataclasses import replace

    from bot.model import Targets

    create_instance(aws_rds, "db1", BackupRetentionPeriod=14)
    aws_restore_lag(timedelta(minutes=20))
    ctx = replace(aws_ctx("db1"), targets=Targets(rpo_minutes=30, backup_retention_days=14))
    result = run_one(rds_backups.CHECK, ctx)
    assert result.status is Status.PASS, result.summary
    assert result.evidence["retention_target_days"] == 14


def test_unknown_instance_is_error(aws_rds: Any) -> None:
    result = run_one(rds_backups.CHECK, aws_ctx("no-such-db"))
    assert result.status is Status.ERROR
    assert "no-such-db" in result.summary and "not found" in result.summary
    assert "PREFLIGHT_RDS_INSTANCE" in result.remediation
    assert AWS_SECRET not in result_text(result)


def test_pass_names_the_fields_read(aws_rds: Any) -> None:
    create_instance(aws_rds, "db1")
    result = run_one(rds_backups.CHECK, aws_ctx("db1"))
    assert result.status is Status.PASS
    assert result.observations == 3
    assert "latest restorable time read" in result.summary


def test_unreported_retention_is_unknown_not_disabled() -> None:
    # An answer without BackupRetentionPeriod (a restricted view, an emulator): not "0 days".
    instance = {
        "DBInstanceIdentifier": "db1",
        "PreferredBackupWindow": "03:00-03:30",
    }
    result = rds_backups.evaluate(instance, aws_ctx("db1"))
    assert result.status is Status.UNKNOWN
    assert "did not report BackupRetentionPeriod" in result.summary
    assert "disabled" not in result.summary
