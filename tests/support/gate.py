"""A small checklist and test checks whose verdict a test sets, for the gate's scenarios.

The checks are registered for one test and removed in `finally` (see `probes`); the checklist's
items are bound to them by id, the way a bindings file binds a team's own items.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.checklist import read_checklist_file
from bot.model import Checklist, ItemKind
from checks import registry
from checks.base import Check, CheckContext, Result, Status

DNS_ITEMS = tuple(f"net/dns-{n}" for n in range(1, 6))
CHECKLIST = """# Launch

## NETWORK

- [ ] DNS for the API <!-- id: net/dns-1 -->
- [ ] DNS for the web app <!-- id: net/dns-2 -->
- [ ] DNS for mail <!-- id: net/dns-3 -->
- [ ] DNS for status page <!-- id: net/dns-4 -->
- [ ] DNS for docs <!-- id: net/dns-5 -->

## SECURITY

- [ ] TLS accepts only modern protocols <!-- id: sec/tls -->
- [ ] Error logs are quiet <!-- id: sec/logs -->

## OPS

- [ ] Runbook written and reviewed <!-- id: ops/runbook -->
"""
# check id -> items it verifies (a bindings file's shape)
BINDINGS = {
    "zz_gate_dns": DNS_ITEMS,
    "zz_gate_tls": ("sec/tls",),
    "zz_gate_logs": ("sec/logs",),
}


@dataclass
class Probe:
    """A check body whose verdict the test sets between runs."""

    status: Status = Status.PASS
    summary: str = "all good: 1 host probed"

    def __call__(self, ctx: CheckContext) -> Result:
        return Result(self.status, self.summary, observations=1)


@dataclass
class Probes:
    dns: Probe
    tls: Probe
    logs: Probe

    @property
    def ids(self) -> list[str]:
        return list(BINDINGS)


@contextmanager
def probes() -> Iterator[Probes]:
    """Register the three test checks (logs is advisory: blocking=False) for one test."""
    found = Probes(
        dns=Probe(Status.FAIL, "api.example.com does not resolve"),
        tls=Probe(Status.WARN, "TLS 1.0 accepted on api.example.com:443"),
        logs=Probe(Status.FAIL, "12 errors in the last hour"),
    )
    made = [
        Check(id="zz_gate_dns", title="DNS", section="Test", run=found.dns, severity="high"),
        Check(id="zz_gate_tls", title="TLS", section="Test", run=found.tls, severity="critical"),
        Check(
            id="zz_gate_logs", title="Logs", section="Test", run=found.logs, blocking=False,
            severity="medium",
        ),
    ]  # fmt: skip
    for check in made:
        registry.register(check)
    try:
        yield found
    finally:
        for check in made:
            registry.unregister(check.id)


def write_checklist(folder: Path, text: str = CHECKLIST) -> Path:
    path = folder / "launch.md"
    path.write_text(text, "utf-8")
    return path


def bound(path: Path) -> Checklist:
    """The test checklist with its items bound to the test checks."""
    checklist = read_checklist_file(path)
    by_item: dict[str, list[str]] = {}
    for check_id, item_ids in BINDINGS.items():
        for item_id in item_ids:
            by_item.setdefault(item_id, []).append(check_id)
    items = tuple(
        dataclasses.replace(i, checks=tuple(by_item[i.id]), kind=ItemKind.AUTOMATED)
        if i.id in by_item
        else i
        for i in checklist.items
    )
    return dataclasses.replace(checklist, items=items)
