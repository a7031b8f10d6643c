"""`preflight`: the same engine as the Slack app, from a terminal or CI.

Exit codes: 0 ok / ready, 1 blocked (gate), 2 bad input or error (one clear line on stderr).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

# Everything else is imported where a command needs it: `preflight --help` or `gate` should
# not pay for pydantic settings, sqlite-utils, markdown-it, boto3 or rich (perf, issue 11).
if TYPE_CHECKING:
    from rich.console import Console

    from bot.model import Checklist, ImportNote
    from bot.readiness import Readiness
    from bot.services import Services
    from checks.base import Result

app = typer.Typer(
    help="Preflight: a live, self-verifying launch checklist (terminal, CI and Slack).",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")


class _LazyConsole:
    """A rich Console made on first use (importing rich costs more than a short command)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out: Any = _LazyConsole()
err: Any = _LazyConsole(stderr=True)


def _print_json(data: Any) -> None:
    """JSON on stdout as rich's print_json wrote it (indent 2, UTF-8 kept), by the standard
    library: at 20,000 items rich spent most of `status --json` highlighting it."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite store (default: $PREFLIGHT_DB or ./preflight.db)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
UserOption = Annotated[str, typer.Option("--as", help="Who is doing this (recorded)")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"preflight: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _edge() -> Iterator[None]:
    """Turn the domain's named errors into one clear line and exit code 2."""
    from bot.bindings import BindingsError
    from bot.checklist import ChecklistError
    from bot.errors import AmbiguousRef, PreflightError
    from store.errors import StoreError

    try:
        yield
    except AmbiguousRef as exc:
        fail(f"{exc} Candidates: {', '.join(exc.candidates)}")
    except (PreflightError, ChecklistError, BindingsError, StoreError) as exc:
        fail(str(exc))


def _services(db: Path | None, *, bootstrap: bool = True) -> Services:
    from bot.services import Services
    from bot.settings import Settings

    settings = Settings()
    if db is not None:
        settings.preflight_db = str(db)
    with _edge():
        return Services.from_settings(settings, bootstrap=bootstrap)
    raise AssertionError("unreachable")


def _run_checks_with_progress(services: Services, checks: list[Any], active: bool) -> list[Result]:
    if not out.is_terminal:
        return services.run_checks(checks, allow_active=active)
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True
    ) as p:
        task = p.add_task(f"running {len(checks)} checks…", total=len(checks))

        def advance(result: Result) -> None:
            p.update(task, advance=1, description=f"{result.check_id}: {result.status.value}")

        return services.run_checks(checks, on_result=advance, allow_active=active)


def _readiness(db: Path | None, cached: bool, services: Services | None = None) -> Readiness:
    """Readiness after running the (non-active) checks bound to current items, or from stored
    results only."""
    services = services or _services(db)
    if not cached:
        _run_checks_with_progress(services, services.bound_checks(), active=False)
    return services.readiness()


def _checklist_line(info: dict[str, Any]) -> str:
    if not info:
        return "Checklist: none"
    by = f" by {info['imported_by']}" if info.get("imported_by") else ""
    source = Path(info["source"]).name or info["source"]  # the full path is in --json
    return (
        f"Checklist: {info['title'] or '(untitled)'} — {source}, version "
        f"{info['version']}, imported {str(info['imported_at'])[:16].replace('T', ' ')} UTC{by}"
    )


def _line(text: str) -> None:
    """One line of plain text, never wrapped or styled by rich (we fit it ourselves)."""
    from bot import messages

    body = text.lstrip()
    indent = text[: len(text) - len(body)]
    line = indent + messages.shorten(body, messages.TERMINAL_WIDTH - len(indent))
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_groups(r: Readiness, limit: int) -> None:
    """Blockers grouped by cause, each with its next action; at most `limit` groups."""
    from bot import messages

    groups = r.blocker_groups
    for g in groups[:limit]:
        _line(messages.group_line(g, indent="  • "))
        _line(messages.action_line(g, indent="      "))
    if len(groups) > limit:
        _line(messages.more_groups(len(groups) - limit))


def _print_extras(r: Readiness) -> None:
    """What is done only by an override, and what advisory checks say: never hidden."""
    for s in r.overridden:
        _line(f"  ! {s.item.id} OVERRIDDEN — {s.reason}")
    for a in r.advisories:
        _line(f"  i advisory (does not block): {a.check_id} {a.status.value}: {a.summary}")


def _print_status(r: Readiness) -> None:
    from rich.table import Table

    from bot import messages

    out.print(f"[bold]{messages.headline(r)}[/bold]", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("Section", max_width=60, overflow="ellipsis")
    table.add_column("Done", justify="right")
    table.add_column("Progress")
    for s in r.sections:
        table.add_row(s.title, f"{s.done}/{s.applicable}", messages.bar(s.percent, width=20))
    out.print(table)
    out.print(
        f"Decisions: {len(r.decisions_open)} open, {len(r.decisions_closed)} closed · "
        f"Runbooks: {r.runbooks}"
    )
    _print_extras(r)
    if r.blockers or r.nothing_to_verify:
        groups = r.blocker_groups
        out.print(
            f"[bold]Top blockers[/bold] ({len(r.blockers)} items, {len(groups)} causes):",
            highlight=False,
        )
        _print_groups(r, 10)


@app.callback(invoke_without_command=True)
def main_job(ctx: typer.Context, db: DbOption = None) -> None:
    """With Slack tokens set: serve Slack. Without: print the readiness report."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.settings import Settings

    settings = Settings()
    if settings.slack_enabled:
        from bot.serve import serve

        with _edge():  # a damaged or unopenable store stops the bot before it serves anyone
            serve(settings, http=not settings.socket_mode)
        return
    services = _services(db)
    readiness = _readiness(db, False, services)
    _line(_checklist_line(services.checklist_info()))
    _print_status(readiness)
    _say(
        "\nYour own checklist: preflight import FILE (see README, “Bring your own checklist”)."
        "\nConnect Slack: create the app from manifest.yml, then set SLACK_BOT_TOKEN and"
        "\nSLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP), and run again."
    )


@app.command()
def status(
    db: DbOption = None,
    as_json: JsonOption = False,
    cached: Annotated[bool, typer.Option("--cached", help="Use stored check results only")] = False,
) -> None:
    """Per-section progress, totals, the gate verdict and its blockers."""
    services = _services(db)
    readiness = _readiness(db, cached, services)
    info = services.checklist_info()
    if as_json:
        _print_json({**readiness.to_dict(), "checklist": info})
    else:
        _line(_checklist_line(info))
        _print_status(readiness)


@app.command()
def gate(
    db: DbOption = None,
    cached: Annotated[bool, typer.Option("--cached", help="Use stored check results only")] = False,
) -> None:
    """Exit 0 when ready to deploy, 1 when blocked (blockers printed), 2 on error."""
    from bot import messages
    from bot.readiness import Gate

    readiness = _readiness(db, cached)
    if readiness.gate is Gate.READY:
        out.print("READY TO DEPLOY")
        _print_extras(readiness)
        raise typer.Exit(0)
    if readiness.nothing_to_verify:
        _line(messages.nothing_to_verify())
    else:
        groups = readiness.blocker_groups
        _line(f"BLOCKED: {len(readiness.blockers)} items, {len(groups)} causes")
    _print_groups(readiness, messages.GATE_GROUPS)
    _print_extras(readiness)
    raise typer.Exit(1)


@app.command()
def check(
    ids: Annotated[
        list[str] | None, typer.Argument(help="Check ids or a section (default all)")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    list_: Annotated[bool, typer.Option("--list", help="List checks and their settings")] = False,
    active: Annotated[bool, typer.Option("--active", help="Also run opt-in active checks")] = False,
) -> None:
    """Run readiness checks now (all, by id, or by section); exit 1 if any fails or errors."""
    services = _services(db)
    if list_:
        _list_checks(services, as_json)
        return
    with _edge():
        selected: list[Any] = []
        for ref in ids or ["all"]:
            selected.extend(c for c in services.checks_for(ref) if c not in selected)
    results = _run_checks_with_progress(services, selected, active)
    if as_json:
        _print_json([_result_json(r) for r in results])
    else:
        _print_results(results)
    from checks.base import Status

    if any(r.status in (Status.FAIL, Status.ERROR) for r in results):
        raise typer.Exit(1)


def _print_results(results: list[Result]) -> None:
    from bot import messages

    for r in results:
        style = messages.STATUS_STYLE.get(r.status, "")
        out.print(f"[{style}]{r.status.value:7}[/{style}] {r.check_id}: ", end="")
        out.print(r.summary, markup=False, highlight=False)


def _result_json(r: Result) -> dict[str, Any]:
    d = r.to_dict()
    keys = ("id", "status", "summary", "observations", "evidence", "duration_ms", "remediation")
    return {k: d[k] for k in keys}


def _list_checks(services: Services, as_json: bool) -> None:
    from checks import registry

    checks = registry.all_checks().values()
    bound: dict[str, list[str]] = {}
    for item in services.checklist.items:
        for check_id in item.checks:
            bound.setdefault(check_id, []).append(item.id)
    if as_json:
        _print_json(
            [
                {
                    "id": c.id,
                    "title": c.title,
                    "section": c.section,
                    "settings": list(c.settings),
                    "active": c.active,
                    "blocking": c.blocking,
                    "items": bound.get(c.id, []),
                }
                for c in checks
            ]
        )
        return
    from rich.table import Table

    table = Table("id", "title", "settings", "bound items", box=None)
    for c in checks:
        items = bound.get(c.id, [])
        shown = ", ".join(items[:3]) + (f" (+{len(items) - 3})" if len(items) > 3 else "")
        table.add_row(
            c.id + (" (opt-in)" if c.active else ""),
            c.title,
            ", ".join(c.settings),
            shown or "— (not run by status)",
        )
    out.print(table)


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


_NOTE_WORDS = {
    "html_checkbox": "HTML checkbox not read as an item",
    "empty_item": "checkbox with no text: not read",
    "before_heading": "item before the first heading",
    "decision_unread": (
        "decision not read (write `- [ ] **Decision needed**: Topic (A / B)`, or number it "
        "`1. **Topic**` with options as sub-items in a DECISION section)"
    ),
}


@app.command(name="import")
def import_(
    path: Annotated[Path, typer.Argument(help="A Markdown checklist")],
    db: DbOption = None,
    user: Annotated[str, typer.Option("--as", help="Who imports it (recorded)")] = "",
    bindings: Annotated[
        Path | None, typer.Option("--bindings", help="Bindings file (default $PREFLIGHT_BINDINGS)")
    ] = None,
) -> None:
    """Make FILE the current checklist for every later command and the running bot."""
    from bot.services import read_checklist_text

    with _edge():
        text = read_checklist_text(path)  # refuse a non-checklist before a store is opened
    # A fresh store takes this file as its first version, not the bundled checklist first.
    services = _services(db, bootstrap=False)
    if bindings is not None:
        services.settings.preflight_bindings = bindings
    with _edge():
        # All validation before the store is touched (the file is read once).
        prepared = services.prepare_text(text, str(path), display=str(path))
        report = services.commit(prepared, imported_by=user or os.environ.get("USER", ""))
    if not report.new_version:
        _say(f"{path.name} is already the current checklist (version {report.version}).")
    else:
        _say(
            f"Imported {path.name}: version {report.version}, {len(report.added)} added, "
            f"{len(report.changed)} changed, {len(report.removed)} removed (archived), "
            f"{report.unchanged} unchanged."
        )
    for label, ids in (("removed", report.removed), ("changed", report.changed)):
        for item_id in ids[:20]:
            _say(f"  {label}: {item_id}")
    _print_import_notes(prepared.notes, prepared.checklist)
    if services.missing_bindings:
        _say(
            f"  {len(services.missing_bindings)} check bindings name items not in this "
            f"checklist: {', '.join(services.missing_bindings[:5])}"
        )


def _print_import_notes(notes: Sequence[ImportNote], checklist: Checklist) -> None:
    claims = [i for i in checklist.items if i.claimed]
    if claims:
        _say(
            f"  {len(claims)} items ticked in the file: imported as claims, not done "
            "(review, then `preflight signoff --claimed --as YOU --note ...`)"
        )
    credentials = [n for n in notes if n.kind == "credential"]
    if credentials:
        lines = ", ".join(str(n.line) for n in credentials)
        plural = "s" if len(credentials) > 1 else ""
        _say(
            f"  {len(credentials)} plaintext credential{plural} (line{plural} {lines}): "
            "rotate them; they are masked in the store, views and exports"
        )
    for kind, words in _NOTE_WORDS.items():
        found = [n for n in notes if n.kind == kind]
        if found:
            lines = ", ".join(str(n.line) for n in found[:20])
            more = f" (+{len(found) - 20})" if len(found) > 20 else ""
            _say(f"  {len(found)} × {words}: line {lines}{more}")


checklist_app = typer.Typer(help="The current checklist and its versions.", no_args_is_help=True)
app.add_typer(checklist_app, name="checklist")
bindings_app = typer.Typer(help="Which checks verify which items.", no_args_is_help=True)
app.add_typer(bindings_app, name="bindings")


@checklist_app.command("history")
def checklist_history(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every imported version: when, by whom, from where, how many items."""
    services = _services(db)
    rows: list[dict[str, Any]] = [
        {
            "version": v.version,
            "title": v.title,
            "source": v.origin,
            "imported_at": v.imported_at.isoformat(),
            "imported_by": v.imported_by,
            "items": v.items,
            "current": v.version == (services.version.version if services.version else None),
        }
        for v in services.checklist_history()
    ]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        mark = "*" if r["current"] else " "
        by = f" by {r['imported_by']}" if r["imported_by"] else ""
        _say(
            f"{mark} v{r['version']:<3} {r['imported_at'][:16].replace('T', ' ')} UTC{by}: "
            f"{r['source'] or '?'} ({r['items']} items)"
        )


@bindings_app.command("suggest")
def bindings_suggest(db: DbOption = None) -> None:
    """Print a proposed bindings file for the current checklist, from the items' words."""
    from bot.bindings import suggestion_yaml
    from checks import registry

    services = _services(db)
    sys.stdout.write(suggestion_yaml(services.checklist, registry.all_checks()))


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="markdown or json")] = "markdown",
    db: DbOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Export the checklist with its sign-offs (Markdown) or as data (JSON)."""
    if fmt not in ("markdown", "json"):
        fail(f"unknown format “{fmt}”: use markdown or json")
    services = _services(db)
    if fmt == "json":
        text = json.dumps(services.export_json(), indent=2, default=str)
    else:
        text = services.export_markdown()
    if output:
        output.write_text(text, "utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def signoff(
    user: UserOption,
    item: Annotated[str | None, typer.Argument(help="Item id or words")] = None,
    db: DbOption = None,
    note: Annotated[str, typer.Option(help="Evidence or a remark")] = "",
    na: Annotated[
        str | None, typer.Option("--na", help="Mark not applicable, with a reason")
    ] = None,
    claimed: Annotated[
        bool, typer.Option("--claimed", help="Accept every claim (ticked in the file) at once")
    ] = False,
    override: Annotated[
        bool, typer.Option("--override", help="Done whatever its checks say (needs --reason)")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, for --override")] = "",
) -> None:
    """Sign off an item (or mark it not applicable, or override its checks), or every claim
    after review (--claimed)."""
    if claimed:
        _signoff_claims(db, user, note, item, na)
        return
    if item is None:
        fail("give an item to sign off, or --claimed")
    services = _services(db)
    ref: str = item
    if override:
        # The terminal runs with the operator's own access: trusted, like `decide`.
        found = _call(lambda: services.override(ref, user, reason, authorized=True))
        _line(
            f"Overrode {found.id} as {user.strip()}: done as “overridden”, whatever its checks say."
        )
        return
    if reason:
        fail("--reason goes with --override (a sign-off takes --note)")
    signed = _call(lambda: services.signoff(ref, user, note=note, na_reason=na))
    _line(f"Signed off {signed.id} as {user.strip()}.")
    state = _call(lambda: services.item_state(signed.id))
    if not state.done:
        from bot import messages

        # Stored, and said plainly: a sign-off does not outvote a check.
        _line(f"{signed.id} is {messages.still_blocked(state)}")


@app.command()
def accept(
    item: Annotated[str, typer.Argument(help="An item, or a check id for every item it holds")],
    user: UserOption,
    reason: Annotated[str, typer.Option("--reason", help="Why this risk is acceptable")] = "",
    db: DbOption = None,
) -> None:
    """Accept a WARN result: the item passes until the check says something else."""
    services = _services(db)
    accepted = _call(lambda: services.accept(item, user, reason, authorized=True))
    for a in accepted:
        _line(f"Accepted {a.check_id} {a.status} for {a.item_id} as {a.user}.")
    _line("A different result from the check will need a new acceptance.")


def _signoff_claims(
    db: Path | None, user: str, note: str, item: str | None, na: str | None
) -> None:
    if item is not None or na is not None:
        fail("--claimed signs off every claim: give no item and no --na")
    if not user.strip():
        fail("--as needs a name")
    if not note.strip():
        fail('--claimed needs --note "what you reviewed"')
    services = _services(db)
    accepted = _call(lambda: services.accept_claims(user.strip(), note.strip()))
    if not accepted:
        _say("No claims waiting for a sign-off.")
        return
    _say(f"Signed off {len(accepted)} claimed items as {user.strip()}:")
    for found in accepted[:20]:
        _say(f"  {found.id}")
    if len(accepted) > 20:
        _say(f"  … {len(accepted) - 20} more")


@app.command()
def unsign(item: str, user: UserOption, db: DbOption = None) -> None:
    """Withdraw your sign-off of an item."""
    services = _services(db)
    found, removed = _call(lambda: services.unsign(item, user))
    if not removed:
        fail(f"{user} has no sign-off on {found.id}")
    out.print(f"Withdrew {user}'s sign-off of {found.id}.", markup=False, highlight=False)


@app.command()
def vote(topic: str, option: str, user: UserOption, db: DbOption = None) -> None:
    """Vote for an option of an open decision (one vote per person, changeable)."""
    services = _services(db)
    decision, chosen = _call(lambda: services.vote(topic, option, user))
    out.print(f"{user} votes {chosen.label} on {decision.topic}.", markup=False, highlight=False)


@app.command()
def decide(
    topic: str,
    option: str,
    user: UserOption,
    db: DbOption = None,
    rationale: Annotated[str, typer.Option(help="Why this option")] = "",
) -> None:
    """Close a decision with the chosen option (the terminal is trusted as a decider)."""
    services = _services(db)
    decision, chosen = _call(
        lambda: services.close_decision(topic, option, user, rationale, authorized=True)
    )
    out.print(f"{decision.topic}: decided {chosen.label}.", markup=False, highlight=False)


@app.command()
def record(topic: str, db: DbOption = None) -> None:
    """Print a decision's record (MADR Markdown): options, votes, outcome, rationale."""
    from bot.decisions import record_markdown

    services = _services(db)
    decision = _call(lambda: services.find_decision(topic))
    text = record_markdown(
        decision, services.store.decision_state(decision.id), services.store.votes(decision.id)
    )
    sys.stdout.write(text)


@app.command()
def decisions(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Open and closed decisions with their options and votes."""
    from bot.decisions import option_label, tally

    services = _services(db)
    states = services.store.decision_states()
    rows: list[dict[str, Any]] = []
    for d in services.checklist.decisions:
        st = states.get(d.id)
        votes = services.store.votes(d.id)
        rows.append(
            {
                "id": d.id,
                "topic": d.topic,
                "status": st.status if st else "open",
                "chosen": option_label(d, st.chosen) if st else None,
                "votes": {label: count for label, count, _ in tally(d, votes)},
            }
        )
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in row["votes"].items())
        chosen = f" → {row['chosen']}" if row["chosen"] else ""
        out.print(
            f"{row['id']:22} {row['status']:9}{chosen}  [{counts}]", markup=False, highlight=False
        )


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="HTTP mode instead of Socket Mode")] = False,
    port: Annotated[int, typer.Option(help="HTTP port")] = 3000,
) -> None:
    """Serve Slack: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on /slack/events."""
    from bot.serve import serve as run_server
    from bot.settings import Settings

    settings = Settings()
    if not settings.slack_enabled:
        fail("SLACK_BOT_TOKEN is not set: see README, “Connect Slack”")
    with _edge():  # a damaged or unopenable store stops the bot before it serves anyone
        run_server(settings, http=http or not settings.socket_mode, port=port)


store_app = typer.Typer(help="Maintain the store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check(db: DbOption = None) -> None:
    """Run SQLite's integrity check on the store: exit 0 sound, 2 damaged (one line each)."""
    from bot.settings import Settings
    from store.db import integrity_problems, open_database

    path = str(db) if db is not None else Settings().preflight_db
    if path != ":memory:" and not Path(path).expanduser().is_file():
        fail(f"no store at {path}")
    with _edge():
        database = open_database(path)
    problems = integrity_problems(database, limit=20)
    database.close()
    if problems:
        for problem in problems:
            err.print(f"preflight: {path}: {problem}", markup=False, highlight=False)
        raise typer.Exit(2)
    out.print(f"{path}: ok", markup=False, highlight=False)


@store_app.command("copy")
def store_copy(
    source: Annotated[str, typer.Argument(help="SQLite file or postgresql:// URL to copy")],
    target: Annotated[str, typer.Argument(help="An empty store: SQLite file or postgresql:// URL")],
) -> None:
    """Copy a whole store to another backend (SQLite <-> PostgreSQL), verified row for row."""
    from store import Store
    from store.copy import copy_store

    if not source.startswith(("postgresql://", "postgres://")) and not Path(source).is_file():
        fail(f"no store at {source}")
    with _edge(), Store.open(source) as src, Store.open(target) as dst:
        copied = copy_store(src, dst)
    rows = sum(copied.values())
    message = f"copied {rows} rows in {len(copied)} tables; the exports match"
    out.print(message, markup=False, highlight=False)


def _call(fn: Callable[[], T]) -> T:
    with _edge():
        return fn()
    raise AssertionError("unreachable")


def main() -> None:
    from bot.logs import configure_logging

    configure_logging(os.environ, logging.WARNING)
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:
        # Exit 2 is "error" for CI (gate uses 0 ready / 1 blocked); the detail goes to the log,
        # redacted, and the person gets one line.
        logging.getLogger("preflight.cli").debug("unexpected error", exc_info=True)
        from checks.redact import Redactor

        err.print(
            f"preflight: unexpected error: {type(exc).__name__}: "
            f"{Redactor.from_env(os.environ).text(str(exc))}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)
