"""Import a Markdown checklist into the model (see bot/model.py).

What becomes what:

- `##` headings are sections; `###`/`####`... are subsections. An item's `path` is the headings
  from its `##` section down to its own subsection. Items before the first `##` heading (or under
  the `#` title only) belong to section "" and have an empty path; the `#` heading is the title.
- Checkbox list items (`- [ ]`, `* [x]`, `+ [X]`, `1. [ ]`, nested at any depth) are items.
  Non-checkbox sub-bullets and later paragraphs of an item are its `details`.
- "**Decision needed**: X (A / B / C)" items are decisions; so are the numbered entries of a
  section whose title contains DECISION ("1. **Topic**" with option sub-items; these options are
  not items). The two are merged by option overlap, then topic words.
- Numbered (non-checkbox) steps under the headings of sections whose title contains EMERGENCY
  PROCEDURES, QUICK START or RUNBOOK are runbooks. Fenced blocks are verify blocks (labelled by
  a bold paragraph just before them), except blocks of `NAME=value` lines under a heading that
  mentions `.env` (or fenced as `env`/`dotenv`): those are env templates, names only.
- Item ids: an explicit `<!-- id: x -->` wins, else slug of the nearest heading + "/" + slug of
  the text, "-2", "-3"... for repeats. Editing elsewhere in the document never changes an id.
  Runbook headings and tracked decisions take an explicit `<!-- id: x -->` the same way.

The Markdown export (bot/export.py) appends " — signed off by NAME (YYYY-MM-DD HH:MM UTC)" and
"Sign-off note (NAME): ..." details; both are recognised and dropped here so a round trip is exact.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import textwrap
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

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

__all__ = [
    "ENRICH_RULES",
    "ChecklistError",
    "EnrichRule",
    "ItemDiff",
    "diff_items",
    "find_decision",
    "find_option",
    "load_bundled",
    "load_runbook_files",
    "parse_checklist",
    "plain_text",
    "read_checklist_file",
    "runbook_id",
    "slugify",
]

SLUG_MAX = 48
PLAIN_MAX = 2000  # characters of a text that its slug, label or topic is made from
MAX_CHECKLIST_BYTES = 2_000_000


class ChecklistError(Exception):
    """A checklist or runbook file cannot be read as Markdown text."""


# Block structure only: item text stays Markdown source, so the inline pass is not needed and
# skipping it halves the parse time of the bundled checklist.
_BLOCK_MD = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])
_INLINE_MD = MarkdownIt("commonmark")

_CHECKBOX = re.compile(r"\[([ xX])\](?:[ \t]+(.*)|[ \t]*$)", re.DOTALL)
# Patterns are written to stay linear on hostile input: no leading \s* in searched patterns,
# bounded lazy groups, names that cannot swallow the next time stamp.
_ID_COMMENT = re.compile(r"<!--\s*id:\s*([^<>]{0,200}?)\s*-->", re.IGNORECASE)
_VALID_ID = re.compile(r"[a-z0-9][a-z0-9/_.-]*")
_CHECK_COMMENT = re.compile(r"<!--\s*checks?:\s*([^<>]{0,500}?)\s*-->", re.IGNORECASE)
_NOTIFY_COMMENT = re.compile(r"<!--\s*notify:\s*([^<>]{0,500}?)\s*-->", re.IGNORECASE)
_QUORUM_COMMENT = re.compile(r"<!--\s*quorum:\s*([0-9]{1,4})\s*-->", re.IGNORECASE)
_CLAIMED_COMMENT = "<!-- claimed -->"  # the export's mark for a ticked item not (yet) done
_HTML_CHECKBOX = re.compile(r"<input\b[^<>]{0,300}?type=[\"']?checkbox", re.IGNORECASE)
_TABLE_BOX = re.compile(r"\[([ xX])\]")  # fullmatch of a table row's first cell
_NOTE_DETAIL = re.compile(r"^(?:Sign-off note|Not applicable|Overridden|Override) \(.+?\):")
_STAMP = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"
_SIGNOFF_MARK = "— signed off by "
_SIGNOFF_NAME = rf"(?:(?!\({_STAMP}\))[^\n]){{1,200}}?"
_SIGNOFF_ENTRIES = re.compile(
    rf"{_SIGNOFF_NAME} \({_STAMP}\)(?:, {_SIGNOFF_NAME} \({_STAMP}\))*[ \t]*"
)
_DECISION_NEEDED = re.compile(
    r"^(?:\*\*|__)?\s*decision needed\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.+)$",
    re.IGNORECASE | re.DOTALL,
)
_BOLD_LABEL = re.compile(r"(?:\*\*|__)(.{1,200}?)(?:\*\*|__)[ \t]*:?", re.DOTALL)  # fullmatch
_BOLD_TOPIC = re.compile(r"^(?:\*\*|__)(.+?)(?:\*\*|__)\s*:?\s*(.*)$", re.DOTALL)
_CONDITION = re.compile(r"\((if\b[^()]{0,200}|optional)\)", re.IGNORECASE)
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
_STEP_PREFIX = re.compile(r"^step\s+\d+\s*[:.\-–—]\s*", re.IGNORECASE)
_TRAILING_PARENS = re.compile(r"\(([^()]{1,40})\)$")
_DURATION = re.compile(r"[\d.,\-–~ ]+ ?(?:min|mins|minutes?|hours?|hrs?|h|days?|d|weeks?)", re.I)

_RUNBOOK_SECTIONS = ("EMERGENCY PROCEDURES", "QUICK START", "RUNBOOK")
_DECISION_SECTION = "DECISION"


# ---- slugs and plain text -------------------------------------------------------------------


@lru_cache(maxsize=4096)
def plain_text(markdown: str) -> str:
    """The text a reader sees: code keeps its content, markers, link targets and HTML go."""
    out: list[str] = []
    for block in _INLINE_MD.parseInline(markdown):
        for tok in block.children or ():
            if tok.type in ("text", "text_special", "code_inline"):
                out.append(tok.content)
            elif tok.type in ("softbreak", "hardbreak"):
                out.append(" ")
            elif tok.type == "image":
                out.append("".join(c.content for c in tok.children or ()))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _plain(markdown: str) -> str:
    # Labels, topics and slugs only need the start of a text; Markdown's inline parser is slow on
    # hostile megabyte-long paragraphs.
    return plain_text(markdown[:PLAIN_MAX])


@lru_cache(maxsize=8192)
def slugify(text: str) -> str:
    """Lower-case ASCII words joined by "-", at most 48 characters, cut at a "-" boundary.

    Markdown is stripped first (inline code keeps its content, link targets and HTML go) and the
    text is NFKD-normalised with non-ASCII dropped, so emoji and ✅ vanish. Only the first
    2000 characters count.
    """
    # Only links, HTML, entities and escapes change the words; anything else is punctuation
    # that becomes "-" anyway, so most texts skip the Markdown parser.
    text = text[:PLAIN_MAX]
    source = plain_text(text) if any(c in text for c in "[<&\\") else text
    ascii_text = unicodedata.normalize("NFKD", source).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) <= SLUG_MAX:
        return slug
    head = slug[:SLUG_MAX]
    if slug[SLUG_MAX] != "-":
        cut = head.rfind("-")
        if cut > 0:
            head = head[:cut]
    return head.strip("-")


def _join_lines(content: str) -> str:
    return " ".join(part.strip() for part in content.split("\n")).strip()


def _check_ids(text: str) -> tuple[str, tuple[str, ...]]:
    """Text without its `<!-- check: a, b -->` comments, and the check ids they name."""
    if "<!--" not in text:
        return text, ()
    found: list[str] = []
    for match in _CHECK_COMMENT.finditer(text):
        found += [c.strip() for c in match.group(1).split(",") if c.strip()]
    if found:
        text = _CHECK_COMMENT.sub(" ", text)
        text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return text, tuple(dict.fromkeys(found))


def _quorum(text: str) -> tuple[str, int | None]:
    """Text without its `<!-- quorum: N -->` comment, and N (a decision's votes to close)."""
    match = _QUORUM_COMMENT.search(text) if "<!--" in text else None
    if match is None:
        return text, None
    rest = (text[: match.start()].rstrip() + " " + text[match.end() :].lstrip()).strip()
    return rest, int(match.group(1))


def _strip_claim(text: str) -> tuple[str, bool]:
    if _CLAIMED_COMMENT not in text:
        return text, False
    return re.sub(r"[ \t]{2,}", " ", text.replace(_CLAIMED_COMMENT, " ")).strip(), True


def _strip_annotations(text: str) -> tuple[str, str | None]:
    """Text without the `<!-- id: x -->` comment and the export's sign-off suffix; the id.

    The last id comment counts: the export writes its own last, after any text a person typed."""
    text, explicit, _ = _annotations(text)
    return text, explicit


def _annotations(text: str) -> tuple[str, str | None, bool]:
    """_strip_annotations, and whether the export's sign-off suffix was there."""
    explicit: str | None = None
    matches = list(_ID_COMMENT.finditer(text)) if "<!--" in text else []
    if matches:
        match = matches[-1]
        candidate = match.group(1)
        if _VALID_ID.fullmatch(candidate):
            explicit = candidate
        text = (text[: match.start()].rstrip() + " " + text[match.end() :].lstrip()).strip()
    text, signed = _strip_signoff_suffix(text)
    return text, explicit, signed


def _strip_signoff_suffix(text: str) -> tuple[str, bool]:
    mark = text.rfind(_SIGNOFF_MARK)
    if mark > 0 and _SIGNOFF_ENTRIES.fullmatch(text, mark + len(_SIGNOFF_MARK)):
        return text[:mark].rstrip(), True
    return text, False


def _strip_duration(title: str) -> str:
    """ "Deployment (2-4 hours)" -> "Deployment"; other parentheses stay."""
    title = title.strip()
    match = _TRAILING_PARENS.search(title)
    if match and _DURATION.fullmatch(match.group(1).strip()):
        return title[: match.start()].rstrip()
    return title


def _condition(markdown: str) -> str | None:
    match = _CONDITION.search(markdown) if "(" in markdown else None
    if not match:
        return None
    found = _plain(match.group(1))
    return "optional" if found.lower() == "optional" else found


# ---- the parse ----------------------------------------------------------------------------


@dataclass
class _ItemDraft:
    text: str
    explicit_id: str | None
    line: int
    checked: bool
    heading: str
    section: str
    path: tuple[str, ...]
    parent: _ItemDraft | None
    condition: str | None
    details: list[str] = field(default_factory=list)
    question: str | None = None  # the "Decision needed" text
    id: str = ""
    checks: tuple[str, ...] = ()
    table: bool = False
    end_line: int = 0
    claim: bool = False
    quorum: int | None = None


@dataclass
class _Tracked:
    """A numbered decision of a DECISION TRACKING section."""

    topic: str
    question: str
    options: list[str]
    explicit_id: str | None = None
    quorum: int | None = None


@dataclass
class _StepDraft:
    title: str
    parts: list[StepPart] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notify: list[str] = field(default_factory=list)

    def actions(self, text: str) -> str:
        """Text without its check/notify comments, which become this step's actions."""
        text, checks, notify = _step_actions(text)
        self.checks += [c for c in checks if c not in self.checks]
        self.notify += [n for n in notify if n not in self.notify]
        return text

    def body(self, nodes: Sequence[SyntaxTreeNode], lines: Sequence[str]) -> None:
        """Keep what is under the step: paragraphs, lists and links as their Markdown source,
        code blocks as code (labelled by a bold line just before them, as in the checklist)."""
        label: str | None = None
        for node in nodes:
            if node.type in ("fence", "code_block"):
                info = node.info.strip() if node.type == "fence" else ""
                code = node.content[:-1] if node.content.endswith("\n") else node.content
                language = info.split()[0] if info else ""
                self.parts.append(StepPart("code", code, language, label or ""))
                label = None
                continue
            if label is not None:  # a bold line not followed by code is just text
                self.parts.append(StepPart("text", f"**{label}**"))
                label = None
            if node.type == "html_block":
                self.actions(node.content)
                continue
            if node.map is None:
                continue
            raw = textwrap.dedent("\n".join(lines[node.map[0] : node.map[1]])).strip()
            text = _ID_COMMENT.sub("", self.actions(raw)).strip()
            bold = _BOLD_LABEL.fullmatch(_join_lines(text)) if node.type == "paragraph" else None
            if bold:
                label = _plain(bold.group(1)).rstrip(":").strip()
            elif text:
                self.parts.append(StepPart("text", text))
        if label is not None:
            self.parts.append(StepPart("text", f"**{label}**"))

    def detail(self) -> StepDetail:
        return StepDetail(tuple(self.parts), tuple(self.checks), tuple(self.notify))


def _step_actions(text: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Text without `<!-- check: a, b -->` and `<!-- notify: #ops -->`; the ids and channels."""
    text, checks = _check_ids(text)
    if "<!--" not in text:
        return text, checks, ()
    channels: list[str] = []
    for match in _NOTIFY_COMMENT.finditer(text):
        channels += [c for c in re.split(r"[,\s]+", match.group(1)) if c]
    if channels:
        text = re.sub(r"[ \t]{2,}", " ", _NOTIFY_COMMENT.sub(" ", text)).strip()
    return text, checks, tuple(dict.fromkeys(channels))


@dataclass
class _RunbookDraft:
    title: str
    section: str
    explicit_id: str | None = None
    steps: list[_StepDraft] = field(default_factory=list)


class _Walker:
    def __init__(self) -> None:
        self.title = ""
        self.headings: list[tuple[int, str, str | None]] = []  # level, text, explicit id
        self.heading_serial = 0
        self.items: list[_ItemDraft] = []
        self.tracked: list[_Tracked] = []
        self.runbooks: dict[int, _RunbookDraft] = {}
        self.verify: list[VerifyBlock] = []
        self.env: dict[str, tuple[str, ...]] = {}
        self.notes: list[ImportNote] = []
        self.lines: Sequence[str] = ()  # the source, for the Markdown under runbook steps

    # heading state

    @property
    def section(self) -> str:
        return next((t for lvl, t, _ in self.headings if lvl == 2), "")

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for lvl, t, _ in self.headings if lvl >= 2)

    @property
    def nearest(self) -> str:
        return self.headings[-1][1] if self.headings else ""

    def _section_has(self, words: Iterable[str]) -> bool:
        upper = self.section.upper()
        return bool(upper) and any(w in upper for w in words)

    def heading(self, node: SyntaxTreeNode) -> None:
        level = int(node.tag[1:])
        raw = _join_lines(node.children[0].content) if node.children else ""
        text, explicit = _strip_annotations(raw)
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text, explicit))
        self.heading_serial += 1
        if level == 1 and not self.title:
            self.title = text

    # blocks

    def blocks(self, nodes: Sequence[SyntaxTreeNode], parent: _ItemDraft | None) -> None:
        label: str | None = None
        for node in nodes:
            kind = node.type
            next_label: str | None = None
            if kind == "heading":
                if parent is None:
                    self.heading(node)
            elif kind == "paragraph":
                raw = node.children[0].content if node.children else ""
                self._html_checkboxes(node, raw)
                content = _join_lines(raw)
                bold = _BOLD_LABEL.fullmatch(content)
                if bold:
                    next_label = _plain(bold.group(1)).rstrip(":").strip()
                elif parent is not None and content:
                    self._detail(parent, content)
            elif kind in ("bullet_list", "ordered_list"):
                for li in node.children:
                    self.list_item(li, kind == "ordered_list", parent)
            elif kind == "fence":
                self.fence(node, label)
            elif kind == "blockquote":
                self.blocks(node.children, parent)
            elif kind == "table":
                self.table(node, parent)
            elif kind == "html_block":
                self._html_checkboxes(node, node.content)
                if parent is not None:
                    match = _ID_COMMENT.search(node.content)
                    if match and _VALID_ID.fullmatch(match.group(1)) and not parent.explicit_id:
                        parent.explicit_id = match.group(1)
                    _, checks = _check_ids(node.content)
                    parent.checks = tuple(dict.fromkeys((*parent.checks, *checks)))
            label = next_label

    def _html_checkboxes(self, node: SyntaxTreeNode, content: str) -> None:
        """HTML `<input type="checkbox">` is not read as an item: say where it was."""
        if "<" not in content or "input" not in content.lower():
            return
        start = node.map[0] + 1 if node.map else 0
        for n, line in enumerate(content.split("\n")):
            if _HTML_CHECKBOX.search(line):
                self.notes.append(
                    ImportNote(start + n, "html_checkbox", _plain(line)[:80] or line[:80])
                )

    def table(self, node: SyntaxTreeNode, parent: _ItemDraft | None) -> None:
        """A row whose first cell is `[ ]` or `[x]` is one item; its other cells are the text."""
        for part in node.children:
            if part.type != "tbody":
                continue
            for row in part.children:
                cells = [
                    (td.children[0].content if td.children else "").strip() for td in row.children
                ]
                if not cells:
                    continue
                box = _TABLE_BOX.fullmatch(cells[0])
                if box is None:
                    continue
                line = (row.map[0] + 1) if row.map else 0
                self._checkbox(
                    " | ".join(c for c in cells[1:] if c),
                    box.group(1),
                    line,
                    line,
                    parent,
                    table=True,
                )

    def _checkbox(
        self,
        raw: str,
        mark: str,
        line: int,
        end_line: int,
        parent: _ItemDraft | None,
        *,
        table: bool = False,
    ) -> _ItemDraft | None:
        raw, checks = _check_ids(raw.strip())
        raw, quorum = _quorum(raw)
        raw, claimed = _strip_claim(raw)
        # A tick with the export's " — signed off by ..." is an exported sign-off (recorded in
        # the store it came from), not a claim; any other tick is a claim.
        text, explicit, signed = _annotations(raw)
        if not text:
            self.notes.append(ImportNote(line, "empty_item", "a checkbox with no text"))
            return None
        draft = self._new_item(text, explicit, line, mark != " " or claimed, parent)
        draft.checks, draft.table, draft.end_line = checks, table, end_line
        draft.claim = claimed or (mark != " " and not signed)
        draft.quorum = quorum
        return draft

    def _detail(self, parent: _ItemDraft, text: str) -> None:
        text, _ = _strip_annotations(text)
        if text and not _NOTE_DETAIL.match(text):
            parent.details.append(text)

    def list_item(self, li: SyntaxTreeNode, ordered: bool, parent: _ItemDraft | None) -> None:
        kids = li.children
        first: str | None = None
        rest: Sequence[SyntaxTreeNode] = kids
        if kids and kids[0].type == "paragraph" and kids[0].children:
            first = _join_lines(kids[0].children[0].content)
            rest = kids[1:]
        box = _CHECKBOX.match(first) if first is not None else None
        line = (li.map[0] + 1) if li.map else 0
        if box is None:
            if first is not None:
                self._html_checkboxes(kids[0], kids[0].children[0].content)
            if parent is None and first and ordered:
                has_sublist = any(k.type in ("bullet_list", "ordered_list") for k in rest)
                titled = has_sublist or _BOLD_TOPIC.match(first) is not None
                if titled and self._section_has((_DECISION_SECTION,)):
                    self._tracked_decision(first, rest)
                    return
                if self._section_has(_RUNBOOK_SECTIONS):
                    self._runbook_step(first, rest)
                    return
            if parent is None and first and self._looks_like_a_decision(first):
                # Said, not dropped in silence: the team meant a decision here.
                self.notes.append(ImportNote(line, "decision_unread", _plain(first)[:80]))
            if parent is not None and first:
                self._detail(parent, first)
            self.blocks(rest, parent)
            return
        para = kids[0].map if kids[0].map else None
        end_line = para[1] if para else line
        draft = self._checkbox(box.group(2) or "", box.group(1), line, end_line, parent)
        self.blocks(rest, parent if draft is None else draft)

    def _looks_like_a_decision(self, text: str) -> bool:
        """A plain list line that reads as a decision: "Decision needed: …" without a checkbox,
        or any line at the top of a DECISION section that is not a numbered topic."""
        return bool(_DECISION_NEEDED.match(text)) or self._section_has((_DECISION_SECTION,))

    def _new_item(
        self, text: str, explicit: str | None, line: int, checked: bool, parent: _ItemDraft | None
    ) -> _ItemDraft:
        path = self.path
        condition = _condition(text) or (parent.condition if parent else None)
        if condition is None:
            condition = next((c for h in reversed(path) if (c := _condition(h))), None)
        decision = _DECISION_NEEDED.match(text)
        draft = _ItemDraft(
            text=text,
            explicit_id=explicit,
            line=line,
            checked=checked,
            heading=self.nearest,
            section=self.section,
            path=path,
            parent=parent,
            condition=condition,
            question=decision.group(1).strip() if decision else None,
        )
        self.items.append(draft)
        return draft

    def _tracked_decision(self, first: str, rest: Sequence[SyntaxTreeNode]) -> None:
        first, quorum = _quorum(first)
        first, explicit = _strip_annotations(first)
        bold = _BOLD_TOPIC.match(first)
        if bold:
            topic, question = _plain(bold.group(1)).rstrip(":"), bold.group(2).strip()
        else:
            topic, _, question = first.partition(":")
            topic, question = _plain(topic), question.strip()
        options: list[str] = []
        for lst in rest:
            if lst.type not in ("bullet_list", "ordered_list"):
                continue
            for li in lst.children:
                if not li.children or li.children[0].type != "paragraph":
                    continue
                text = _join_lines(li.children[0].children[0].content)
                box = _CHECKBOX.match(text)
                label = _plain(_strip_annotations((box.group(2) or "") if box else text)[0])
                if label:
                    options.append(label)
        self.tracked.append(_Tracked(topic, question or topic, options, explicit, quorum))

    def _runbook_step(self, text: str, rest: Sequence[SyntaxTreeNode] = ()) -> None:
        draft = self.runbooks.get(self.heading_serial)
        if draft is None:
            title = _STEP_PREFIX.sub("", self.nearest)
            title = _strip_duration(title) or self.nearest
            explicit = self.headings[-1][2] if self.headings else None
            draft = _RunbookDraft(title, self.section, explicit)
            self.runbooks[self.heading_serial] = draft
        step = _StepDraft("")
        step.title = _strip_annotations(step.actions(text))[0]
        step.body(rest, self.lines)
        draft.steps.append(step)

    def fence(self, node: SyntaxTreeNode, label: str | None) -> None:
        info = node.info.strip()
        language = info.split()[0] if info else ""
        code = node.content[:-1] if node.content.endswith("\n") else node.content
        key = self._env_key(label, language)
        if key is not None:
            names = _env_names(code)
            if names:
                base, n = key, 2
                while key in self.env:
                    key, n = f"{base}-{n}", n + 1
                self.env[key] = names
                return
        line = (node.map[0] + 1) if node.map else 0
        self.verify.append(VerifyBlock(label or "", language, code, self.path, line))

    def _env_key(self, label: str | None, language: str) -> str | None:
        for source in (self.nearest, label or ""):
            if ".env" in source.lower():
                return slugify(_plain(source).split("(")[0].replace(".env", "")) or "env"
        if language.lower() in ("env", "dotenv"):
            return slugify((label or "").split("(")[0]) or "env"
        return None


def _env_names(code: str) -> tuple[str, ...] | None:
    """Variable names of a `NAME=value` block, or None if any line is something else."""
    names: list[str] = []
    for raw in code.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            return None
        if match.group(1) not in names:
            names.append(match.group(1))
    return tuple(names) or None


def _assign_ids(drafts: Sequence[_ItemDraft]) -> None:
    """Explicit ids win; generated ones are nearest-heading slug + "/" + text slug."""
    bases = []
    for d in drafts:
        head, body = slugify(d.heading), slugify(d.text) or "item"
        bases.append(f"{head}/{body}" if head else body)
    for d, item_id in zip(drafts, _unique_ids(bases, [d.explicit_id for d in drafts]), strict=True):
        d.id = item_id


def parse_checklist(text: str, *, source: str = "checklist") -> Checklist:
    """Import a Markdown checklist. Any text is accepted; an empty one has no items.

    `source` names where it came from (e.g. a path); it becomes the runbooks' `source`.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_checklist takes str, not {type(text).__name__}")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    normal = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    walker = _Walker()
    walker.lines = normal.split("\n")
    walker.blocks(SyntaxTreeNode(_BLOCK_MD.parse(normal)).children, None)

    drafts = walker.items
    # Items before the first `##` heading go to a section named after the document.
    general = walker.title or "General"
    notes = list(walker.notes)
    for d in drafts:
        if not d.section:
            d.section = general
            notes.append(ImportNote(d.line, "before_heading", f"in section “{general}”"))
    _assign_ids(drafts)
    decisions, decision_of = _build_decisions(drafts, walker.tracked)

    items = tuple(
        Item(
            id=d.id,
            section=d.section,
            path=d.path,
            text=d.text,
            kind=ItemKind.DECISION if d.question is not None else ItemKind.MANUAL,
            line=d.line,
            checked=d.checked,
            claimed=d.claim or "✅" in d.text,  # a tick in the source is a claim, never done
            parent_id=d.parent.id if d.parent else None,
            decision_id=decision_of.get(d.id),
            condition=d.condition,
            details=tuple(d.details),
            checks=d.checks,
            table=d.table,
            end_line=d.end_line or d.line,
        )
        for d in drafts
    )
    sections = tuple(dict.fromkeys(i.section for i in items))
    return Checklist(
        title=walker.title,
        sections=sections,
        items=items,
        decisions=decisions,
        runbooks=enrich_runbooks(
            _build_runbooks(walker.runbooks.values(), source), walker.verify, items
        ),
        verify_blocks=tuple(walker.verify),
        env_templates=dict(walker.env),
        targets=extract_targets(normal),
        source_sha256=digest,
        source_text=normal,
        notes=tuple(sorted(notes, key=lambda n: n.line)),
    )


# ---- runbooks ------------------------------------------------------------------------------


def runbook_id(title: str) -> str:
    """The id a runbook heading gets: its slug without a leading "if"/"when" or a trailing
    "occur(s)" ("If Production Issues Occur" -> "production-issues")."""
    slug = slugify(title)
    trimmed = re.sub(r"^(?:if|when|in-case-of)-", "", slug)
    trimmed = re.sub(r"-(?:occur|occurs|happen|happens)$", "", trimmed)
    return trimmed or slug or "runbook"


def _unique_ids(bases: Sequence[str], explicit: Sequence[str | None]) -> list[str]:
    """Explicit ids win (first use); the rest get "-2", "-3"... where they would repeat."""
    owner: dict[str, int] = {}
    for n, e in enumerate(explicit):
        if e and e not in owner:
            owner[e] = n
    taken = set(owner)
    next_suffix: dict[str, int] = {}  # so a thousand repeats do not rescan -2, -3, ... each time
    out: list[str] = []
    for n, (base, e) in enumerate(zip(bases, explicit, strict=True)):
        if e and owner[e] == n:
            out.append(e)
            continue
        stem = e or base
        candidate, k = stem, next_suffix.get(stem, 2)
        while candidate in taken:
            candidate, k = f"{stem}-{k}", k + 1
        next_suffix[stem] = k
        taken.add(candidate)
        out.append(candidate)
    return out


def _build_runbooks(drafts: Iterable[_RunbookDraft], source: str) -> tuple[Runbook, ...]:
    drafts = list(drafts)
    ids = _unique_ids([runbook_id(d.title) for d in drafts], [d.explicit_id for d in drafts])
    return tuple(
        _runbook(rid, d.title, d.steps, source=source, section=d.section)
        for rid, d in zip(ids, drafts, strict=True)
    )


def _runbook(
    rid: str, title: str, steps: Sequence[_StepDraft], *, source: str, section: str = ""
) -> Runbook:
    details = tuple(s.detail() for s in steps)
    return Runbook(
        rid,
        title,
        tuple(s.title for s in steps),
        source=source,
        section=section,
        details=details if any(details) else (),
    )


def load_runbook_files(folder: Path | str) -> list[Runbook]:
    """One runbook per Markdown file in folder (sorted by name): title = first heading, steps =
    the numbered or bulleted lines, id = slug of the file name."""
    root = Path(folder)
    if not root.exists():
        raise ChecklistError(f"runbooks folder not found: {root}")
    if not root.is_dir():
        raise ChecklistError(f"runbooks folder is not a directory: {root}")
    runbooks: list[Runbook] = []
    seen: set[str] = set()
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() in (".md", ".markdown")):
        if not path.is_file():
            continue
        text = _read_text(path, MAX_CHECKLIST_BYTES, "runbook file")
        # Steps now carry their commands to Slack: a pasted credential must not ride along.
        title, steps = _runbook_file_content(mask_credentials(text)[0])
        base = slugify(path.stem) or "runbook"
        rid, n = base, 2
        while rid in seen:
            rid, n = f"{base}-{n}", n + 1
        seen.add(rid)
        runbooks.append(_runbook(rid, title or path.stem, steps, source=str(path)))
    return runbooks


def _runbook_file_content(text: str) -> tuple[str, list[_StepDraft]]:
    """The title and steps of a runbook file. A step keeps everything under it: what is indented
    under its list item, and what follows its list up to the next heading or list."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = normal.split("\n")
    title = ""
    steps: list[_StepDraft] = []
    last: _StepDraft | None = None  # the step that text after a list belongs to

    def walk(nodes: Sequence[SyntaxTreeNode]) -> None:
        nonlocal title, last
        for node in nodes:
            if node.type == "heading":
                if not title and node.children:
                    title = _plain(_join_lines(node.children[0].content))
                last = None
            elif node.type in ("bullet_list", "ordered_list"):
                for li in node.children:
                    kids = li.children
                    if kids and kids[0].type == "paragraph" and kids[0].children:
                        draft = _StepDraft("")
                        first = draft.actions(_join_lines(kids[0].children[0].content))
                        box = _CHECKBOX.match(first)
                        draft.title = _strip_annotations((box.group(2) or "") if box else first)[0]
                        if draft.title:
                            draft.body(kids[1:], lines)
                            steps.append(draft)
                            last = draft
            elif node.type == "blockquote":
                walk(node.children)
            elif last is not None:
                last.body([node], lines)

    walk(SyntaxTreeNode(_BLOCK_MD.parse(normal)).children)
    return title, steps


# ---- enriching checklist runbooks from the checklist's own content -----------------------------


@dataclass(frozen=True)
class EnrichRule:
    """A runbook step whose title has every one of `words` (slug words) gets, from the same
    checklist: the code block labelled `label` (under a heading named `under`, when given), the
    items whose text has one of `item_words`, and `checks` as a *Run checks* button."""

    words: tuple[str, ...]
    label: str = ""
    under: str = ""
    item_words: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()


# Conservative on purpose: only steps that name the very thing a labelled block verifies.
ENRICH_RULES: tuple[EnrichRule, ...] = (
    EnrichRule(("database", "backup"), label="Manual Backup Command"),
    EnrichRule(
        ("database", "health"),
        label="Verification Command",
        under="Database (AWS RDS)",
        checks=("db_connect",),
    ),
    EnrichRule(("error", "logs"), label="Log Verification"),
    EnrichRule(("application", "logs"), label="Log Verification"),
    EnrichRule(("sentry",), label="Sentry Verification", checks=("sentry_dsn",)),
    EnrichRule(("health", "checks"), checks=("api_health",)),
    EnrichRule(("test", "fix"), label="Test Commands"),
    EnrichRule(("rollback",), item_words=("rollback", "roll back")),
)


def enrich_runbooks(
    runbooks: Sequence[Runbook], verify: Sequence[VerifyBlock], items: Sequence[Item]
) -> tuple[Runbook, ...]:
    """Runbooks with ENRICH_RULES applied: derived parts go after what a step says itself."""
    out = []
    for runbook in runbooks:
        details = []
        for n, title in enumerate(runbook.steps):
            detail = runbook.detail(n)
            words = set(slugify(title).split("-"))
            for rule in ENRICH_RULES:
                if all(w in words for w in rule.words):
                    detail = _apply_rule(rule, detail, verify, items)
            details.append(detail)
        enriched = tuple(details) if any(details) else ()
        out.append(dataclasses.replace(runbook, details=enriched))
    return tuple(out)


def _apply_rule(
    rule: EnrichRule, detail: StepDetail, verify: Sequence[VerifyBlock], items: Sequence[Item]
) -> StepDetail:
    parts = list(detail.parts)
    if rule.label:
        block = next(
            (
                v
                for v in verify
                if v.label.lower() == rule.label.lower()
                and (not rule.under or rule.under in v.section_path)
            ),
            None,
        )
        if block is not None and all(p.text != block.code for p in parts):
            where = " › ".join(block.section_path)
            parts.append(
                StepPart("code", block.code, block.language, block.label, f"checklist: {where}")
            )
    if rule.item_words:
        related = [i for i in items if any(w in i.text.lower() for w in rule.item_words)]
        if related:
            lines = [f"- {i.text} (`{i.id}`)" for i in related[:6]]
            text = "The checklist's items on this:\n" + "\n".join(lines)
            if all(p.text != text for p in parts):
                parts.append(StepPart("text", text, derived="checklist: items"))
    checks = tuple(dict.fromkeys((*detail.checks, *rule.checks)))
    return StepDetail(tuple(parts), checks, detail.notify)


# ---- files --------------------------------------------------------------------------------


def _read_text(path: Path, max_bytes: int, what: str) -> str:
    try:
        if path.is_dir():
            raise ChecklistError(f"{what} is a directory, not a file: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ChecklistError(f"{what} is too large: {path} ({size} bytes, limit {max_bytes})")
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ChecklistError(f"{what} not found: {path}") from None
    except PermissionError:
        raise ChecklistError(f"{what} is not readable (permission denied): {path}") from None
    except OSError as exc:
        raise ChecklistError(f"{what} cannot be read: {path} ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise ChecklistError(f"{what} is too large: {path} (over {max_bytes} bytes)")
    if b"\x00" in data:
        raise ChecklistError(f"{what} is binary, not Markdown text: {path}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ChecklistError(f"{what} is not UTF-8 text: {path}") from None


def read_checklist_file(path: Path | str, max_bytes: int = MAX_CHECKLIST_BYTES) -> Checklist:
    """Parse a checklist file; ChecklistError (one line) if it is missing, a directory, binary,
    not UTF-8 or larger than max_bytes."""
    file = Path(path)
    return parse_checklist(_read_text(file, max_bytes, "checklist file"), source=str(file))


@cache
def load_bundled() -> Checklist:
    """The bundled Phase 4 pre-flight checklist (bot/content/checklist.md), parsed once."""
    text = resources.files("bot").joinpath("content", "checklist.md").read_text("utf-8")
    return parse_checklist(text, source="checklist")


# ---- targets ------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"
_TIME_UNIT = r"(minutes?|mins?|hours?|hrs?|days?|seconds?|secs?|h|m|d|s)\b"
_RTO = re.compile(
    rf"\b(?:RTO|recovery time objective)\b[^\n\d]{{0,40}}?{_NUM}\s*{_TIME_UNIT}", re.I
)
_RPO = re.compile(
    rf"\b(?:RPO|recovery point objective)\b[^\n\d]{{0,40}}?{_NUM}\s*{_TIME_UNIT}", re.I
)
_P95 = re.compile(
    rf"(?:\b95th percentile|\bp95\b)[^\n\d]{{0,60}}?{_NUM}\s*(ms|milliseconds?|s|secs?|seconds?)\b",
    re.I,
)
_ERROR_RATE = (
    re.compile(rf"(?<![\d.]){_NUM}\s*%\s*error rate", re.I),
    re.compile(rf"error rate[^\n\d%]{{0,20}}?{_NUM}\s*%", re.I),
)
_RETENTION = re.compile(r"backup[^\n]{0,40}?retention[^\n\d]{0,40}?(\d+)\s*days?\b", re.I)


def _minutes(value: str, unit: str) -> int:
    factor = {"h": 60.0, "d": 1440.0, "s": 1 / 60}.get(unit[0].lower(), 1.0)
    return round(float(value) * factor)


def extract_targets(text: str) -> Targets:
    """Thresholds the document states in words (RTO, RPO, p95, error rate, backup retention)."""
    rto, rpo, p95 = _RTO.search(text), _RPO.search(text), _P95.search(text)
    error = next((m for rx in _ERROR_RATE if (m := rx.search(text))), None)
    retention = _RETENTION.search(text)
    p95_ms = None
    if p95:
        scale = 1 if p95.group(2).lower().startswith("m") else 1000
        p95_ms = round(float(p95.group(1)) * scale)
    return Targets(
        rto_minutes=_minutes(rto.group(1), rto.group(2)) if rto else None,
        rpo_minutes=_minutes(rpo.group(1), rpo.group(2)) if rpo else None,
        p95_ms=p95_ms,
        error_rate_percent=float(error.group(1)) if error else None,
        backup_retention_days=int(retention.group(1)) if retention else None,
    )


# ---- decisions ----------------------------------------------------------------------------

# Words too generic to name a topic or an option on their own.
# fmt: off
_TOPIC_STOP = frozenset({
    "a", "an", "the", "and", "or", "of", "for", "to", "by", "with", "chosen", "selected",
    "needed", "decision", "required", "solution", "platform", "service", "services", "layer",
    "method", "management", "storage", "strategy", "infrastructure", "application", "setup",
    "provider",
})
_OPTION_STOP = frozenset({
    "a", "an", "the", "and", "or", "of", "in", "on", "for", "only", "instances", "containers",
    "start", "simple",
})
# fmt: on
_MAX_DECISION_PAIRS = 100_000  # tracked x asked pairs scored before falling back to slugs
_VENDOR_PREFIX = ("aws ", "amazon ", "google ", "azure ", "hashicorp ")
_OPTION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "environment variables": ("env", "env vars", "envvars", "dotenv"),
    "kubernetes": ("k8s",),
    "github actions": ("gha",),
    "elk stack": ("elk", "elasticsearch"),
}
_TOPIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "caching": ("cache",),
    "logging": ("logs", "log"),
    "log": ("logs", "logging"),
    "secrets": ("secret",),
    "email": ("mail", "e-mail"),
    "errors": ("error",),
    "error": ("errors",),
}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@lru_cache(maxsize=4096)
def _word_set(text: str) -> frozenset[str]:
    return frozenset(_words(text))


def _same_option(a: str, b: str) -> bool:
    """One label's words contain the other's: "EC2" = "EC2 instances", "Lambda" = "Serverless
    (Lambda)"; "In-memory" and "None (start simple)" stay apart."""
    wa, wb = _word_set(a), _word_set(b)
    return bool(wa and wb) and (wa <= wb or wb <= wa)


def _options_in(question: str) -> tuple[str, list[str]]:
    """("Email provider", ["SendGrid", "AWS SES", "Mailgun"]) from "Email provider (A / B / C)"."""
    plain = _plain(question)
    groups = list(re.finditer(r"\(([^()]*(?:\([^()]*\)[^()]*)*)\)", plain))
    for match in reversed(groups):
        inner = match.group(1)
        for sep in (r"\s+/\s+|\s+vs\.?\s+|\s*,\s*(?:or\s+)?|\s+or\s+", r"/"):
            parts = [p.strip() for p in re.split(sep, inner, flags=re.I) if p.strip()]
            if len(parts) >= 2:
                return plain[: match.start()].strip(), parts
    return plain.split("(")[0].strip(), []


@dataclass
class _DecisionDraft:
    topic: str
    question: str
    item: _ItemDraft | None
    labels: list[list[str]]  # per option: every label seen, the kept one first
    explicit_id: str | None = None
    heading: str = ""
    quorum: int | None = None
    strong: set[str] = field(default_factory=set)
    weak: set[str] = field(default_factory=set)


def _merge_options(item_opts: Sequence[str], tracked_opts: Sequence[str]) -> list[list[str]]:
    merged: list[list[str]] = []
    used: set[int] = set()
    for label in item_opts:
        match = next(
            (i for i, t in enumerate(tracked_opts) if i not in used and _same_option(label, t)),
            None,
        )
        if match is None:
            merged.append([label])
        else:
            used.add(match)
            merged.append([tracked_opts[match], label])
    merged.extend([t] for i, t in enumerate(tracked_opts) if i not in used)
    return merged


def _build_decisions(
    drafts: Sequence[_ItemDraft], tracked: Sequence[_Tracked]
) -> tuple[tuple[Decision, ...], dict[str, str]]:
    asked = [(d, *_options_in(d.question)) for d in drafts if d.question is not None]

    # Pair each tracked decision with at most one "Decision needed" item: option overlap first,
    # then topic words (the item's own words before its heading's).
    scored: list[tuple[int, int, int]] = []
    if len(tracked) * len(asked) > _MAX_DECISION_PAIRS:
        # A document this unusual only merges decisions whose topics have the same slug.
        by_slug = {slugify(head): ai for ai, (_, head, _) in enumerate(asked)}
        scored = [
            (1, ti, by_slug[slugify(t.topic)])
            for ti, t in enumerate(tracked)
            if slugify(t.topic) in by_slug
        ]
        tracked_to_score: Sequence[_Tracked] = ()
    else:
        tracked_to_score = tracked
    for ti, t in enumerate(tracked_to_score):
        t_words = set(_words(t.topic)) - _TOPIC_STOP
        for ai, (d, head, opts) in enumerate(asked):
            overlap = sum(any(_same_option(o, x) for x in t.options) for o in opts)
            head_words = set(_words(head)) - _TOPIC_STOP
            heading_words = set(_words(_plain(d.heading))) - _TOPIC_STOP
            if not overlap and not (t_words and t_words <= head_words | heading_words):
                continue
            score = 100 * overlap + 10 * len(t_words & head_words) + len(t_words & heading_words)
            scored.append((score, ti, ai))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    pair_of_item: dict[int, int] = {}
    paired_tracked: set[int] = set()
    for _, ti, ai in scored:
        if ti in paired_tracked or ai in pair_of_item:
            continue
        pair_of_item[ai] = ti
        paired_tracked.add(ti)

    out: list[_DecisionDraft] = []
    for ai, (d, head, opts) in enumerate(asked):
        assert d.question is not None
        ti_opt = pair_of_item.get(ai)
        if ti_opt is None:
            out.append(_DecisionDraft(head or d.question, d.question, d, [[o] for o in opts]))
        else:
            t = tracked[ti_opt]
            labels = _merge_options(opts, t.options)
            out.append(_DecisionDraft(t.topic, d.question, d, labels, t.explicit_id))
            out[-1].quorum = t.quorum
        out[-1].heading = _plain(d.heading)
        out[-1].quorum = d.quorum if d.quorum is not None else out[-1].quorum
    for ti, t in enumerate(tracked):
        if ti not in paired_tracked:
            labels = [[o] for o in t.options]
            out.append(_DecisionDraft(t.topic, t.question, None, labels, t.explicit_id))
            out[-1].quorum = t.quorum

    ids = _unique_ids(
        [slugify(dd.topic) or "decision" for dd in out], [dd.explicit_id for dd in out]
    )
    _decision_aliases(out, ids)

    decisions: list[Decision] = []
    decision_of: dict[str, str] = {}
    for dd, did in zip(out, ids, strict=True):
        if dd.item is not None:
            decision_of[dd.item.id] = did
        decisions.append(
            Decision(
                id=did,
                topic=dd.topic,
                question=dd.question,
                options=_options(dd.labels),
                item_id=dd.item.id if dd.item else None,
                aliases=tuple(sorted(dd.strong | dd.weak)),
                quorum=dd.quorum,
            )
        )
    return tuple(decisions), decision_of


def _word_variants(phrase: str) -> set[str]:
    """ "ci/cd platform" -> {"ci/cd", "ci-cd", "cicd", "ci", "cd", "platform"} minus stop words."""
    out: set[str] = set()
    for word in phrase.lower().split():
        word = word.strip(".,:;!?()[]\"'")
        parts = _words(word)
        if len(parts) > 1:
            out.update({word, "-".join(parts), "".join(parts)})
        out.update(p for p in parts if p not in _TOPIC_STOP)
    for word in list(out):
        out.update(_TOPIC_SYNONYMS.get(word, ()))
    return {w for w in out if len(w) >= 2 and not w.isdigit()}


def _decision_aliases(drafts: Sequence[_DecisionDraft], ids: Sequence[str]) -> None:
    """Strong aliases name the topic itself; weak ones (single words, the heading) are kept only
    when no other decision claims them, so "deployment" stays ambiguous on purpose."""
    for dd, did in zip(drafts, ids, strict=True):
        head = _options_in(dd.question)[0]
        dd.strong.update({dd.topic.lower(), head.lower(), did.replace("-", " ")})
        dd.strong = {re.sub(r"\s+", " ", s).strip() for s in dd.strong if s.strip()}
        heading = re.sub(r"\s*\(.*?\)", "", dd.heading).strip().lower()
        for phrase in (dd.topic, head, heading):
            dd.weak |= _word_variants(phrase)
        if heading:
            dd.weak.add(heading)
        dd.weak -= dd.strong
    claims: dict[str, int] = {}
    for dd, did in zip(drafts, ids, strict=True):
        for alias in dd.strong | dd.weak | {did}:
            claims[alias] = claims.get(alias, 0) + 1
    for dd in drafts:
        dd.weak = {a for a in dd.weak if claims[a] == 1}


def _option_aliases(labels: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for label in labels:
        low = re.sub(r"\s+", " ", label.lower()).strip()
        bare = re.sub(r"\s*\([^()]*\)", "", low).strip()
        forms = {low, bare, *re.findall(r"\(([^()]*)\)", low)}
        for form in list(forms):
            forms.update({form.replace("-", " "), form.replace("-", "")})
            for prefix in _VENDOR_PREFIX:
                if form.startswith(prefix):
                    forms.add(form[len(prefix) :])
            if " " in form and "(" not in form:
                forms.add(form.replace(" ", ""))
        words = _words(low)
        forms.update(w for w in words if w not in _OPTION_STOP and len(w) >= 2)
        # "GitHub Actions" -> "gha", "DataDog" -> "dd": initials of camel-case parts, only where
        # a word has inner capitals (otherwise initials are noise: "EC2 instances" -> "ei").
        bare_label = re.sub(r"\(.*?\)", "", label)
        camel = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", bare_label)
        if len(camel) > len(_words(bare_label)) >= 1:
            forms.add("".join(p[0] for p in camel).lower())
        for key, synonyms in _OPTION_SYNONYMS.items():
            if key in low:
                forms.update(synonyms)
        out |= forms
    return {f.strip() for f in out if len(f.strip()) >= 2}


def _options(labels: Sequence[Sequence[str]]) -> tuple[Option, ...]:
    per_option = [_option_aliases(ls) for ls in labels]
    counts: dict[str, int] = {}
    for aliases in per_option:
        for a in aliases:
            counts[a] = counts.get(a, 0) + 1
    options: list[Option] = []
    seen: set[str] = set()
    for ls, aliases in zip(labels, per_option, strict=True):
        label = ls[0]  # the DECISION TRACKING label when both places name it
        base = slugify(label) or "option"
        oid, n = base, 2
        while oid in seen:
            oid, n = f"{base}-{n}", n + 1
        seen.add(oid)
        unique = sorted(a for a in aliases if counts[a] == 1)
        options.append(Option(oid, label, tuple(unique)))
    return tuple(options)


def find_option(decision: Decision, text: str) -> Option | None:
    """The option text names: exact id/label/alias (case-insensitive), else a unique prefix.
    None when unknown or ambiguous."""
    key = re.sub(r"\s+", " ", text.strip().lower())
    if not key:
        return None
    slug = slugify(key)
    exact = [
        o
        for o in decision.options
        if key in (o.id, o.label.lower()) or key in o.aliases or (slug and slug == o.id)
    ]
    if exact:
        return exact[0] if len(exact) == 1 else None
    prefixed = [
        o
        for o in decision.options
        if any(k.startswith(key) for k in (o.id, o.label.lower(), *o.aliases))
    ]
    return prefixed[0] if len(prefixed) == 1 else None


def find_decision(checklist: Checklist, text: str) -> list[Decision]:
    """Decisions text names: exact id/topic/alias matches if any, else every decision whose id,
    topic or aliases contain text. More than one means ambiguous."""
    key = re.sub(r"\s+", " ", text.strip().lower())
    if not key:
        return []
    exact = [
        d
        for d in checklist.decisions
        if key in (d.id, d.topic.lower()) or key in d.aliases or slugify(key) == d.id
    ]
    if exact:
        return exact
    return [
        d
        for d in checklist.decisions
        if key in d.id or key in d.topic.lower() or any(key in a for a in d.aliases)
    ]


# ---- diff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemDiff:
    """Item ids, in document order: new ones, same id with other text/kind/path, gone, same."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]


def diff_items(old: Checklist, new: Checklist) -> ItemDiff:
    """What re-importing a checklist does to its items (ids are the identity)."""
    before = {i.id: i for i in old.items}
    after = {i.id for i in new.items}
    added, changed, unchanged = [], [], []
    for item in new.items:
        prev = before.get(item.id)
        if prev is None:
            added.append(item.id)
        elif (prev.text, prev.kind, prev.path) != (item.text, item.kind, item.path):
            changed.append(item.id)
        else:
            unchanged.append(item.id)
    removed = tuple(i.id for i in old.items if i.id not in after)
    return ItemDiff(tuple(added), tuple(changed), removed, tuple(unchanged))


# ---- credentials in the document ------------------------------------------------------------

MASK = "[REDACTED]"  # a placeholder to the secrets scanner, so a masked document scans clean
_TOKEN_SPLIT = re.compile(r"[\s\"'`=:,;()<>|]+")


def mask_credentials(text: str) -> tuple[str, list[ImportNote]]:
    """The text with every plaintext credential the secrets scanner finds replaced by MASK,
    and one note per finding (line and kind, never the value)."""
    from checks.secrets_plaintext import fingerprint, scan_lines

    lines = text.split("\n")
    findings = list(scan_lines(lines, "checklist"))
    if not findings:
        return text, []
    notes: list[ImportNote] = []
    for f in findings:
        notes.append(ImportNote(f.line, "credential", f.kind))
        index = f.line - 1
        line = lines[index]
        if f.kind == "private_key":
            # the whole block, up to its END line (as the scanner reads it: 200 lines at most)
            for n in range(index, min(index + 200, len(lines))):
                done = "-----END" in lines[n]
                lines[n] = MASK
                if done:
                    break
            continue
        # The scanner reports a value's fingerprint, not the value: find the token that has it.
        tokens = [t for t in _TOKEN_SPLIT.split(line) if t]
        candidates = set(tokens)
        for t in tokens:  # user:password@host and Bearer values
            if "@" in t:
                candidates.update(t.split("@"))
        masked = False
        for token in sorted(candidates, key=len, reverse=True):
            if token and fingerprint(token) == f.fingerprint:
                line = line.replace(token, MASK)
                masked = True
        if not masked:
            # Unknown shape: keep the key, drop everything after the first separator.
            cut = min((p for p in (line.find("="), line.find(":")) if p >= 0), default=-1)
            line = line[: cut + 1] + " " + MASK if cut >= 0 else MASK
        lines[index] = line
    return "\n".join(lines), notes
