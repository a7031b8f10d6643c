"""Which checks verify which checklist items.

Two ways to bind: an annotation in the item's text (`<!-- check: tls_certificate -->`), and a
bindings file (PREFLIGHT_BINDINGS, or bot/content/bindings.yml for the bundled checklist only):
check id -> item ids. An item bound to at least one check becomes `automated`. A check id that
no check has is an error; bindings to item ids the checklist does not have are reported.
`suggest` proposes a bindings file from the items' words, for a team to review.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

import yaml

from bot.model import Checklist, ItemKind


class BindingsError(Exception):
    """The bindings file is not a mapping of check id to a list of item ids."""


def load_bindings(path: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Check id -> item ids, from path or the bundled bindings."""
    if path is None:
        text = resources.files("bot.content").joinpath("bindings.yml").read_text("utf-8")
    else:
        try:
            text = Path(path).read_text("utf-8")
        except FileNotFoundError:
            raise BindingsError(f"bindings file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BindingsError(f"bindings file cannot be read: {path} ({exc})") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise BindingsError(f"bindings file is not YAML: {path}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v)
        for k, v in raw.items()
    ):
        raise BindingsError(
            f"bindings file {path or 'bindings.yml'} must map each check id to a list of item ids"
        )
    return {k: tuple(v) for k, v in raw.items()}


def apply_bindings(
    checklist: Checklist, bindings: Mapping[str, tuple[str, ...]]
) -> tuple[Checklist, list[str]]:
    """The checklist with bound items made automated, and the item ids that were not found."""
    by_item: dict[str, list[str]] = {}
    for check_id, item_ids in bindings.items():
        for item_id in item_ids:
            by_item.setdefault(item_id, []).append(check_id)
    known = {i.id for i in checklist.items}
    missing = sorted(set(by_item) - known)
    items = tuple(
        dataclasses.replace(
            item,
            checks=tuple(sorted(set(item.checks) | set(by_item[item.id]))),
            kind=ItemKind.AUTOMATED if item.kind is ItemKind.MANUAL else item.kind,
        )
        if item.id in by_item
        else item
        for item in checklist.items
    )
    # An annotation (`<!-- check: x -->`) binds as well as the file does.
    items = tuple(
        dataclasses.replace(item, kind=ItemKind.AUTOMATED)
        if item.checks and item.kind is ItemKind.MANUAL
        else item
        for item in items
    )
    return dataclasses.replace(checklist, items=items), missing


def unknown_checks(
    checklist: Checklist, bindings: Mapping[str, Iterable[str]], known: Iterable[str]
) -> list[str]:
    """Check ids named by the bindings or by the items' annotations that no check has."""
    known_ids = set(known)
    named = set(bindings) | {c for item in checklist.items for c in item.checks}
    return sorted(named - known_ids)


# Words in an item's text that suggest a check. Plain lower-case substrings (no regex on outside
# text); a short word that is easily part of others is matched as a whole word.
# fmt: off
SUGGEST_KEYWORDS: dict[str, tuple[str, ...]] = {
    "tls_certificate": ("ssl certificate", "tls certificate", "certificate", "ssl", "tls"),
    "tls_wildcard": ("wildcard",),
    "https_redirect": ("https redirect", "redirect to https", "http to https"),
    "security_headers": ("security headers", "headers", "csp", "hsts", "helmet",
                         "content-security-policy", "x-frame-options"),
    "cors_policy": ("cors",),
    "rate_limiting": ("rate limit", "rate-limit", "throttl"),
    "dns_records": ("dns", "a record", "cname"),
    "email_dns": ("spf", "dkim", "dmarc"),
    "rds_backups": ("backup retention", "automated backup", "point-in-time", "backup"),
    "db_backup_dump": ("pg_dump", "database dump", "backup"),
    "db_connect": ("database accessible", "database connection", "connect to the database"),
    "db_ssl": ("database ssl", "ssl connections", "sslmode"),
    "db_settings": ("slow query", "slow-query"),
    "db_query_plans": ("explain", "index", "indexes", "query plan"),
    "rds_monitoring": ("performance insights", "enhanced monitoring"),
    "rds_hardening": ("encryption at rest", "publicly accessible", "firewall", "security group"),
    "env_config": ("environment variable", "env var", ".env"),
    "secrets_plaintext": ("secrets", "credentials", "secret"),
    "npm_audit": ("npm audit", "vulnerabilit", "dependency audit"),
    "sentry_dsn": ("sentry",),
    "log_errors": ("error rate", "error logs", "log errors"),
    "load_test": ("load test", "load-test", "p95", "95th percentile", "stress test"),
    "api_health": ("health", "smoke test", "endpoints functional"),
}
# fmt: on
_WHOLE_WORD = frozenset(
    {
        "ssl",
        "tls",
        "csp",
        "hsts",
        "cors",
        "dns",
        "spf",
        "dkim",
        "dmarc",
        "index",
        "explain",
        "p95",
        "secret",
        "secrets",
        "health",
    }
)


def _mentions(text: str, keyword: str) -> bool:
    if keyword not in text:
        return False
    if keyword not in _WHOLE_WORD:
        return True
    return keyword in re.findall(r"[a-z0-9_]+", text)


def suggest(checklist: Checklist, known: Iterable[str]) -> dict[str, list[str]]:
    """Check id -> ids of the items whose text mentions one of its keywords (a proposal)."""
    known_ids = set(known)
    out: dict[str, list[str]] = {}
    for item in checklist.items:
        text = item.text.lower()
        for check_id, words in SUGGEST_KEYWORDS.items():
            if check_id in known_ids and any(_mentions(text, w) for w in words):
                out.setdefault(check_id, []).append(item.id)
    return {k: out[k] for k in SUGGEST_KEYWORDS if k in out}


def suggestion_yaml(checklist: Checklist, known: Iterable[str]) -> str:
    """A bindings file proposing `suggest`, with each item's text as a comment to review."""
    texts = {i.id: i.text for i in checklist.items}
    lines = [
        "# Proposed check bindings (check id -> item ids), from the items' words.",
        "# Review, delete what does not fit, then: PREFLIGHT_BINDINGS=this-file preflight import",
    ]
    for check_id, item_ids in suggest(checklist, known).items():
        lines.append(f"{check_id}:")
        for item_id in item_ids:
            text = " ".join(texts[item_id].split())[:70]
            lines.append(f"  - {item_id}  # {text}")  # ids are [a-z0-9/_.-]: plain YAML
    if len(lines) == 2:
        lines.append("{}  # no item mentions anything a check verifies")
    return "\n".join(lines) + "\n"
