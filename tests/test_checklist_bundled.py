"""The bundled Phase 4 checklist imports into the counts, ids and decisions the bot relies on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.checklist import find_decision, find_option, load_bundled, parse_checklist
from bot.model import Checklist, Decision, ItemKind

SEED = Path(__file__).resolve().parents[1] / "bot" / "content" / "checklist.md"

SECTIONS = (
    "PHASE 3 COMPLETION VERIFICATION",
    "PRODUCTION INFRASTRUCTURE READINESS",
    "ENVIRONMENT CONFIGURATION",
    "SECURITY REQUIREMENTS",
    "MONITORING & LOGGING",
    "BACKUP & DISASTER RECOVERY",
    "INTEGRATION SERVICES",
    "DEPLOYMENT STRATEGY",
    "PERFORMANCE REQUIREMENTS",
    "TESTING REQUIREMENTS",
    "COMPLIANCE & DOCUMENTATION",
    "TEAM READINESS",
    "FINAL CHECKLIST",
    "STAGING ENVIRONMENT",
)


@pytest.fixture(scope="module")
def checklist() -> Checklist:
    return load_bundled()


def decision(checklist: Checklist, decision_id: str) -> Decision:
    return next(d for d in checklist.decisions if d.id == decision_id)


def test_bundled_is_the_seed_file(checklist: Checklist) -> None:
    assert parse_checklist(SEED.read_text("utf-8")) == checklist
    assert checklist.title == "PHASE 4 - Production & Scaling"
    assert len(checklist.source_sha256) == 64


def test_item_and_section_counts(checklist: Checklist) -> None:
    assert len(checklist.items) == 223
    assert sum(1 for i in checklist.items if i.parent_id is None) == 217
    assert checklist.sections == SECTIONS
    assert {i.section for i in checklist.items} == set(SECTIONS)
    assert len({i.id for i in checklist.items}) == 223


def test_nested_items_have_parents(checklist: Checklist) -> None:
    nested = [i for i in checklist.items if i.parent_id]
    assert Counter(i.parent_id for i in nested) == {
        "domain-dns/dns-records-configured": 3,
        "load-testing/expected-traffic-volume-defined": 3,
    }
    assert [i.text for i in nested[3:]] == [
        "Concurrent users (estimated)",
        "Requests per second (estimated)",
        "Peak traffic hours identified",
    ]


@pytest.mark.parametrize(
    ("item_id", "path"),
    [
        (
            "domain-dns/ssl-certificate-obtained",
            ("PRODUCTION INFRASTRUCTURE READINESS", "AWS Account & Resources", "Domain & DNS"),
        ),
        (
            "ssl-tls-certificates/ssl-certificate-obtained-for-tpx-power100-io",
            ("SECURITY REQUIREMENTS", "SSL/TLS Certificates"),
        ),
        ("phase-3-status/all-tests-passing", ("PHASE 3 COMPLETION VERIFICATION", "Phase 3 Status")),
        ("automated-tests/all-tests-passing", ("TESTING REQUIREMENTS", "Automated Tests")),
        (
            "documentation/readme-md-updated-for-production",
            ("COMPLIANCE & DOCUMENTATION", "Documentation"),
        ),
        (
            "database-aws-rds/production-database-already-deployed",
            (
                "PRODUCTION INFRASTRUCTURE READINESS",
                "AWS Account & Resources",
                "Database (AWS RDS)",
            ),
        ),
    ],
)
def test_item_ids_and_paths(checklist: Checklist, item_id: str, path: tuple[str, ...]) -> None:
    item = checklist.item(item_id)
    assert item is not None
    assert item.path == path
    assert item.section == path[0]
    assert item.subsection == path[-1]


def test_ids_are_slugs_no_longer_than_the_limit(checklist: Checklist) -> None:
    for item in checklist.items:
        head, _, body = item.id.partition("/")
        assert 0 < len(head) <= 48 and 0 < len(body) <= 48, item.id
        assert not body.endswith("-")


def test_decision_options_are_not_items(checklist: Checklist) -> None:
    texts = {i.text for i in checklist.items}
    assert "EC2 instances" not in texts
    assert "None (start simple)" not in texts
    assert all(i.section != "DECISION TRACKING" for i in checklist.items)


def test_details_are_not_items(checklist: Checklist) -> None:
    item = checklist.item("database-aws-rds/production-database-already-deployed")
    assert item is not None
    assert item.details == (
        "Host: `tpe-database-production.cmtcsi0kytrf.us-east-1.rds.amazonaws.com`",
        "Database: `tpedb`",
        "User: `tpeadmin`",
        "Password: kept in the secrets manager, read from `DB_PASSWORD`",
    )
    assert item.claimed and not item.checked


def test_claims(checklist: Checklist) -> None:
    claimed = [i for i in checklist.items if i.claimed]
    assert len(claimed) == 4
    assert all("✅" in i.text for i in claimed)
    assert not any(i.checked for i in checklist.items)


def test_kinds(checklist: Checklist) -> None:
    kinds = Counter(i.kind for i in checklist.items)
    assert kinds == {ItemKind.MANUAL: 214, ItemKind.DECISION: 9}


@pytest.mark.parametrize(
    ("item_id", "condition"),
    [
        ("docker-configuration-if-using-docker/dockerfile-created-for-backend", "if using Docker"),
        (
            "docker-configuration-if-using-docker/container-health-checks-configured",
            "if using Docker",
        ),
        ("ec2-or-ecs-instances/instance-type-selected-if-ec2", "if EC2"),
        ("domain-dns/a-record-for-api-tpx-power100-io-backend", "optional"),
        ("legal-compliance/gdpr-compliance-verified-if-applicable", "if applicable"),
        ("domain-dns/ssl-certificate-obtained", None),
    ],
)
def test_conditions(checklist: Checklist, item_id: str, condition: str | None) -> None:
    item = checklist.item(item_id)
    assert item is not None
    assert item.condition == condition


DECISIONS = {
    "deployment-platform": (
        "Deployment Platform",
        ["EC2 instances", "ECS containers", "Serverless (Lambda)"],
    ),
    "secrets-management": (
        "Secrets Management",
        ["AWS Secrets Manager", "HashiCorp Vault", "Environment Variables only"],
    ),
    "error-tracking": ("Error Tracking", ["Sentry", "Rollbar", "Bugsnag"]),
    "apm-solution": ("APM solution", ["New Relic", "DataDog", "AWS CloudWatch"]),
    "log-aggregation": ("Log aggregation", ["AWS CloudWatch", "ELK Stack", "Papertrail"]),
    "email-service": ("Email Service", ["SendGrid", "AWS SES", "Mailgun"]),
    "deployment-method": ("Deployment method", ["Docker", "PM2", "Systemd", "Kubernetes"]),
    "ci-cd-platform": ("CI/CD Platform", ["GitHub Actions", "GitLab CI", "Jenkins"]),
    "caching-layer": ("Caching Layer", ["Redis", "Memcached", "In-memory", "None (start simple)"]),
}


def test_decisions_merged_by_topic(checklist: Checklist) -> None:
    assert {d.id: (d.topic, [o.label for o in d.options]) for d in checklist.decisions} == {
        k: (topic, labels) for k, (topic, labels) in DECISIONS.items()
    }


def test_decisions_point_at_their_items(checklist: Checklist) -> None:
    for d in checklist.decisions:
        item = checklist.item(d.item_id or "")
        assert item is not None and item.kind is ItemKind.DECISION
        assert item.decision_id == d.id
        assert item.text == f"**Decision needed**: {d.question}"
    platform = decision(checklist, "deployment-platform")
    assert platform.question == "Deployment platform chosen (EC2 vs ECS vs Lambda)"
    method = decision(checklist, "deployment-method")
    assert method.item_id is not None and "Docker" in method.question
    assert decision(checklist, "email-service").question == (
        "Email provider (SendGrid / AWS SES / Mailgun)"
    )


@pytest.mark.parametrize(
    ("decision_id", "aliases"),
    [
        ("email-service", {"email", "email service", "email provider"}),
        ("ci-cd-platform", {"ci", "cicd", "ci/cd", "ci-cd"}),
        ("apm-solution", {"apm", "monitoring"}),
        ("caching-layer", {"cache", "caching"}),
        ("secrets-management", {"secrets"}),
        ("log-aggregation", {"logs", "logging"}),
    ],
)
def test_decision_aliases(checklist: Checklist, decision_id: str, aliases: set[str]) -> None:
    assert aliases <= set(decision(checklist, decision_id).aliases)
    for alias in aliases:
        assert [d.id for d in find_decision(checklist, alias)] == [decision_id]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email", ["email-service"]),
        ("EMAIL", ["email-service"]),
        ("caching-layer", ["caching-layer"]),
        ("Deployment Platform", ["deployment-platform"]),
        ("deployment method", ["deployment-method"]),
        ("deployment", ["deployment-platform", "deployment-method"]),  # ambiguous on purpose
        ("platform", ["deployment-platform", "ci-cd-platform"]),
        ("aggreg", ["log-aggregation"]),
        ("nothing-like-it", []),
        ("", []),
    ],
)
def test_find_decision(checklist: Checklist, text: str, expected: list[str]) -> None:
    assert [d.id for d in find_decision(checklist, text)] == expected


@pytest.mark.parametrize(
    ("decision_id", "text", "label"),
    [
        ("email-service", "ses", "AWS SES"),
        ("email-service", "SES", "AWS SES"),
        ("email-service", "aws ses", "AWS SES"),
        ("email-service", "AWS SES", "AWS SES"),
        ("email-service", "aws-ses", "AWS SES"),
        ("email-service", "sendg", "SendGrid"),
        ("email-service", "mailgun", "Mailgun"),
        ("email-service", "postmark", None),
        ("deployment-platform", "ec2", "EC2 instances"),
        ("deployment-platform", "ECS", "ECS containers"),
        ("deployment-platform", "lambda", "Serverless (Lambda)"),
        ("deployment-platform", "serverless", "Serverless (Lambda)"),
        ("deployment-platform", "e", None),  # ec2 / ecs: ambiguous prefix
        ("secrets-management", "vault", "HashiCorp Vault"),
        ("secrets-management", "hashicorp vault", "HashiCorp Vault"),
        ("secrets-management", "env", "Environment Variables only"),
        ("secrets-management", "environment variables", "Environment Variables only"),
        ("secrets-management", "aws secrets manager", "AWS Secrets Manager"),
        ("ci-cd-platform", "gha", "GitHub Actions"),
        ("ci-cd-platform", "github actions", "GitHub Actions"),
        ("ci-cd-platform", "gitlab", "GitLab CI"),
        ("ci-cd-platform", "git", None),  # github / gitlab
        ("caching-layer", "none", "None (start simple)"),
        ("caching-layer", "in-memory", "In-memory"),
        ("caching-layer", "memory", "In-memory"),
        ("caching-layer", "redis", "Redis"),
        ("deployment-method", "k8s", "Kubernetes"),
        ("deployment-method", "", None),
    ],
)
def test_find_option(checklist: Checklist, decision_id: str, text: str, label: str | None) -> None:
    option = find_option(decision(checklist, decision_id), text)
    assert (option.label if option else None) == label


def test_option_ids_and_aliases(checklist: Checklist) -> None:
    for d in checklist.decisions:
        assert len({o.id for o in d.options}) == len(d.options)
        seen: set[str] = set()
        for o in d.options:
            assert o.aliases == tuple(sorted(o.aliases))
            assert all(a == a.lower() for a in o.aliases)
            assert not seen & set(o.aliases), f"alias shared within {d.id}"
            seen |= set(o.aliases)
    caching = decision(checklist, "caching-layer")
    assert [o.id for o in caching.options] == [
        "redis",
        "memcached",
        "in-memory",
        "none-start-simple",
    ]


def test_verify_blocks(checklist: Checklist) -> None:
    blocks = checklist.verify_blocks
    assert len(blocks) == 18
    assert all(b.language == "bash" and b.code for b in blocks)
    by_label = Counter(b.label for b in blocks)
    assert by_label["Verification Command"] == 2
    assert {"SSL Test", "Load Test Command", "Sentry Verification"} <= set(by_label)
    dns = next(b for b in blocks if "nslookup" in b.code)
    assert dns.section_path == (
        "PRODUCTION INFRASTRUCTURE READINESS",
        "AWS Account & Resources",
        "Domain & DNS",
    )
    assert dns.line == 72
    load = next(b for b in blocks if b.label == "Load Test Command")
    assert load.section_path == ("PERFORMANCE REQUIREMENTS", "Load Testing")


def test_env_templates_hold_names_only(checklist: Checklist) -> None:
    backend = checklist.env_templates["backend"]
    assert backend[:4] == ("NODE_ENV", "PORT", "DB_HOST", "DB_USER")
    assert len(backend) == 23
    assert {"DB_PASSWORD", "JWT_SECRET", "SENTRY_DSN", "REDIS_PASSWORD"} <= set(backend)
    assert checklist.env_templates["frontend"] == ("NEXT_PUBLIC_API_URL", "NEXT_PUBLIC_ENVIRONMENT")
    assert set(checklist.env_templates) == {"backend", "frontend"}
    assert not any("=" in n or "production" in n for n in backend)


def test_runbooks(checklist: Checklist) -> None:
    assert [(r.id, r.title, len(r.steps)) for r in checklist.runbooks] == [
        ("deployment-fails", "If Deployment Fails", 6),
        ("production-issues", "If Production Issues Occur", 6),
        ("final-preparation", "Final Preparation", 4),
        ("deployment", "Deployment", 6),
        ("post-deployment", "Post-Deployment", 5),
    ]
    fails = checklist.runbooks[0]
    assert fails.steps[0] == "Immediately rollback to previous version"
    assert fails.section == "EMERGENCY PROCEDURES"
    assert checklist.runbooks[2].section == "QUICK START GUIDE"
    assert all(r.source == "checklist" for r in checklist.runbooks)


def test_targets(checklist: Checklist) -> None:
    t = checklist.targets
    assert (t.rto_minutes, t.rpo_minutes, t.p95_ms) == (120, 5, 500)
    assert t.error_rate_percent == 0.0
    assert t.backup_retention_days == 30
