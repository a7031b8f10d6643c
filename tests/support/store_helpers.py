"""Small hand-built checklists for the store tests (no Markdown parser needed)."""

from __future__ import annotations

from bot.model import Checklist, Decision, Item, ItemKind, Option


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
