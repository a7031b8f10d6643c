"""RDS automated backups: retention, a backup window, and point-in-time recovery within RPO.

Retention: at least the checklist's target (30 days) PASS, 7 days up to the target WARN,
below 7 FAIL (0 = automated backups disabled). LatestRestorableTime (how far point-in-time
recovery reaches) must be no older than the RPO (5 minutes); RDS ships transaction logs
every five minutes, so a healthy instance sits just inside that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks import _aws
from checks.base import Check, CheckContext, Finding, Result, Status, from_findings

DEFAULT_RETENTION_DAYS = 30
MIN_RETENTION_DAYS = 7
DEFAULT_RPO_MINUTES = 5


def _target(ctx: CheckContext, name: str, default: int) -> int:
    value = getattr(ctx.targets, name, None) if ctx.targets is not None else None
    return int(value) if value is not None else default


def evaluate(instance: dict[str, Any], ctx: CheckContext, now: datetime | None = None) -> Result:
    """The verdict for one DescribeDBInstances entry."""
    now = now or datetime.now(UTC)
    want_days = _target(ctx, "backup_retention_days", DEFAULT_RETENTION_DAYS)
    rpo_minutes = _target(ctx, "rpo_minutes", DEFAULT_RPO_MINUTES)
    retention = int(instance.get("BackupRetentionPeriod") or 0)
    window = instance.get("PreferredBackupWindow") or ""
    restorable = instance.get("LatestRestorableTime")
    lag_minutes = None
    if isinstance(restorable, datetime):
        lag_minutes = round((now - restorable).total_seconds() / 60, 1)
    evidence = {
        **_aws.instance_evidence(instance),
        "backup_retention_days": retention,
        "retention_target_days": want_days,
        "backup_window": window or None,
        "latest_restorable_time": restorable.isoformat()
        if isinstance(restorable, datetime)
        else None,
        "restore_lag_minutes": lag_minutes,
        "rpo_minutes": rpo_minutes,
    }
    findings: list[Finding] = []
    if instance.get("BackupRetentionPeriod") is None:
        # Not reported is not "disabled": say what could not be seen.
        findings.append(
            (
                Status.UNKNOWN,
                "RDS did not report BackupRetentionPeriod",
                "Check automated backups in the RDS console.",
            )
        )
    elif retention == 0:
        findings.append(
            (
                Status.FAIL,
                "automated backups are disabled (retention 0 days)",
                f"Enable automated backups with a {want_days}-day retention period "
                "(modify-db-instance --backup-retention-period).",
            )
        )
    elif retention < MIN_RETENTION_DAYS:
        findings.append(
            (
                Status.FAIL,
                f"backups are kept only {retention} days",
                f"Raise the backup retention period to {want_days} days.",
            )
        )
    elif retention < want_days:
        findings.append(
            (
                Status.WARN,
                f"backups are kept {retention} days, under the {want_days} recommended",
                f"Raise the backup retention period to {want_days} days.",
            )
        )
    if retention and not window:
        findings.append(
            (
                Status.WARN,
                "no backup window is set",
                "Set PreferredBackupWindow to off-peak hours (UTC).",
            )
        )
    if retention:
        if lag_minutes is None:
            findings.append(
                (
                    Status.UNKNOWN,
                    "RDS reports no latest restorable time yet",
                    "Wait for the first automated backup to complete, then re-run.",
                )
            )
        elif lag_minutes > rpo_minutes:
            findings.append(
                (
                    Status.FAIL,
                    f"point-in-time recovery reaches only {lag_minutes:g} minutes back "
                    f"(RPO {rpo_minutes} min)",
                    "Check the instance's status and its transaction-log backups in the RDS "
                    "console/events; an RPO breach means recent writes could be lost.",
                )
            )
    name = instance.get("DBInstanceIdentifier", "?")
    if not findings:
        return Result(
            Status.PASS,
            f"RDS {name} keeps backups {retention} days (window {window}) and can restore to "
            f"{lag_minutes:g} minutes ago, within the {rpo_minutes}-minute RPO (retention, "
            "window and latest restorable time read)",
            evidence,
            observations=3,
        )
    seen = sum(
        instance.get(k) is not None
        for k in ("BackupRetentionPeriod", "PreferredBackupWindow", "LatestRestorableTime")
    )
    return from_findings(f"RDS {name}", findings, evidence, observations=seen)


def check_instance(ctx: CheckContext, client: Any, instance: dict[str, Any]) -> Result:
    return evaluate(instance, ctx)


def run(ctx: CheckContext) -> Result:
    return _aws.run_instance_check(ctx, check_instance)


CHECK = Check(
    id="rds_backups",
    title="RDS automated backups and point-in-time recovery",
    section="Backup & Disaster Recovery",
    run=run,
    settings=_aws.SETTINGS,
    severity="critical",
    blocking=True,
    timeout_s=15.0,
    max_age_s=3600,
    description="RDS automated backups and point-in-time recovery",
    criteria=(
        "`BackupRetentionPeriod` >= 30 days (the checklist's target) PASS, 7-29 WARN, below 7 "
        "or 0 (disabled) FAIL, not reported UNKNOWN; no backup window WARN; "
        "`LatestRestorableTime` older than the RPO (5 min) FAIL, absent UNKNOWN. PASS names "
        "the three fields read"
    ),
    anchor="AWS Security Hub RDS controls",
)
