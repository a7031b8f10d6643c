"""Which checks verify which checklist items (bot/content/bindings.yml for the bundled list).

A check names the items it verifies by item id; an item bound to at least one check becomes
`automated`. Bindings to ids the checklist does not have are reported, not fatal, so a team's
own checklist can reuse the bundled bindings where its ids match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
        text = path.read_text("utf-8")
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(i, str) for i in v)
        for k, v in raw.items()
    ):
        raise BindingsError("bindings must map each check id to a list of item ids")
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
    return dataclasses.replace(checklist, items=items), missing
