"""Finds the checks: every module in checks/ that defines `CHECK` is one, built-ins included.

There is no central list to edit. Modules whose name starts with "_" and the machinery modules
below are helpers, not checks.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Iterable, Sequence

import checks
from checks.base import Check

_MACHINERY = frozenset({"base", "registry", "runner", "redact", "docs"})


class CheckRegistryError(Exception):
    """The checks in checks/ are inconsistent (duplicate id, id differs from module name)."""


_lock = threading.Lock()
_discovered: dict[str, Check] | None = None
_extra: dict[str, Check] = {}


def discover(package: str = "checks", path: Sequence[str] | None = None) -> dict[str, Check]:
    """The checks of one package (default: checks/), by id. The start-up rules: a module's
    CHECK is a Check, its id equals the module name, and no two modules share an id;
    CheckRegistryError otherwise. path is the package's directories (its __path__)."""
    search = list(path) if path is not None else list(importlib.import_module(package).__path__)
    found: dict[str, Check] = {}
    for info in sorted(pkgutil.iter_modules(search), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _MACHINERY or info.ispkg:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        check = getattr(module, "CHECK", None)
        if check is None:
            continue
        if not isinstance(check, Check):
            raise CheckRegistryError(f"{package}.{info.name}.CHECK is not a Check")
        if check.id != info.name:
            raise CheckRegistryError(
                f"check id {check.id!r} differs from its module name {info.name!r}"
            )
        if check.id in found:
            raise CheckRegistryError(f"two checks with the id {check.id!r}")
        found[check.id] = check
    return found


def all_checks() -> dict[str, Check]:
    """Every registered check by id, built-ins first then registered ones, sorted by id."""
    global _discovered
    with _lock:
        if _discovered is None:
            _discovered = discover("checks", checks.__path__)
        merged = {**_discovered, **_extra}
    return dict(sorted(merged.items()))


def get(check_id: str) -> Check | None:
    return all_checks().get(check_id)


def register(check: Check) -> None:
    """Add a check that does not live in checks/ (a user's own, or a test's)."""
    builtins = all_checks()
    with _lock:
        if check.id in builtins or check.id in _extra:
            raise CheckRegistryError(f"two checks with the id {check.id!r}")
        _extra[check.id] = check


def unregister(check_id: str) -> None:
    with _lock:
        _extra.pop(check_id, None)


def select(ids: Iterable[str] | None = None, section: str | None = None) -> list[Check]:
    """Checks by id (all when ids is None) and/or by section (case-insensitive substring)."""
    registered = all_checks()
    if ids is not None:
        chosen = [registered[i] for i in ids if i in registered]
    else:
        chosen = list(registered.values())
    if section:
        needle = section.lower()
        chosen = [c for c in chosen if needle in c.section.lower()]
    return chosen
