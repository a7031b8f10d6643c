"""env_config: the checklist's .env.production variables are set, with real values."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from bot.checklist import parse_checklist
from checks import env_config
from checks.base import CheckContext, Result, Status
from checks.runner import run_one
from tests.support.pg import result_text

BUNDLED_CHECKLIST = Path(__file__).parent.parent / "bot" / "content" / "checklist.md"
JWT = "not-a-real-jwt-secret-" + "0123456789abcdef" * 3  # 70 characters, fake
GOOD = {
    "NODE_ENV": "production",
    "PORT": "5000",
    "DB_HOST": "db.example.test",
    "DB_USER": "tpeadmin",
    "DB_PASSWORD": "not-a-real-password-123",
    "DB_NAME": "tpedb",
    "DB_PORT": "5432",
    "DB_SSL": "true",
    "JWT_SECRET": JWT,
    "JWT_EXPIRE": "7d",
    "TPX_N8N_API_KEY": "not-a-real-n8n-key",
    "FRONTEND_URL": "https://tpx.power100.io",
    "ADMIN_DASHBOARD_URL": "https://tpx.power100.io/admindashboard",
    "SENDGRID_API_KEY": "SG.not-a-real-key",
    "EMAIL_FROM": "noreply@power100.io",
    "TWILIO_ACCOUNT_SID": "ACnotreal",
    "TWILIO_AUTH_TOKEN": "not-a-real-twilio-token",
    "TWILIO_PHONE_NUMBER": "+15550100",
    "SENTRY_DSN": "https://0123456789abcdef@o1.ingest.sentry.io/1",
    "LOG_LEVEL": "info",
    "REDIS_HOST": "redis.example.test",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "not-a-real-redis-password",
    "NEXT_PUBLIC_API_URL": "https://tpx.power100.io/api",
    "NEXT_PUBLIC_ENVIRONMENT": "production",
}


def check(env: dict[str, str], **kwargs: Any) -> Result:
    return run_one(env_config.CHECK, CheckContext(env=env, **kwargs))


def test_everything_set_passes() -> None:
    result = check(GOOD)
    assert result.status is Status.PASS, result.summary
    assert result.evidence["checked"] == 25


def test_defaults_match_the_bundled_checklist() -> None:
    checklist = parse_checklist(BUNDLED_CHECKLIST.read_text())
    assert checklist.env_templates == env_config.DEFAULT_TEMPLATES


def test_missing_and_placeholders_fail_naming_them() -> None:
    env = {
        **GOOD,
        "SENDGRID_API_KEY": "[TO_BE_CONFIGURED]",
        "DB_PASSWORD": "[SECURE_IN_AWS_SECRETS_MANAGER]",
        "TWILIO_AUTH_TOKEN": "YOUR_TWILIO_TOKEN",
        "EMAIL_FROM": "  ",
    }
    del env["SENTRY_DSN"]
    result = check(env)
    assert result.status is Status.FAIL
    ev = result.evidence
    assert ev["missing"] == ["EMAIL_FROM", "SENTRY_DSN"]
    assert ev["placeholders"] == ["DB_PASSWORD", "SENDGRID_API_KEY", "TWILIO_AUTH_TOKEN"]
    assert "2 unset: EMAIL_FROM, SENTRY_DSN" in result.summary
    text = result_text(result)
    for value in ("not-a-real-password-123", JWT, "not-a-real-redis-password", "SG.not"):
        assert value not in text


def test_optional_redis_unset_warns() -> None:
    env = {k: v for k, v in GOOD.items() if not k.startswith("REDIS_")}
    env["REDIS_PASSWORD"] = "[TO_BE_CONFIGURED]"
    result = check(env)
    assert result.status is Status.WARN
    assert result.evidence["optional_unset"] == ["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"]
    assert "PREFLIGHT_ENV_UNUSED" in result.remediation
    # recorded as not used: no longer checked at all
    assert check({**env, "PREFLIGHT_ENV_UNUSED": "REDIS_*"}).status is Status.PASS


def test_optional_list_is_configurable() -> None:
    env = {k: v for k, v in GOOD.items() if k != "TWILIO_PHONE_NUMBER"}
    assert check(env).status is Status.FAIL
    relaxed = check({**env, "PREFLIGHT_ENV_OPTIONAL": "REDIS_*, TWILIO_*"})
    assert relaxed.status is Status.WARN


def test_node_env_must_be_production() -> None:
    result = check({**GOOD, "NODE_ENV": "development"})
    assert result.status is Status.FAIL
    assert "NODE_ENV is not production" in result.summary


def test_short_jwt_secret_fails() -> None:
    result = check({**GOOD, "JWT_SECRET": "short-fake-secret"})
    assert result.status is Status.FAIL
    assert "shorter than 64" in result.summary
    assert "short-fake-secret" not in result_text(result)


def test_dev_jwt_secret_fails() -> None:
    digest = hashlib.sha256(JWT.encode()).hexdigest()
    result = check({**GOOD, "PREFLIGHT_DEV_JWT_SECRET_SHA256": digest.upper()})
    assert result.status is Status.FAIL
    assert "development secret" in result.summary
    other = hashlib.sha256(b"dev").hexdigest()
    assert check({**GOOD, "PREFLIGHT_DEV_JWT_SECRET_SHA256": other}).status is Status.PASS


def test_templates_from_the_loaded_checklist() -> None:
    templates = {"backend": ("NODE_ENV", "API_BASE"), "frontend": ("NEXT_PUBLIC_API_URL",)}
    result = check({"NODE_ENV": "production", "NEXT_PUBLIC_API_URL": "x"}, env_templates=templates)
    assert result.status is Status.FAIL
    assert result.evidence["missing"] == ["API_BASE"]
    assert result.evidence["checked"] == 3


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("[TO_BE_CONFIGURED]", True),
        ("[PRODUCTION_API_KEY]", True),
        ('"[SECURE]"', True),
        ("<set me>", True),
        ("YOUR_API_KEY", True),
        ("", True),
        (None, True),
        ("production", False),
        ("a[b]c", False),
    ],
)
def test_placeholders(value: str | None, placeholder: bool) -> None:
    assert env_config.is_placeholder(value) is placeholder


# --- placeholders people really leave, and weak JWT secrets (issue 10) ----------------------


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "CHANGE_ME",
        "your-secret-here",
        "your_api_key_here",
        "put-the-key-here",
        "xxx",
        "XXXXXXXX",
        "***",
        "...",
        "password",
        "secret",
        "TODO",
        "example",
        "test",
        "dummy",
        "placeholder",
        "undefined",
        "{{ sendgrid_api_key }}",
        "'changeme'",
    ],
)
def test_common_placeholders_are_not_values(value: str) -> None:
    assert env_config.is_placeholder(value)
    # EMAIL_FROM: the runner's redactor masks the values of secret-named variables wherever
    # they appear, and "placeholder" is also a word of this check's own evidence.
    result = check({**GOOD, "EMAIL_FROM": value})
    assert result.status is Status.FAIL
    assert result.evidence["placeholders"] == ["EMAIL_FROM"]
    assert "EMAIL_FROM" in result.summary


@pytest.mark.parametrize(
    "value", ["info", "true", "7d", "5000", "tpedb", "https://tpx.power100.io", "noreply@x.io"]
)
def test_real_values_are_not_placeholders(value: str) -> None:
    assert not env_config.is_placeholder(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("secret" * 11, "one short string repeated"),
        ("a" * 64, "0.0 bits of entropy"),
        ("0123456789abcdef" * 4, "one short string repeated"),
        ("ab" * 40, "only 2 different characters"),
        ("secret" * 10 + "sec", "bits of entropy per character"),
    ],
)
def test_long_but_weak_jwt_secrets_fail(value: str, reason: str) -> None:
    assert len(value) >= 63
    result = check({**GOOD, "JWT_SECRET": value})
    assert result.status is Status.FAIL, result.summary
    assert "JWT_SECRET is weak" in result.summary and reason in result.summary
    assert value not in result_text(result)
    assert result.evidence["jwt_secret"]["random_looking"] is False


def test_a_random_hex_jwt_secret_is_strong() -> None:
    value = hashlib.sha256(b"preflight-test-not-a-real-secret").hexdigest()  # 64 hex digits
    result = check({**GOOD, "JWT_SECRET": value})
    assert result.status is Status.PASS, result.summary
    assert result.evidence["jwt_secret"]["entropy_bits_per_char"] >= 3.0
    assert value not in result_text(result)


def test_pass_names_how_many_variables_it_checked() -> None:
    result = check(GOOD)
    assert result.status is Status.PASS
    assert result.observations == 25
    assert "all 25 template variables are set" in result.summary
