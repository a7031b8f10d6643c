"""How the rds_* checks talk to AWS: one boto3 session built from the check's settings,
short timeouts, few retries, and AWS errors turned into results a person can act on.

Credentials and region come from ctx.env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION or AWS_DEFAULT_REGION); what ctx.env does not
give, boto3's default chain supplies (shared config files, container or instance role), so
the bot works unchanged on ECS/EC2. PREFLIGHT_AWS_ENDPOINT_URL points the client elsewhere
(tests, a VPC endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.session
from botocore.config import Config

from checks.base import CheckContext, Result, Status, skipped
from checks.redact import Redactor

INSTANCE_SETTING = "PREFLIGHT_RDS_INSTANCE"
SETTINGS = (
    INSTANCE_SETTING,
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "PREFLIGHT_AWS_ENDPOINT_URL",
)

_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthorizationError",
}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "AuthFailure",
}


_LOADER = botocore.loaders.create_loader()


class AwsCheckError(Exception):
    """AWS could not answer the question: carries an ERROR result for the check."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.summary)
        self.result = result


def _error(summary: str, remediation: str, **evidence: Any) -> AwsCheckError:
    return AwsCheckError(Result(Status.ERROR, summary, dict(evidence), remediation))


def region(ctx: CheckContext) -> str | None:
    return ctx.setting("AWS_REGION") or ctx.setting("AWS_DEFAULT_REGION")


def session(ctx: CheckContext) -> boto3.session.Session:
    """A boto3 session from the settings in ctx (the default chain fills the gaps)."""
    if bool(ctx.setting("AWS_ACCESS_KEY_ID")) != bool(ctx.setting("AWS_SECRET_ACCESS_KEY")):
        raise _error(
            "only half of an AWS access key is configured",
            "Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (to use "
            "AWS_PROFILE or the machine's IAM role).",
        )
    kwargs: dict[str, str] = {}
    for setting, name in (
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
        ("AWS_SESSION_TOKEN", "aws_session_token"),
        ("AWS_PROFILE", "profile_name"),
    ):
        value = ctx.setting(setting)
        if value:
            kwargs[name] = value
    reg = region(ctx)
    if reg:
        kwargs["region_name"] = reg
    core = botocore.session.get_session()
    # Loading the RDS service model takes about half a second: load it once per process.
    core.register_component("data_loader", _LOADER)
    try:
        return boto3.session.Session(botocore_session=core, **kwargs)
    except botocore.exceptions.ProfileNotFound as exc:
        raise _error(
            f"AWS profile {exc.kwargs.get('profile', '?')!r} is not configured on this machine",
            "Fix AWS_PROFILE or provide AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
        ) from None


def client_config(ctx: CheckContext) -> Config:
    """Timeouts inside the check's deadline; at most one retry."""
    budget = max(ctx.timeout_s, 2.0)
    return Config(
        connect_timeout=max(1.0, budget * 0.25),
        read_timeout=max(1.0, budget * 0.35),
        retries={"total_max_attempts": 2, "mode": "standard"},
        user_agent_extra="preflight-readiness-check",
    )


def rds_client(ctx: CheckContext) -> Any:
    """An RDS client, or AwsCheckError when credentials or region are missing."""
    sess = session(ctx)
    if sess.get_credentials() is None:
        raise _error(
            "no AWS credentials found for the RDS checks",
            "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run the bot "
            "with an IAM role that allows rds:DescribeDBInstances, rds:DescribeDBParameters "
            "and rds:DescribeCertificates.",
        )
    if not sess.region_name:
        raise _error(
            "no AWS region configured for the RDS checks",
            "Set AWS_REGION (e.g. us-east-1, where tpe-database-production runs).",
        )
    return sess.client(
        "rds",
        endpoint_url=ctx.setting("PREFLIGHT_AWS_ENDPOINT_URL"),
        config=client_config(ctx),
    )


def translate(exc: Exception, ctx: CheckContext, what: str) -> AwsCheckError:
    """An AWS failure as an ERROR with what to fix. Never carries a credential."""
    redactor = Redactor.from_env(ctx.env)
    instance = ctx.setting(INSTANCE_SETTING) or ""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = redactor.text(exc.response.get("Error", {}).get("Message", ""))
        if code in {"DBInstanceNotFound", "DBInstanceNotFoundFault"}:
            return _error(
                f"RDS instance {instance!r} not found in {region(ctx) or 'the configured region'}",
                f"Check {INSTANCE_SETTING} (the DB instance identifier, e.g. "
                "tpe-database-production) and AWS_REGION.",
                aws_error=code,
            )
        if code in _DENIED:
            return _error(
                f"AWS denied {what}: {message or code}",
                "Grant the bot's IAM identity rds:DescribeDBInstances, rds:DescribeDBParameters "
                "and rds:DescribeCertificates (read-only).",
                aws_error=code,
            )
        if code in _BAD_CREDENTIALS:
            return _error(
                f"AWS rejected the credentials ({code}) while {what}",
                "Rotate or fix AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN "
                "for temporary credentials).",
                aws_error=code,
            )
        return _error(
            f"AWS answered {code or 'an error'} while {what}: {message}",
            "Check the AWS settings and retry; see the AWS error code in the evidence.",
            aws_error=code,
        )
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return _error(
            "no usable AWS credentials for the RDS checks",
            "Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or use an "
            "IAM role.",
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return _error("no AWS region configured", "Set AWS_REGION.")
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError,
    ):
        return _error(
            f"could not reach the AWS RDS API while {what}: {type(exc).__name__}",
            "Check this machine's outbound HTTPS access to AWS (proxy, VPC endpoint) and "
            "PREFLIGHT_AWS_ENDPOINT_URL if set.",
        )
    return _error(
        f"AWS call failed while {what}: {type(exc).__name__}: {redactor.text(str(exc))}",
        "Check the AWS settings and retry.",
    )


def call(ctx: CheckContext, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """fn(**kwargs), with any failure turned into AwsCheckError.

    Not only botocore's own errors: an endpoint that does not implement an action (a VPC
    endpoint, an emulator) can answer with a body botocore cannot parse, or an emulator can
    raise; either way that one call could not see, and the caller decides what that hides.
    """
    try:
        return fn(**kwargs)
    except Exception as exc:
        raise translate(exc, ctx, what) from None


def describe_instance(ctx: CheckContext, client: Any, instance_id: str) -> dict[str, Any]:
    answer = call(
        ctx,
        f"describing RDS instance {instance_id}",
        client.describe_db_instances,
        DBInstanceIdentifier=instance_id,
    )
    instances = answer.get("DBInstances") or []
    if not instances:
        raise translate(
            botocore.exceptions.ClientError(
                {"Error": {"Code": "DBInstanceNotFound", "Message": ""}}, "DescribeDBInstances"
            ),
            ctx,
            "describing the instance",
        )
    return dict(instances[0])


InstanceCheck = Callable[[CheckContext, Any, dict[str, Any]], Result]


def run_instance_check(ctx: CheckContext, check: InstanceCheck) -> Result:
    """Skip without PREFLIGHT_RDS_INSTANCE; otherwise describe it and hand it to check."""
    instance_id = ctx.setting(INSTANCE_SETTING)
    if not instance_id:
        return skipped(INSTANCE_SETTING)
    try:
        client = rds_client(ctx)
        instance = describe_instance(ctx, client, instance_id)
        return check(ctx, client, instance)
    except AwsCheckError as exc:
        return exc.result
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        return translate(exc, ctx, f"checking RDS instance {instance_id}").result


def instance_evidence(instance: dict[str, Any]) -> dict[str, Any]:
    """What identifies the instance in every rds_* result."""
    return {
        "instance": instance.get("DBInstanceIdentifier"),
        "engine": instance.get("Engine"),
        "engine_version": instance.get("EngineVersion"),
        "status": instance.get("DBInstanceStatus"),
    }
