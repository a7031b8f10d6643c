"""What a readiness check is, what it gets and what it returns. No Slack, no store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 - a status, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the check itself broke (unreachable target, timeout, bug)
    UNKNOWN = "UNKNOWN"  # ran, but not enough evidence to say
    SKIPPED = "SKIPPED"  # not configured or not applicable; never counts as passing


# Worst first: the order a list of results is summarised in.
SEVERITY_ORDER = (
    Status.FAIL,
    Status.ERROR,
    Status.UNKNOWN,
    Status.WARN,
    Status.SKIPPED,
    Status.PASS,
)


def worst(statuses: list[Status]) -> Status:
    """The most severe of several statuses (PASS for none)."""
    for s in SEVERITY_ORDER:
        if s in statuses:
            return s
    return Status.PASS


# One observation of a check: its status, what was found (a clause), and what to do about it.
Finding = tuple[Status, str, str]


def from_findings(
    subject: str, findings: Sequence[Finding], evidence: dict[str, Any], observations: int = 0
) -> Result:
    """One result from several findings about subject: the worst status, the findings joined
    into one sentence ("RDS db1: backups kept 3 days; no backup window"), their fixes joined.
    observations defaults to the number of findings (each is something that was looked at)."""
    return Result(
        worst([f[0] for f in findings]),
        f"{subject}: " + "; ".join(f[1] for f in findings),
        evidence,
        " ".join(f[2] for f in findings if f[2]),
        observations=observations or len(findings),
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Result:
    """One check's verdict. The runner fills check_id, timing and freshness."""

    status: Status
    summary: str  # one sentence naming the thing checked
    evidence: dict[str, Any] = field(default_factory=dict)  # observed values, never secrets
    remediation: str = ""  # what a person can do about it
    check_id: str = ""
    started_at: datetime | None = None
    duration_ms: int = 0
    observed_at: datetime | None = None
    max_age_s: int = 3600  # after this the result is stale and no longer counts
    # How many things the check actually looked at (files scanned, requests sent, records
    # parsed, hosts probed). A PASS must name at least one: the runner turns a PASS with no
    # observation into UNKNOWN, because "nothing wrong in nothing seen" is not evidence.
    observations: int = 0

    def is_fresh(self, now: datetime | None = None) -> bool:
        if self.observed_at is None:
            return False
        age = ((now or utcnow()) - self.observed_at).total_seconds()
        return age <= self.max_age_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check_id,
            "status": self.status.value,
            "summary": self.summary,
            "evidence": self.evidence,
            "remediation": self.remediation,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "duration_ms": self.duration_ms,
            "observed_at": self.observed_at.isoformat() if self.observed_at else None,
            "max_age_s": self.max_age_s,
            "observations": self.observations,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        def ts(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        return cls(
            status=Status(d["status"]),
            summary=d["summary"],
            evidence=dict(d.get("evidence") or {}),
            remediation=d.get("remediation") or "",
            check_id=d.get("id") or d.get("check_id") or "",
            started_at=ts(d.get("started_at")),
            duration_ms=int(d.get("duration_ms") or 0),
            observed_at=ts(d.get("observed_at")),
            max_age_s=int(d.get("max_age_s") or 3600),
            observations=int(d.get("observations") or 0),
        )


@dataclass(frozen=True)
class CheckContext:
    """What a check may read: settings (environment), the checklist's targets, limits."""

    env: Mapping[str, str]
    timeout_s: float = 10.0  # the runner's deadline for this check; use it for network timeouts
    allow_active: bool = False  # opt-in for checks that send traffic or messages
    targets: Any = None  # bot.model.Targets of the loaded checklist (duck-typed: no bot import)
    env_templates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    checklist_path: str | None = None  # the checklist document, e.g. for secrets_plaintext

    def setting(self, name: str, default: str | None = None) -> str | None:
        """A setting's value, treating empty and whitespace-only as unset."""
        value = self.env.get(name)
        if value is None or not value.strip():
            return default
        return value.strip()

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.setting(name)
        if value is None:
            return default
        return value.lower() in {"1", "true", "yes", "on"}


def skipped(*settings: str, why: str = "") -> Result:
    """The result of a check whose target is not configured: names what to set."""
    names = " or ".join(settings)
    return Result(
        Status.SKIPPED,
        why or f"not configured: set {names}",
        evidence={"missing_settings": list(settings)},
        remediation=f"Set {names} to enable this check.",
    )


@dataclass(frozen=True)
class Check:
    """A readiness check. Each module in checks/ defines one as `CHECK` at module level."""

    id: str  # must equal the module name; the registry refuses anything else
    title: str
    section: str  # the checklist section it speaks for, e.g. "Security"
    run: Callable[[CheckContext], Result]
    settings: tuple[str, ...] = ()  # settings it reads; the first ones are its target
    severity: str = "high"  # "critical" | "high" | "medium" | "low"
    blocking: bool = True  # a non-passing result blocks the gate
    active: bool = False  # sends traffic or messages: runs only with allow_active
    timeout_s: float = 10.0
    max_age_s: int = 3600
    description: str = ""  # what it verifies, for --list and the README
    # How each status is decided (PASS/WARN/FAIL/UNKNOWN/SKIPPED), for the README's table
    # (generated from this metadata) and `check --list`.
    criteria: str = ""
    # The public tool or standard the criteria are at least as strict as (e.g. "Mozilla HTTP
    # Observatory", "checkdmarc", "testssl.sh"); empty where the checklist itself is the anchor.
    anchor: str = ""
