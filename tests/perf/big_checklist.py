"""Synthetic checklists of a given size for the scale benchmarks: N items in S `##` sections,
every fifth item bound to a check, every 50th a decision, a few ticked claims."""

from __future__ import annotations

SIZES = ((200, 9), (2_000, 99), (20_000, 999))
CHECKS = ("tls_certificate", "dns_records", "security_headers", "db_connect", "env_config")


def big_checklist_text(items: int, sections: int) -> str:
    lines = [f"# Launch checklist ({items} items)", ""]
    for n in range(items):
        s = n * sections // items
        if n == 0 or s != (n - 1) * sections // items:
            lines += ["", f"## Area {s:04d}", "", f"### Part {s:04d}.a", ""]
        if n % 50 == 7:
            lines.append(f"- [ ] **Decision needed**: Tool {n} (Option A / Option B)")
        elif n % 5 == 0:
            check = CHECKS[(n // 5) % len(CHECKS)]
            lines.append(f"- [ ] Verified item {n} <!-- check: {check} -->")
        else:
            tick = "x" if n % 17 == 0 else " "
            lines.append(f"- [{tick}] Manual item {n} of area {s}")
    return "\n".join(lines) + "\n"
