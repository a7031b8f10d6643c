"""Every variable of the checklist's `.env.production` templates is configured.

The names come from the loaded checklist (ctx.env_templates: its backend and frontend
blocks); without them, from DEFAULT_TEMPLATES, the bundled checklist's blocks. A value counts
as unset when it is empty or a placeholder: anything in brackets (`[TO_BE_CONFIGURED]`,
`[SECURE_IN_AWS_SECRETS_MANAGER]`), in angle brackets or `{{...}}`, starting with `YOUR_`
or `your-`, ending in `-here`/`_here` (`your-secret-here`, `put_key_here`), a run of x or *
(`xxx`, `***`), `...`, or one of the words templates and tutorials use (`changeme`,
`password`, `secret`, `todo`, `example`, `test`, `dummy`, `placeholder`, ...; see
PLACEHOLDER_WORDS).

Optional variables (those the template marks "if using", by default REDIS_*) that are unset
are a WARN, not a FAIL: the team may run without them. PREFLIGHT_ENV_OPTIONAL overrides that
list; PREFLIGHT_ENV_UNUSED names variables the team decided not to use, which are not checked
(both comma-separated names; a trailing `*` is a prefix).

Beyond presence: NODE_ENV must be `production`; JWT_SECRET must be at least 64 characters,
random-looking (no repeated unit such as `secret`×11, at least JWT_MIN_DISTINCT different
characters and JWT_MIN_ENTROPY_BITS bits of Shannon entropy per character: `openssl rand
-hex 32` gives ~3.9, `-base64 48` ~5.5, `a`×64 gives 0 and `secret`×11 2.25) and, when
PREFLIGHT_DEV_JWT_SECRET_SHA256 gives the development secret's SHA-256, differ from it.
Evidence names variables, never values.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

from checks.base import Check, CheckContext, Result, Status

DEFAULT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "backend": (
        "NODE_ENV",
        "PORT",
        "DB_HOST",
        "DB_USER",
        "DB_PASSWORD",
        "DB_NAME",
        "DB_PORT",
        "DB_SSL",
        "JWT_SECRET",
        "JWT_EXPIRE",
        "TPX_N8N_API_KEY",
        "FRONTEND_URL",
        "ADMIN_DASHBOARD_URL",
        "SENDGRID_API_KEY",
        "EMAIL_FROM",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PHONE_NUMBER",
        "SENTRY_DSN",
        "LOG_LEVEL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
    ),
    "frontend": ("NEXT_PUBLIC_API_URL", "NEXT_PUBLIC_ENVIRONMENT"),
}
DEFAULT_OPTIONAL = "REDIS_*"  # the checklist's "# Redis (if using)" group
JWT_MIN_LENGTH = 64
JWT_MIN_DISTINCT = 16  # a hex secret uses all 16 hex digits
JWT_MIN_ENTROPY_BITS = 3.0  # per character; 64 random hex digits give about 3.9

# Words a template, a tutorial or a developer leaves where a real value belongs.
PLACEHOLDER_WORDS = frozenset(
    {
        *("changeme", "change_me", "change-me", "changeit", "change_it", "change-it"),
        *("replaceme", "replace_me", "replace-me", "fillme", "fill_me", "fill-me"),
        *("todo", "tbd", "fixme", "placeholder", "example", "sample", "test", "testing"),
        *("dummy", "fake", "foo", "bar", "foobar", "baz", "none", "null", "nil", "undefined"),
        *("password", "passwd", "pass", "secret", "token", "key", "apikey", "api_key"),
        *("value", "string", "default", "redacted", "secure", "insert", "your", "mysecret"),
        *("my_secret", "my-secret", "secretkey", "secret_key", "supersecret", "s3cr3t"),
    }
)
_PLACEHOLDER = re.compile(
    r"^(?:\[.*\]|<.*>|\{\{.*\}\}|YOUR[_-].*|.*[_-]HERE|X{3,}|\*{3,}|\.{3,}|…)$", re.I | re.S
)


def is_placeholder(value: str | None) -> bool:
    """Empty, bracketed (`[...]`, `<...>`, `{{...}}`), `YOUR_...`, `...-here`, `xxx`, `***`
    or a placeholder word (`changeme`, `secret`, `todo`, ...): a template value, not a
    setting."""
    if value is None or not value.strip():
        return True
    text = value.strip().strip("\"'").strip()
    return not text or text.lower() in PLACEHOLDER_WORDS or bool(_PLACEHOLDER.match(text))


def entropy_bits_per_char(value: str) -> float:
    """Shannon entropy of the characters of value, in bits per character."""
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values()) if total else 0.0


def repeated_unit(value: str) -> bool:
    """value is one shorter string repeated (`secretsecret...`, `aaaa...`)."""
    return len(value) > 1 and value in (value + value)[1:-1]


def weak_secret_reasons(value: str) -> list[str]:
    """Why value is not a strong secret (empty when it is). Never includes the value."""
    reasons = []
    if len(value) < JWT_MIN_LENGTH:
        reasons.append(f"shorter than {JWT_MIN_LENGTH} characters")
    if repeated_unit(value):
        reasons.append("one short string repeated")
    distinct = len(set(value))
    if distinct < JWT_MIN_DISTINCT:
        reasons.append(f"only {distinct} different characters")
    bits = entropy_bits_per_char(value)
    if bits < JWT_MIN_ENTROPY_BITS:
        reasons.append(f"{bits:.1f} bits of entropy per character (< {JWT_MIN_ENTROPY_BITS:g})")
    return reasons


def _name_matcher(spec: str) -> re.Pattern[str]:
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    alternatives = [re.escape(p[:-1]) + ".*" if p.endswith("*") else re.escape(p) for p in parts]
    return re.compile("^(?:" + "|".join(alternatives) + ")$" if alternatives else "(?!)")


def template_names(ctx: CheckContext) -> dict[str, tuple[str, ...]]:
    templates = {k: tuple(v) for k, v in (ctx.env_templates or {}).items() if v}
    return templates or DEFAULT_TEMPLATES


def _jwt_secret(ctx: CheckContext, problems: list[str], fixes: list[str]) -> dict[str, object]:
    """Length and not-the-dev-secret; appends to problems/fixes, returns the observations."""
    jwt = ctx.setting("JWT_SECRET")
    if jwt is None or is_placeholder(jwt):
        return {}
    reasons = weak_secret_reasons(jwt)
    observed: dict[str, object] = {
        "length_ok": len(jwt) >= JWT_MIN_LENGTH,
        "random_looking": not [r for r in reasons if not r.startswith("shorter")],
        "entropy_bits_per_char": round(entropy_bits_per_char(jwt), 2),
    }
    if reasons:
        problems.append("JWT_SECRET is weak: " + ", ".join(reasons))
        fixes.append(
            f"Generate a new random JWT_SECRET of at least {JWT_MIN_LENGTH} characters "
            "(e.g. `openssl rand -hex 48`)."
        )
    dev_digest = (ctx.setting("PREFLIGHT_DEV_JWT_SECRET_SHA256") or "").lower()
    if dev_digest:
        same = hashlib.sha256(jwt.encode()).hexdigest() == dev_digest
        observed["differs_from_dev"] = not same
        if same:
            problems.append("JWT_SECRET is the development secret")
            fixes.append("Use a production-only JWT_SECRET (rotating it signs everyone out).")
    return observed


def run(ctx: CheckContext) -> Result:
    templates = template_names(ctx)
    optional = _name_matcher(ctx.setting("PREFLIGHT_ENV_OPTIONAL") or DEFAULT_OPTIONAL)
    unused = _name_matcher(ctx.setting("PREFLIGHT_ENV_UNUSED") or "")
    missing: list[str] = []
    placeholders: list[str] = []
    optional_unset: list[str] = []
    names = [
        n
        for n in dict.fromkeys(n for group in templates.values() for n in group)
        if not unused.match(n)
    ]
    for name in names:
        raw = ctx.env.get(name)
        unset = raw is None or not raw.strip()
        if not is_placeholder(raw):
            continue
        if optional.match(name):
            optional_unset.append(name)
        elif unset:
            missing.append(name)
        else:
            placeholders.append(name)

    problems: list[str] = []
    fixes: list[str] = []
    if missing:
        problems.append(f"{len(missing)} unset: {', '.join(missing)}")
    if placeholders:
        problems.append(f"{len(placeholders)} still placeholders: {', '.join(placeholders)}")
    if missing or placeholders:
        fixes.append(
            "Set every variable of the .env.production templates in the deployment's "
            "environment (secrets from the secrets manager)."
        )
    node_env = ctx.setting("NODE_ENV")
    if node_env is not None and not is_placeholder(node_env) and node_env != "production":
        problems.append("NODE_ENV is not production")
        fixes.append("Set NODE_ENV=production.")
    jwt_checks = _jwt_secret(ctx, problems, fixes)

    evidence = {
        "checked": len(names),
        "templates": {k: len(v) for k, v in templates.items()},
        "missing": missing,
        "placeholders": placeholders,
        "optional_unset": optional_unset,
        "node_env_ok": node_env == "production",
        "jwt_secret": jwt_checks,
    }
    if problems:
        return Result(
            Status.FAIL,
            "production environment: " + "; ".join(problems),
            evidence,
            " ".join(fixes),
        )
    if optional_unset:
        return Result(
            Status.WARN,
            f"production environment: all {len(names) - len(optional_unset)} required variables "
            f"set; optional unset: {', '.join(optional_unset)}",
            evidence,
            'Set them if the service is used (the checklist marks them "if using"); if it is '
            "not, record that by listing them in PREFLIGHT_ENV_UNUSED.",
        )
    return Result(
        Status.PASS,
        f"production environment: all {len(names)} template variables are set (none a "
        "placeholder), NODE_ENV is production and JWT_SECRET is strong",
        evidence,
        observations=len(names),
    )


CHECK = Check(
    id="env_config",
    title="Production environment variables configured",
    section="Environment Configuration",
    run=run,
    settings=(
        "PREFLIGHT_ENV_OPTIONAL",
        "PREFLIGHT_ENV_UNUSED",
        "PREFLIGHT_DEV_JWT_SECRET_SHA256",
        "NODE_ENV",
        "JWT_SECRET",
    ),
    severity="critical",
    blocking=True,
    timeout_s=5.0,
    max_age_s=3600,
    description=(
        "Every variable of the checklist's backend and frontend `.env.production` templates "
        "is set for real"
    ),
    criteria=(
        "FAIL: a required variable unset or a placeholder: empty, `[...]`, `<...>`, "
        "`{{...}}`, `YOUR_...`/`your-...`, `...-here`/`..._here`, `xxx`, `***`, `...`, or a "
        "placeholder word (`changeme`, `password`, `secret`, `todo`, `example`, `test`, "
        "`dummy`, `placeholder`, `undefined`, …); `NODE_ENV` not `production`; `JWT_SECRET` "
        "weak: under 64 characters, one short string repeated (`secret`×11), fewer than 16 "
        "different characters (`a`×64) or under 3 bits of Shannon entropy per character; or "
        "equal (SHA-256) to `PREFLIGHT_DEV_JWT_SECRET_SHA256`. WARN: optional variables "
        "(`PREFLIGHT_ENV_OPTIONAL`, default `REDIS_*`) unset; names in `PREFLIGHT_ENV_UNUSED` "
        "are not checked. PASS names how many variables were checked (observations). "
        "Evidence: names only, never values"
    ),
    anchor="OWASP ASVS (no default or placeholder secrets; secrets with enough entropy)",
)
