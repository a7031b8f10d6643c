"""The parsed form of a checklist, kept by content hash so a process start does not parse the
same Markdown again (perf, issue 11: a 20,000-item document took seconds to parse at every
start, for the same result every time).

The key is a hash of the text, where it came from (runbooks record it) and the parser's own
source, so a new parser never reads an old parse. The value is JSON (never pickle: a cache
is data, not code); a value that does not read back is ignored and parsed afresh.
The cache lives in the store (table parsed_checklists, the last few keys), so every backend has
it, in memory and on PostgreSQL included, and instances sharing a database share it. It holds
what the store holds (the credential-masked document), nothing more.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.model import (
    Checklist,
    Decision,
    ImportNote,
    Item,
    ItemKind,
    Option,
    Runbook,
    StepDetail,
    StepPart,
    Targets,
    VerifyBlock,
)

if TYPE_CHECKING:
    from store import Store

log = logging.getLogger(__name__)

FORMAT = 2


@functools.cache
def _parser_fingerprint() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(str(FORMAT).encode())
    for name in ("checklist.py", "model.py", "parsed_cache.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def cache_key(text: str, origin: str) -> str:
    """What a parse of `text` from `origin` is stored under."""
    digest = hashlib.sha256(_parser_fingerprint().encode())
    digest.update(origin.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _item(i: Item) -> list[Any]:
    return [
        *(i.id, i.section, list(i.path), i.text, i.kind.value, i.line, i.checked, i.claimed),
        *(i.parent_id, i.decision_id, i.condition, list(i.details), list(i.checks), i.table),
        i.end_line,
    ]


def to_data(c: Checklist) -> dict[str, Any]:
    """A JSON-ready form of a parsed checklist."""
    t = c.targets
    return {
        "title": c.title,
        "sections": list(c.sections),
        "items": [_item(i) for i in c.items],
        "decisions": [
            [
                *(d.id, d.topic, d.question),
                [[o.id, o.label, list(o.aliases)] for o in d.options],
                *(d.item_id, list(d.aliases), d.quorum),
            ]
            for d in c.decisions
        ],
        "runbooks": [
            [
                *(r.id, r.title, list(r.steps), r.source, r.section),
                [
                    [
                        [[p.kind, p.text, p.language, p.label, p.derived] for p in x.parts],
                        list(x.checks),
                        list(x.notify),
                    ]
                    for x in r.details
                ],
            ]
            for r in c.runbooks
        ],
        "verify_blocks": [
            [v.label, v.language, v.code, list(v.section_path), v.line] for v in c.verify_blocks
        ],
        "env_templates": {k: list(v) for k, v in c.env_templates.items()},
        "targets": [
            *(t.rto_minutes, t.rpo_minutes, t.p95_ms, t.error_rate_percent),
            t.backup_retention_days,
        ],
        "source_sha256": c.source_sha256,
        "source_text": c.source_text,
        "notes": [[n.line, n.kind, n.text] for n in c.notes],
    }


def from_data(d: dict[str, Any]) -> Checklist:
    """The checklist `to_data` wrote."""
    return Checklist(
        title=d["title"],
        sections=tuple(d["sections"]),
        items=tuple(
            Item(
                *(i[0], i[1], tuple(i[2]), i[3], ItemKind(i[4]), i[5], i[6], i[7]),
                *(i[8], i[9], i[10], tuple(i[11]), tuple(i[12]), i[13], i[14]),
            )
            for i in d["items"]
        ),
        decisions=tuple(
            Decision(
                x[0],
                x[1],
                x[2],
                tuple(Option(o[0], o[1], tuple(o[2])) for o in x[3]),
                x[4],
                tuple(x[5]),
                x[6],
            )
            for x in d["decisions"]
        ),
        runbooks=tuple(
            Runbook(
                *(r[0], r[1], tuple(r[2]), r[3], r[4]),
                tuple(
                    StepDetail(tuple(StepPart(*p) for p in x[0]), tuple(x[1]), tuple(x[2]))
                    for x in r[5]
                ),
            )
            for r in d["runbooks"]
        ),
        verify_blocks=tuple(
            VerifyBlock(v[0], v[1], v[2], tuple(v[3]), v[4]) for v in d["verify_blocks"]
        ),
        env_templates={k: tuple(v) for k, v in d["env_templates"].items()},
        targets=Targets(*d["targets"]),
        source_sha256=d["source_sha256"],
        source_text=d["source_text"],
        notes=tuple(ImportNote(n[0], n[1], n[2]) for n in d["notes"]),
    )


class ParsedCache:
    """The parsed checklists of a store, kept in the store itself."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> Checklist | None:
        data = self.store.parsed_checklist(key)
        if data is None:
            return None
        try:
            return from_data(json.loads(data))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None  # unreadable or not ours: parse afresh (put replaces it)

    def put(self, key: str, checklist: Checklist) -> None:
        """Save the parse of the text under `key`. Best effort: a store that refuses the write
        (read-only, full, busy past its timeout) only costs the next start a parse."""
        data = json.dumps(to_data(checklist), ensure_ascii=False)
        try:
            self.store.save_parsed_checklist(key, data)
        except Exception as exc:  # each backend raises its own driver's errors
            log.warning(
                "the parsed checklist was not kept (%s); the next start parses it again",
                type(exc).__name__,
            )
            return
        self._drop_old_file()

    def _drop_old_file(self) -> None:
        """Versions before the store kept the cache wrote it beside a SQLite store's file."""
        where = self.store.file()
        if where:
            with contextlib.suppress(OSError):
                os.unlink(where + "-parsed")
