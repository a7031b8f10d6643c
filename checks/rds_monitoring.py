"""RDS enhanced monitoring and Performance Insights are on (the checklist's "Database
Monitoring" items and its `describe-db-instances --query MonitoringInterval/Insights`)."""

from __future__ import annotations

from typing import Any

from checks import _aws
from checks.base import Check, CheckContext, Finding, Result, Status, from_findings


def evaluate(instance: dict[str, Any]) -> Result:
    # A field RDS did not report is unknown, not "off": an older API, an emulator or a
    # restricted view can leave it out.
    interval_seen = instance.get("MonitoringInterval")
    insights_seen = instance.get("PerformanceInsightsEnabled")
    interval = int(interval_seen or 0)
    evidence = {
        **_aws.instance_evidence(instance),
        "monitoring_interval_s": interval_seen,
        "monitoring_role": bool(instance.get("MonitoringRoleArn")),
        "performance_insights": insights_seen,
        "performance_insights_retention_days": instance.get("PerformanceInsightsRetentionPeriod"),
    }
    findings: list[Finding] = []
    if interval_seen is None:
        findings.append(
            (
                Status.UNKNOWN,
                "RDS did not report MonitoringInterval, so enhanced monitoring is unknown",
                "Check Enhanced monitoring in the RDS console.",
            )
        )
    elif interval <= 0:
        findings.append(
            (
                Status.FAIL,
                "enhanced monitoring is off (MonitoringInterval 0)",
                "Enable enhanced monitoring (--monitoring-interval 60 with a monitoring role).",
            )
        )
    if insights_seen is None:
        findings.append(
            (
                Status.UNKNOWN,
                "RDS did not report PerformanceInsightsEnabled, so Performance Insights is unknown",
                "Check Performance Insights in the RDS console.",
            )
        )
    elif not insights_seen:
        findings.append(
            (
                Status.FAIL,
                "Performance Insights is off",
                "Enable Performance Insights (--enable-performance-insights).",
            )
        )
    name = instance.get("DBInstanceIdentifier", "?")
    seen = (interval_seen is not None) + (insights_seen is not None)
    if findings:
        return from_findings(f"RDS {name}", findings, evidence, observations=seen)
    return Result(
        Status.PASS,
        f"RDS {name} has enhanced monitoring every {interval} s and Performance Insights on "
        "(MonitoringInterval and PerformanceInsightsEnabled read)",
        evidence,
        observations=seen,
    )


def check_instance(ctx: CheckContext, client: Any, instance: dict[str, Any]) -> Result:
    return evaluate(instance)


def run(ctx: CheckContext) -> Result:
    return _aws.run_instance_check(ctx, check_instance)


CHECK = Check(
    id="rds_monitoring",
    title="RDS enhanced monitoring and Performance Insights",
    section="Monitoring & Logging",
    run=run,
    settings=_aws.SETTINGS,
    severity="medium",
    blocking=False,
    timeout_s=15.0,
    max_age_s=6 * 3600,
    description="RDS enhanced monitoring and Performance Insights are on",
    criteria=(
        "FAIL when `MonitoringInterval` is 0 or `PerformanceInsightsEnabled` is false (both "
        "named); UNKNOWN when RDS does not report the field (never taken as off). PASS names "
        "both fields read"
    ),
    anchor="AWS Security Hub RDS controls",
)
