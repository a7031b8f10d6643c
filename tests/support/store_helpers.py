"""Small hand-built checklists for the store tests (no Markdown parser needed), and the store
factory that runs the store suite on each backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.model import Checklist, Decision, Item, ItemKind, Option
from store import Store, open_database


def item(
    item_id: str,
    text: str | None = None,
    *,
    section: str = "Security",
    path: tuple[str, ...] | None = None,
    kind: ItemKind = ItemKind.MANUAL,
    line: int = 1,
    checks: tuple[str, ...] = (),
    decision_id: str | None = None,
) -> Item:
    return Item(
        id=item_id,
        section=section,
        path=path if path is not None else (section,),
        text=text if text is not None else f"Do {item_id}",
        kind=kind,
        line=line,
        checks=checks,
        decision_id=decision_id,
    )


def email_decision(*option_ids: str) -> Decision:
    labels = {"ses": "AWS SES", "sendgrid": "SendGrid", "mailgun": "Mailgun"}
    return Decision(
        id="email-service",
        topic="Email Service",
        question="Email provider",
        options=tuple(Option(o, labels.get(o, o.title()), (o,)) for o in option_ids),
        item_id="email-decision",
        aliases=("email",),
    )


def checklist(
    *items: Item,
    decisions: tuple[Decision, ...] | None = None,
    sha: str = "",
    title: str = "Pre-flight",
) -> Checklist:
    """A checklist of `items` (default: three manual items and the email decision item)."""
    if not items:
        items = (
            item("tls", "TLS certificate installed"),
            item("backups", "Automated backups enabled", section="Backup"),
            item("runbook", "On-call runbook reviewed", section="Team"),
            item("email-decision", "Decision needed: email", kind=ItemKind.DECISION,
                 decision_id="email-service"),
        )  # fmt: skip
    if decisions is None:
        decisions = (email_decision("ses", "sendgrid", "mailgun"),)
    sections = tuple(dict.fromkeys(i.section for i in items))
    return Checklist(
        title=title, sections=sections, items=items, decisions=decisions, source_sha256=sha
    )


# --- one store suite, two backends ---------------------------------------------------------

# "memory" and "file" are SQLite; "postgresql" a database of its own on a throwaway cluster.
BACKENDS = ("memory", "file", "postgresql")


class StoreFactory:
    """Opens stores of one backend for one test, and closes them after it."""

    def __init__(self, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.backend, self._request, self._tmp = backend, request, tmp_path
        self._target: str | None = None

    @property
    def target(self) -> str:
        """What Store.open takes for this test's database (the same for every call)."""
        if self._target is None:
            if self.backend == "postgresql":
                from tests.support.pg import fresh_store_url

                self._target = fresh_store_url(self._request.getfixturevalue("pg_store_cluster"))
            elif self.backend == "file":
                self._target = str(self._tmp / "preflight.db")
            else:
                self._target = ":memory:"
        return self._target

    def __call__(self, clock: Callable[[], datetime] | None = None) -> Store:
        """A store on this test's database (a new in-memory one for "memory")."""
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        if self.backend == "postgresql":
            from store.postgres import PostgresStore

            store: Store = PostgresStore(self.target, **kwargs)
        else:
            store = Store(open_database(self.target), **kwargs)
        self._request.addfinalizer(store.close)
        return store


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return StoreFactory(request.param, request, tmp_path)
