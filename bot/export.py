"""Export a checklist with its sign-offs: Markdown that re-imports to the same items, or JSON.

The Markdown keeps the headings, writes every item with its explicit `<!-- id: ... -->` so ids
survive any later edit, ticks items that have sign-offs and says who signed off when
(" — signed off by alice (2026-11-27 10:00 UTC)"), which bot/checklist.py strips on import.
Decisions, runbooks, verify blocks and env templates are written in the forms the importer reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.checklist import runbook_id, slugify
from bot.model import Checklist, Item, Runbook, StepDetail

Signoffs = Mapping[str, Sequence[tuple[str, datetime, str]]]
Names = Callable[[str], str]  # user id -> display name (bot/people.py)


def _same(user: str) -> str:
    return user


ENV_SECTION = "ENVIRONMENT TEMPLATES"
DECISION_SECTION = "DECISION TRACKING"
TARGETS_SECTION = "TARGETS"
RUNBOOK_SECTION = "RUNBOOKS"  # for runbooks that do not say which section they came from


def _stamp(when: datetime) -> str:
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _one_line(text: str) -> str:
    # A newline would end the list item (or heading) the text is written into.
    return re.sub(r"\s+", " ", text).strip()


_STAMP_IN_NAME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC)\)")


def _who(user: str) -> str:
    # A "—" or a "(time stamp)" in a name would be read as part of the sign-off suffix.
    name = _STAMP_IN_NAME.sub(r"[\1]", _one_line(user).replace("—", "-"))
    return name or "?"


def _signoff_suffix(entries: Sequence[tuple[str, datetime, str]]) -> str:
    if not entries:
        return ""
    who = ", ".join(f"{_who(user)} ({_stamp(at)})" for user, at, _ in entries)
    return f" — signed off by {who}"


def _fence(code: str, language: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [f"{ticks}{language}", *code.split("\n"), ticks]


def _heading_lines(old: tuple[str, ...], new: tuple[str, ...], base_level: int) -> list[str]:
    """Headings to go from path old to path new; path[0] is at base_level."""
    common = 0
    while common < min(len(old), len(new)) and old[common] == new[common]:
        common += 1
    if common == len(new) and len(old) == len(new):
        return []
    if common == len(new):  # going back up to an ancestor: repeat its heading
        common = len(new) - 1
    out: list[str] = []
    for depth in range(max(common, 0), len(new)):
        level = min(base_level + depth, 6)
        out += ["", f"{'#' * level} {new[depth]}", ""]
    return out


def _duration(minutes: int) -> str:
    if minutes and minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _target_lines(checklist: Checklist) -> list[str]:
    """The stated targets, in the words the importer's patterns read."""
    t = checklist.targets
    stated = [
        f"RTO: {_duration(t.rto_minutes)}" if t.rto_minutes is not None else None,
        f"RPO: {_duration(t.rpo_minutes)}" if t.rpo_minutes is not None else None,
        f"95th percentile response time < {t.p95_ms}ms" if t.p95_ms is not None else None,
        f"{t.error_rate_percent:g}% error rate" if t.error_rate_percent is not None else None,
        (
            f"Backup retention: {t.backup_retention_days} days"
            if t.backup_retention_days is not None
            else None
        ),
    ]
    found = [f"- {s}" for s in stated if s]
    return ["", f"## {TARGETS_SECTION}", "", *found] if found else []


def render_markdown(checklist: Checklist, signoffs: Signoffs) -> str:
    """The checklist as Markdown with sign-offs shown; importing it gives the same items."""
    lines: list[str] = []
    if checklist.title:
        lines += [f"# {checklist.title}", ""]

    children: dict[str, list[Item]] = {}
    for item in checklist.items:
        if item.parent_id:
            children.setdefault(item.parent_id, []).append(item)
    section_of_path = {i.path: i.section for i in checklist.items}

    def item_lines(item: Item, depth: int) -> list[str]:
        pad = "  " * depth
        entries = signoffs.get(item.id, ())
        box = "x" if entries else " "
        text = _one_line(item.text)
        out = [f"{pad}- [{box}] {text}{_signoff_suffix(entries)} <!-- id: {item.id} -->"]
        out += [f"{pad}  - {_one_line(d)}" for d in item.details]
        out += [
            f"{pad}  - Sign-off note ({_who(user)}): {_one_line(note)}"
            for user, _, note in entries
            if note.strip()
        ]
        for child in children.get(item.id, ()):
            out += item_lines(child, depth + 1)
        return out

    # Items and verify blocks in document order, each under its own headings.
    known = {i.id for i in checklist.items}
    blocks: list[tuple[int, int, Any]] = [
        (i.line, 0, i) for i in checklist.items if not i.parent_id or i.parent_id not in known
    ]
    blocks += [(v.line, 1, v) for v in checklist.verify_blocks]
    blocks.sort(key=lambda b: (b[0], b[1]))
    current: tuple[str, ...] = ()
    for _, kind, obj in blocks:
        if kind == 0:
            path, section = obj.path, obj.section
        else:
            path = obj.section_path
            section = section_of_path.get(path, path[0] if path else "")
        base = 2 if section else 3
        heads = _heading_lines(current, path, base)
        if heads:
            lines += heads
            current = path
        if kind == 0:
            lines += item_lines(obj, 0)
        else:
            # A blank line first: a label right after a list item would continue its text.
            lines.append("")
            if obj.label:
                lines.append(f"**{_one_line(obj.label)}:**")
            lines += [*_fence(obj.code, obj.language), ""]

    if checklist.env_templates:
        lines += ["", f"## {ENV_SECTION}"]
        for key, names in checklist.env_templates.items():
            lines += [
                "",
                f"### {key.capitalize()} (.env)",
                *_fence("\n".join(f"{n}=" for n in names), "bash"),
            ]

    if checklist.decisions:
        lines += ["", f"## {DECISION_SECTION}", ""]
        for n, decision in enumerate(checklist.decisions, 1):
            marker = f"{n}. "
            topic = f"**{_one_line(decision.topic)}**"
            if decision.item_id is None and decision.question != decision.topic:
                topic += f": {_one_line(decision.question)}"
            if slugify(decision.topic) != decision.id:
                topic += f" <!-- id: {decision.id} -->"
            lines.append(f"{marker}{topic}")
            pad = " " * len(marker)
            lines += [f"{pad}- [ ] {_one_line(o.label)}" for o in decision.options]
            lines.append("")

    by_section: dict[str, list[Runbook]] = {}
    for runbook in checklist.runbooks:
        if not runbook.section and runbook.source != "checklist":
            continue  # a runbook file: it lives in its own file, not in the checklist
        by_section.setdefault(runbook.section or RUNBOOK_SECTION, []).append(runbook)
    for section, runbooks in by_section.items():
        lines += ["", f"## {section}"]
        for runbook in runbooks:
            title = _one_line(runbook.title)
            if runbook_id(title) != runbook.id:
                title += f" <!-- id: {runbook.id} -->"
            lines += ["", f"### {title}", ""]
            for n, step in enumerate(runbook.steps, 1):
                lines.append(f"{n}. {_one_line(step)}")
                lines += _step_body(runbook.detail(n - 1), " " * len(f"{n}. "))

    lines += _target_lines(checklist)
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"


def _step_body(detail: StepDetail, pad: str) -> list[str]:
    """What was written under a runbook step, indented into its list item; parts derived from
    elsewhere in the checklist are left out (the importer derives them again)."""
    out: list[str] = []
    for part in detail.written:
        out.append("")
        if part.kind == "code":
            if part.label:
                out += [f"{pad}**{_one_line(part.label)}:**"]
            out += [f"{pad}{line}" if line else "" for line in _fence(part.text, part.language)]
        else:
            out += [f"{pad}{line}" if line else "" for line in part.text.split("\n")]
    actions = []
    if detail.checks:
        actions.append(f"<!-- check: {', '.join(detail.checks)} -->")
    if detail.notify:
        actions.append(f"<!-- notify: {', '.join(detail.notify)} -->")
    if actions:
        out += ["", *(f"{pad}{a}" for a in actions)]
    return out + ([""] if out else [])


def to_json(checklist: Checklist, *, done: Set[str] = frozenset()) -> dict[str, Any]:
    """Plain JSON-ready data; `done` holds the ids of items the readiness layer counts as done.
    `claimed` comes from the items (a ✅ in the text), never from `done`."""
    t = checklist.targets
    return {
        "title": checklist.title,
        "sections": list(checklist.sections),
        "items": [
            {
                "id": i.id,
                "section": i.section,
                "path": list(i.path),
                "text": i.text,
                "kind": i.kind.value,
                "done": i.id in done,
                "claimed": i.claimed,
                "parent_id": i.parent_id,
                "decision_id": i.decision_id,
                "condition": i.condition,
            }
            for i in checklist.items
        ],
        "decisions": [
            {
                "id": d.id,
                "topic": d.topic,
                "question": d.question,
                "item_id": d.item_id,
                "options": [o.label for o in d.options],
            }
            for d in checklist.decisions
        ],
        "runbooks": [
            {
                "id": r.id,
                "title": r.title,
                "steps": list(r.steps),
                "details": [
                    {
                        "parts": [
                            {
                                "kind": p.kind,
                                "text": p.text,
                                "language": p.language,
                                "label": p.label,
                                "derived": p.derived,
                            }
                            for p in r.detail(n).parts
                        ],
                        "checks": list(r.detail(n).checks),
                        "notify": list(r.detail(n).notify),
                    }
                    for n in range(len(r.steps))
                ],
            }
            for r in checklist.runbooks
        ],
        "targets": {
            "rto_minutes": t.rto_minutes,
            "rpo_minutes": t.rpo_minutes,
            "p95_ms": t.p95_ms,
            "error_rate_percent": t.error_rate_percent,
            "backup_retention_days": t.backup_retention_days,
        },
    }


# ---- export of the current checklist, from its own text --------------------------------------

_LIST_BOX = re.compile(r"^([ \t>]*(?:[-*+]|\d{1,9}[.)])[ \t]+)\[[ xX]\]")
_TABLE_BOX = re.compile(r"^([ \t]*\|?[ \t]*)\[[ xX]\]")
_NOTE_LINE = re.compile(r"^[ \t>]*[-*+] (?:Sign-off note|Not applicable|Overridden) \(")
_TABLE_NOTE = re.compile(r"^- (?:Sign-off note|Not applicable|Overridden) \(.{1,300}?\) on `")


@dataclass(frozen=True)
class ItemExport:
    """What the export writes about one item."""

    done: bool
    signoffs: Sequence[Any] = ()  # records with user, at, note, na_reason (override: optional)


def _note_lines(signoffs: Sequence[Any], names: Names = _same) -> list[str]:
    out: list[str] = []
    for s in signoffs:
        who = _who(names(s.user))
        if getattr(s, "na_reason", None):
            out.append(f"Not applicable ({who}): {_one_line(s.na_reason)}")
        override = getattr(s, "override_reason", None) or (
            getattr(s, "note", "") if getattr(s, "override", False) else None
        )
        if getattr(s, "override", False) and override:
            out.append(f"Overridden ({who}): {_one_line(override)}")
        elif s.note and s.note.strip():
            out.append(f"Sign-off note ({who}): {_one_line(s.note)}")
    return out


def _strip_managed(text: str, item_id: str) -> str:
    """The end of an item's text without what a previous export wrote there."""
    text = text.rstrip()
    own_id = f"<!-- id: {item_id} -->"
    if text.endswith(own_id):
        text = text[: -len(own_id)].rstrip()
    text = text.replace(" <!-- claimed -->", "")
    mark = text.rfind(" — signed off by ")
    if mark >= 0 and re.fullmatch(
        r" — signed off by .+ \(\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\)", text[mark:]
    ):
        text = text[:mark].rstrip()
    return text


def render_source(
    checklist: Checklist, states: Mapping[str, ItemExport], names: Names = _same
) -> str:
    """The checklist's own document with each item's state written in: `[x]` only for done
    items, who signed off when (by name, where `names` knows them), sign-off notes, N/A reasons
    and overrides, a claim mark for a ticked item not done, and its id. Everything else (prose,
    tables, code) is kept as it is, so export -> import -> export gives the same text."""
    if not checklist.source_text:
        return render_markdown(
            checklist,
            {
                i: [(names(s.user), s.at, s.note) for s in st.signoffs]
                for i, st in states.items()
                if st.done and st.signoffs
            },
        )
    lines = checklist.source_text.split("\n")
    inserts: list[tuple[int, list[str]]] = []
    table_notes: dict[int, list[str]] = {}  # line after a table -> notes of its rows
    for item in checklist.items:
        state = states.get(item.id, ItemExport(False))
        first = item.line - 1
        end = (item.end_line or item.line) - 1
        if not (0 <= first <= end < len(lines)):
            continue
        box = _TABLE_BOX if item.table else _LIST_BOX
        match = box.match(lines[first])
        if match is None:
            continue
        mark = "x" if state.done else " "
        lines[first] = f"{match.group(1)}[{mark}]{lines[first][match.end() :]}"
        suffix = (
            _signoff_suffix([(names(s.user), s.at, "") for s in state.signoffs])
            if state.done
            else ""
        )
        claim = (
            " <!-- claimed -->" if item.claimed and not state.done and "✅" not in item.text else ""
        )
        tail = f"{suffix}{claim} <!-- id: {item.id} -->"
        line = lines[end]
        if item.table:
            cut = line.rstrip().rfind("|")
            if cut <= 0 or line[:cut].rstrip().endswith("|"):
                cut = len(line.rstrip())
            head, rest = line[:cut], line[cut:]
            lines[end] = f"{_strip_managed(head, item.id)}{tail} {rest.strip()}".rstrip()
            # A table row has no room for notes: they go in a list under the table.
            after = end
            while after < len(lines) and lines[after].strip() and "|" in lines[after]:
                after += 1
            if after + 1 < len(lines) and not lines[after].strip():
                n = after + 1
                while n < len(lines) and _TABLE_NOTE.match(lines[n]):
                    lines[n] = "\0"
                    n += 1
                if n > after + 1:
                    lines[after] = "\0"
            notes = _note_lines(state.signoffs, names) if state.done else []
            table_notes.setdefault(after, []).extend(
                f"- {n.split(':', 1)[0]} on `{item.id}`:{n.split(':', 1)[1]}" for n in notes
            )
            continue
        lines[end] = _strip_managed(line, item.id) + tail
        # Notes go right under the item's text, replacing those of an earlier export.
        after = end + 1
        while after < len(lines) and _NOTE_LINE.match(lines[after]):
            lines[after] = "\0"
            after += 1
        notes = _note_lines(state.signoffs, names) if state.done else []
        if notes:
            pad = " " * len(match.group(1).replace(">", " "))
            quote = re.match(r"^[ \t]*(?:>[ \t]?)*", lines[first])
            prefix = quote.group(0) if quote and ">" in quote.group(0) else ""
            inserts.append((end + 1, [f"{prefix}{pad[len(prefix) :]}- {n}" for n in notes]))
    inserts += [(at, ["", *notes]) for at, notes in table_notes.items() if notes]
    for at, new in sorted(inserts, key=lambda x: x[0], reverse=True):
        lines[at:at] = new
    text = "\n".join(line for line in lines if line != "\0")
    return text if text.endswith("\n") else text + "\n"


def export_data(
    checklist: Checklist,
    states: Sequence[Any],
    decisions: Sequence[dict[str, Any]],
    *,
    version: dict[str, Any] | None = None,
    acceptances: Sequence[dict[str, Any]] | None = None,
    names: Names = _same,
) -> dict[str, Any]:
    """Everything the store knows about the current checklist, JSON-ready (secret-free: the
    document was masked on import). People keep their ids under "user"; "name" is what
    `names` calls them (the id itself where no Slack client can say)."""
    by_id = {s.item.id: s for s in states}
    data = to_json(checklist, done={s.item.id for s in states if s.done})
    data["checklist"] = version or {}
    for row in data["items"]:
        st = by_id.get(row["id"])
        item = checklist.item(row["id"])
        row["status"] = st.status.value if st else "open"
        row["reason"] = st.reason if st else ""
        row["claim"] = ("ticked" if item and item.checked else "✅") if row["claimed"] else None
        row["signoffs"] = [
            {
                "user": s.user,
                "name": names(s.user),
                "at": s.at.isoformat(),
                "note": s.note,
                "na_reason": s.na_reason,
                "override": bool(getattr(s, "override", False)),
            }
            for s in (st.signoffs if st else ())
        ]
        row["overrides"] = [
            {"user": o.user, "name": names(o.user), "at": o.at.isoformat(), "reason": o.reason}
            for o in (st.overrides if st else ())
        ]
        results = {r.check_id: r for r in (st.results if st else ())}
        row["checks"] = [
            {
                "id": c,
                "status": results[c].status.value if c in results else None,
                "summary": results[c].summary if c in results else None,
                "observed_at": (
                    results[c].observed_at.isoformat()
                    if c in results and results[c].observed_at
                    else None
                ),
            }
            for c in (item.checks if item else ())
        ]
    data["decisions"] = list(decisions)
    # Acceptances of WARN results (the gate's accept command) when the store records them.
    data["acceptances"] = list(acceptances or [])
    return data
