"""RDS instance hardening: encrypted storage, deletion protection, no public endpoint,
Multi-AZ, SSL forced by the parameter group, and a CA certificate that is not about to expire.

SSL is forced by `rds.force_ssl = 1` (PostgreSQL, SQL Server) or `require_secure_transport =
1/ON` (MySQL, MariaDB) in the instance's DB parameter group. The certificate's end of
validity comes from the instance's CertificateDetails.ValidTill when RDS reports it,
otherwise from DescribeCertificates for its CACertificateIdentifier. Multi-AZ off is a WARN
(a cost decision); the rest FAIL. A parameter group or certificate that cannot be read makes
its finding UNKNOWN without hiding the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks import _aws
from checks.base import Check, CheckContext, Finding, Result, Status, from_findings

CERT_WARN_DAYS = 90
_MAX_PARAMETER_PAGES = 20  # a parameter group has a few hundred parameters, 100 per page


def ssl_parameter(engine: str) -> str:
    """The parameter that forces SSL for an RDS engine."""
    return (
        "require_secure_transport" if "mysql" in engine or "mariadb" in engine else "rds.force_ssl"
    )


def _parameter_value(ctx: CheckContext, client: Any, group: str, name: str) -> str | None:
    paginator = client.get_paginator("describe_db_parameters")
    pages = paginator.paginate(
        DBParameterGroupName=group, PaginationConfig={"MaxItems": 100 * _MAX_PARAMETER_PAGES}
    )
    try:
        for page in pages:
            for parameter in page.get("Parameters", ()):
                if parameter.get("ParameterName") == name:
                    value = parameter.get("ParameterValue")
                    return None if value is None else str(value)
    except Exception as exc:  # any failure of this one call: UNKNOWN for the SSL finding
        raise _aws.translate(exc, ctx, f"reading parameter group {group}") from None
    return None


def _force_ssl(
    ctx: CheckContext, client: Any, instance: dict[str, Any]
) -> tuple[dict[str, Any], Finding | None]:
    groups = instance.get("DBParameterGroups") or []
    name = ssl_parameter(str(instance.get("Engine", "")))
    if not groups:
        return {"parameter": name}, (
            Status.UNKNOWN,
            "the instance reports no DB parameter group",
            "Attach a custom DB parameter group with the SSL parameter set.",
        )
    group = groups[0].get("DBParameterGroupName", "")
    info: dict[str, Any] = {
        "parameter_group": group,
        "parameter": name,
        "apply_status": groups[0].get("ParameterApplyStatus"),
    }
    try:
        value = _parameter_value(ctx, client, group, name)
    except _aws.AwsCheckError as exc:
        info["error"] = exc.result.summary
        return info, (
            Status.UNKNOWN,
            f"could not read {name} from parameter group {group}",
            exc.result.remediation,
        )
    info["value"] = value
    if value is not None and value.strip().lower() in {"1", "on", "true"}:
        return info, None
    return info, (
        Status.FAIL,
        f"{name} is {value if value is not None else 'not set'} in parameter group {group}",
        f"Set {name} = 1 in a custom DB parameter group attached to the instance (the default "
        "groups cannot be changed), then check that the apps connect with SSL.",
    )


def _certificate(
    ctx: CheckContext, client: Any, instance: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], Finding | None]:
    ca_id = instance.get("CACertificateIdentifier")
    details = instance.get("CertificateDetails") or {}
    valid_till = details.get("ValidTill")
    info: dict[str, Any] = {"ca_certificate": ca_id, "source": "CertificateDetails"}
    if not isinstance(valid_till, datetime) and ca_id:
        info["source"] = "DescribeCertificates"
        try:
            answer = _aws.call(
                ctx,
                f"describing certificate {ca_id}",
                client.describe_certificates,
                CertificateIdentifier=ca_id,
            )
            certificates = answer.get("Certificates") or []
            valid_till = certificates[0].get("ValidTill") if certificates else None
        except _aws.AwsCheckError as exc:
            info["error"] = exc.result.summary
            return info, (
                Status.UNKNOWN,
                f"could not read the validity of CA certificate {ca_id} "
                f"(DescribeCertificates failed: {exc.result.summary})",
                "Check the certificate's validity in the RDS console (Certificate authority) "
                "or allow rds:DescribeCertificates. " + exc.result.remediation,
            )
    if not isinstance(valid_till, datetime):
        return info, (
            Status.UNKNOWN,
            "RDS reports no certificate validity",
            "Check the instance's certificate authority in the RDS console.",
        )
    days = (valid_till - now).days
    info.update(valid_till=valid_till.isoformat(), days_left=days)
    rotate = (
        "Rotate the instance to a current CA (e.g. rds-ca-rsa2048-g1) with modify-db-instance "
        "--ca-certificate-identifier, and update the app's CA bundle."
    )
    if days <= 0:
        return info, (
            Status.FAIL,
            f"the certificate ({ca_id}) expired {valid_till:%Y-%m-%d}",
            rotate,
        )
    if days <= CERT_WARN_DAYS:
        return info, (
            Status.WARN,
            f"the certificate ({ca_id}) expires in {days} days ({valid_till:%Y-%m-%d})",
            rotate,
        )
    return info, None


def check_instance(
    ctx: CheckContext, client: Any, instance: dict[str, Any], now: datetime | None = None
) -> Result:
    now = now or datetime.now(UTC)
    encrypted = bool(instance.get("StorageEncrypted"))
    protected = bool(instance.get("DeletionProtection"))
    public = bool(instance.get("PubliclyAccessible"))
    multi_az = bool(instance.get("MultiAZ"))
    ssl_info, ssl_finding = _force_ssl(ctx, client, instance)
    cert_info, cert_finding = _certificate(ctx, client, instance, now)
    evidence = {
        **_aws.instance_evidence(instance),
        "storage_encrypted": encrypted,
        "deletion_protection": protected,
        "publicly_accessible": public,
        "multi_az": multi_az,
        "force_ssl": ssl_info,
        "certificate": cert_info,
    }
    findings: list[Finding] = []
    if not encrypted:
        findings.append(
            (
                Status.FAIL,
                "storage is not encrypted",
                "Encryption cannot be switched on in place: restore an encrypted copy of a "
                "snapshot (copy-db-snapshot --kms-key-id) and switch over.",
            )
        )
    if not protected:
        findings.append(
            (
                Status.FAIL,
                "deletion protection is off",
                "Turn on deletion protection (modify-db-instance --deletion-protection).",
            )
        )
    if public:
        findings.append(
            (
                Status.FAIL,
                "the instance is publicly accessible",
                "Set PubliclyAccessible to false and reach it from the VPC only.",
            )
        )
    if not multi_az:
        findings.append(
            (
                Status.WARN,
                "Multi-AZ is off",
                "Enable Multi-AZ for automatic failover (modify-db-instance --multi-az).",
            )
        )
    findings += [f for f in (ssl_finding, cert_finding) if f]
    name = instance.get("DBInstanceIdentifier", "?")
    judged = 6  # encryption, deletion protection, public access, Multi-AZ, SSL, certificate
    if not findings:
        return Result(
            Status.PASS,
            f"RDS {name} is encrypted, deletion-protected, private, Multi-AZ, forces SSL, and "
            f"its certificate is valid for {cert_info.get('days_left')} more days "
            f"({judged} settings read)",
            evidence,
            observations=judged,
        )
    return from_findings(f"RDS {name}", findings, evidence, observations=judged)


def run(ctx: CheckContext) -> Result:
    return _aws.run_instance_check(ctx, check_instance)


CHECK = Check(
    id="rds_hardening",
    title="RDS instance hardening",
    section="Security Requirements",
    run=run,
    settings=_aws.SETTINGS,
    severity="high",
    blocking=True,
    timeout_s=20.0,
    max_age_s=6 * 3600,
    description=(
        "The RDS instance is encrypted, protected, private, Multi-AZ, forces SSL, and its "
        "certificate is current"
    ),
    criteria=(
        "FAIL: storage not encrypted, deletion protection off, publicly accessible, "
        "`rds.force_ssl` (MySQL/MariaDB: `require_secure_transport`) not 1 in the parameter "
        "group, certificate expired. WARN: Multi-AZ off, certificate valid "
        f"{CERT_WARN_DAYS} days or less (`CertificateDetails.ValidTill`, else "
        "DescribeCertificates). UNKNOWN: the parameter group or the certificate could not be "
        "read (denied, an action the endpoint does not support, any failure of that one call), "
        "with every other finding still reported. ERROR only when the instance itself cannot "
        "be described. PASS names the 6 settings read"
    ),
    anchor="AWS Security Hub RDS controls",
)
