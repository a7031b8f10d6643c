"""RDS enhanced monitoring and Performance Insights are on (the checklist's "Database
Monitoring" items and its `describe-db-instances --query MonitoringInterval/Insights`)."""

from __future__ import annotations

from typing import Any

from checks import _aws
from checks.base import Check, CheckContext, Result, Status


def evaluate(instance: dict[str, Any]) -> Result:
    interval = int(instance.get("MonitoringInterval") or 0)
    insights = bool(instance.get("PerformanceInsightsEnabled"))
    evidence = {
        **_aws.instance_evidence(instance),
        "monitoring_interval_s": interval,
        "monitoring_role": bool(instance.get("MonitoringRoleArn")),
        "performance_insights": insights,
        "performance_insights_retention_days": instance.get("PerformanceInsightsRetentionPeriod"),
    }
    missing = []
    fixes = []
    if interval <= 0:
        missing.append("enhanced monitoring is off (MonitoringInterval 0)")
        fixes.append(
            "Enable enhanced monitoring (--monitoring-interval 60 with a monitoring role)."
        )
    if not insights:
        missing.append("Performance Insights is off")
        fixes.append("Enable Performance Insights (--enable-performance-insights).")
    name = instance.get("DBInstanceIdentifier", "?")
    if missing:
        return Result(Status.FAIL, f"RDS {name}: " + "; ".join(missing), evidence, " ".join(fixes))
    return Result(
        Status.PASS,
        f"RDS {name} has enhanced monitoring every {interval} s and Performance Insights on",
        evidence,
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
    description=(
        "MonitoringInterval > 0 (enhanced monitoring) and PerformanceInsightsEnabled; FAIL "
        "when either is off."
    ),
)
