"""Checklist versions: every import that changed something is a new version; old versions stay so
that old events keep pointing at what was signed."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from store.base import Row, StoreBase, _at, _json, _ts
from store.errors import DuplicateItem
from store.records import ChecklistDoc, ChecklistVersion, ImportReport, ItemDoc


def content_sha256(checklist: ChecklistDoc) -> str:
    """Fingerprint of what the store keeps of a checklist (items and decisions, check bindings
    included), so that a bindings change with an unchanged document still makes a new version."""
    content = {
        "title": checklist.title,
        "items": [asdict(i) for i in checklist.items],  # type: ignore[call-overload]
        "decisions": [asdict(d) for d in checklist.decisions],  # type: ignore[call-overload]
    }
    canonical = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _item_row(version: int, position: int, item: ItemDoc, since_version: int) -> tuple[Any, ...]:
    return (
        *(version, item.id, position, item.section, _json([*item.path]), item.text),
        *(str(item.kind), item.line, int(item.checked), int(item.claimed), item.parent_id),
        *(item.decision_id, item.condition, _json([*item.details]), _json([*item.checks])),
        since_version,
    )


def _check_unique(checklist: ChecklistDoc) -> None:
    def dupes(ids: Iterable[str]) -> list[str]:
        return sorted(i for i, n in Counter(ids).items() if n > 1)

    if found := dupes(i.id for i in checklist.items):
        raise DuplicateItem(f"duplicate item ids: {', '.join(found)}")
    if found := dupes(d.id for d in checklist.decisions):
        raise DuplicateItem(f"duplicate decision ids: {', '.join(found)}")
    for d in checklist.decisions:
        if found := dupes(o.id for o in d.options):
            raise DuplicateItem(f"decision {d.id}: duplicate option ids: {', '.join(found)}")


class ChecklistStore(StoreBase):
    def import_checklist(
        self,
        checklist: ChecklistDoc,
        *,
        source: str = "cli",
        origin: str = "",
        imported_by: str = "",
        bindings: dict[str, list[str]] | None = None,
        notes: list[dict[str, object]] | None = None,
    ) -> ImportReport:
        """Store `checklist` as a new version unless it matches the current one.

        The version keeps the document's text (`checklist.source_text`, already masked), its
        origin, who imported it and the bindings applied, so that any process can rebuild it.
        An item's sign-offs carry over to the new version while its text is unchanged (a move to
        another section or a new check binding keeps them); once its text changes, only
        sign-offs made from then on count. A removed item is archived (its rows stay in the
        older versions): re-added with the same text, it comes back with its sign-offs.
        """
        _check_unique(checklist)
        content = content_sha256(checklist)
        sha = checklist.source_sha256 or content
        items = checklist.items
        with self._write():
            current = self._one(
                "SELECT version, sha256, content_sha256 FROM checklist_versions "
                "ORDER BY version DESC LIMIT 1"
            )
            same = bool(
                current and current["sha256"] == sha and current["content_sha256"] == content
            )
            if current and same and (self._has_text() or not checklist.source_text):
                return ImportReport(
                    version=current["version"],
                    added=[],
                    changed=[],
                    removed=[],
                    unchanged=len(items),
                    decisions=len(checklist.decisions),
                    first_import=False,
                    new_version=False,
                )
            previous: dict[str, Row] = {}
            if current:
                rows = self._all(
                    "SELECT id, text, kind, path, since_version FROM items "
                    "WHERE version = ? ORDER BY position",
                    (current["version"],),
                )
                previous = {r["id"]: r for r in rows}
            version = current["version"] + 1 if current else 1
            self._exec(
                "INSERT INTO checklist_versions "
                "(version, sha256, content_sha256, title, imported_at, source, source_text, "
                "origin, imported_by, bindings, notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *(version, sha, content, checklist.title, _ts(self._clock()), source),
                    *(checklist.source_text or None, origin, imported_by),
                    *(_json(bindings or {}), _json(notes or [])),
                ),
            )
            added: list[str] = []
            changed: list[str] = []
            item_rows = []
            for position, item in enumerate(items):
                since = version
                old = previous.get(item.id)
                if old is None:
                    added.append(item.id)
                    archived = self._one(
                        "SELECT text, since_version FROM items WHERE id = ? "
                        "ORDER BY version DESC LIMIT 1",
                        (item.id,),
                    )
                    if archived and archived["text"] == item.text:
                        since = archived["since_version"]
                else:
                    if old["text"] == item.text:
                        since = old["since_version"]
                    was = (old["text"], old["kind"], json.loads(old["path"]))
                    if was != (item.text, item.kind, [*item.path]):
                        changed.append(item.id)
                item_rows.append(_item_row(version, position, item, since))
            self._many(
                "INSERT INTO items (version, id, position, section, path, text, kind, line, "
                "checked, claimed, parent_id, decision_id, condition, details, checks, "
                "since_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                item_rows,
            )
            self._many(
                "INSERT INTO decisions (version, id, position, topic, question, item_id, aliases) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (version, d.id, n, d.topic, d.question, d.item_id, _json(list(d.aliases)))
                    for n, d in enumerate(checklist.decisions)
                ],
            )
            self._many(
                "INSERT INTO decision_options (version, decision_id, id, position, label, aliases) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (version, d.id, o.id, n, o.label, _json(list(o.aliases)))
                    for d in checklist.decisions
                    for n, o in enumerate(d.options)
                ],
            )
            now_ids = {i.id for i in items}
            return ImportReport(
                version=version,
                added=added,
                changed=changed,
                removed=[i for i in previous if i not in now_ids],
                unchanged=len(items) - len(added) - len(changed),
                decisions=len(checklist.decisions),
                first_import=current is None,
            )

    def _has_text(self) -> bool:
        row = self._one(
            "SELECT source_text IS NOT NULL AS has_text FROM checklist_versions "
            "ORDER BY version DESC LIMIT 1"
        )
        return bool(row and row["has_text"])

    _VERSION_COLUMNS = (
        "v.version, v.sha256, v.title, v.origin, v.imported_at, v.imported_by, v.source, "
        "(SELECT COUNT(*) FROM items i WHERE i.version = v.version) AS items, v.bindings, v.notes"
    )

    def _version_record(self, row: Row, text: str | None) -> ChecklistVersion:
        return ChecklistVersion(
            version=row["version"],
            sha256=row["sha256"],
            title=row["title"],
            origin=row["origin"],
            imported_at=_at(row["imported_at"]),
            imported_by=row["imported_by"],
            source=row["source"],
            items=row["items"],
            source_text=text,
            bindings=json.loads(row["bindings"]),
            notes=json.loads(row["notes"]),
        )

    def current_checklist(self) -> ChecklistVersion | None:
        """The current version with its document text (None for a fresh store)."""
        with self._read():
            row = self._one(
                f"SELECT {self._VERSION_COLUMNS}, v.source_text FROM checklist_versions v "  # noqa: S608
                "ORDER BY v.version DESC LIMIT 1"
            )
        return None if row is None else self._version_record(row, row["source_text"])

    def checklist_history(self) -> list[ChecklistVersion]:
        """Every stored version, newest first, without the document texts."""
        with self._read():
            rows = self._all(
                f"SELECT {self._VERSION_COLUMNS} FROM checklist_versions v "  # noqa: S608
                "ORDER BY v.version DESC"
            )
        return [self._version_record(r, None) for r in rows]

    def current_version(self) -> int | None:
        with self._read():
            return self._version()

    def current_item_ids(self) -> set[str]:
        with self._read():
            rows = self._all(
                "SELECT id FROM items WHERE version = (SELECT MAX(version) FROM checklist_versions)"
            )
        return {r["id"] for r in rows}
