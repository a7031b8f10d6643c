"""Checks on what the app sends to Slack: Block Kit validity, Slack's size limits, leaked secrets.

`slack_sdk.models` does the structural validation; the limits Slack enforces server-side (and
that the SDK checks only partly, or not for every element) are checked here on the raw dicts,
so a problem names the JSON path where it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.support.slack_fake import RESPONSE_URL, Call

MESSAGE_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.postEphemeral",
        "chat.update",
        "chat.scheduleMessage",
        RESPONSE_URL,
    }
)
VIEW_METHODS = frozenset({"views.open", "views.update", "views.push", "views.publish"})

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255  # action_id, block_id, callback_id
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_SELECT_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_VIEW_TITLE = 24  # also submit and close
MAX_PRIVATE_METADATA = 3000

# Block constructors that slack_sdk may raise from on malformed input, besides its own error.
_PARSE_ERRORS = (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError)
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def validate_blocks(
    blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS, where: str = "blocks"
) -> list[str]:
    """Problems with a list of Block Kit blocks (empty list when Slack would accept them)."""
    if not isinstance(blocks, list):
        return [f"{where} is {type(blocks).__name__}, expected a list of blocks"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{where} has {len(blocks)} blocks (max {max_blocks})")
    seen_block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        path = f"{where}[{index}]"
        if not isinstance(block, dict):
            problems.append(f"{path} is {type(block).__name__}, expected an object")
            continue
        problems.extend(_sdk_problems(block, path))
        problems.extend(_limit_problems(block, path))
        problems.extend(_duplicate_action_ids(block, path))
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_block_ids:
                problems.append(f"{path}.block_id {block_id!r} is used twice")
            seen_block_ids.add(block_id)
    return problems


def validate_message(
    payload: dict[str, Any], *, require_text: bool = False, where: str = "message"
) -> list[str]:
    """Problems with a message payload (chat.postMessage/update/postEphemeral or response_url)."""
    problems: list[str] = []
    text = payload.get("text")
    blocks = payload.get("blocks")
    if "blocks" in payload:
        problems.extend(validate_blocks(blocks, where=f"{where}.blocks"))
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        problems.append(f"{where}.text is {len(text)} characters (max {MAX_MESSAGE_TEXT})")
    has_content = any(payload.get(key) not in _EMPTY for key in ("text", "blocks", "attachments"))
    if not has_content and not payload.get("delete_original"):
        problems.append(f"{where} has no text, blocks or attachments")
    if require_text and blocks not in _EMPTY and text in _EMPTY:
        problems.append(f"{where} has blocks but no top-level text (notification/fallback text)")
    return problems


def validate_view(view: Any, *, where: str = "view") -> list[str]:
    """Problems with a modal or App Home view payload."""
    if not isinstance(view, dict):
        return [f"{where} is {type(view).__name__}, expected an object"]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(f"{where}.type is {kind!r}, expected 'modal' or 'home'")
    blocks = view.get("blocks")
    if blocks is not None:
        problems.extend(
            validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS, where=f"{where}.blocks")
        )
    if kind == "modal":
        if _text_of(view.get("title")) is None:
            problems.append(f"{where} is a modal without a title")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            problems.append(f"{where} has input blocks but no submit button")
    for key in ("title", "submit", "close"):
        label = _text_of(view.get(key))
        if label is not None and len(label) > MAX_VIEW_TITLE:
            problems.append(f"{where}.{key} is {len(label)} characters (max {MAX_VIEW_TITLE})")
    metadata = view.get("private_metadata")
    if isinstance(metadata, str) and len(metadata) > MAX_PRIVATE_METADATA:
        problems.append(
            f"{where}.private_metadata is {len(metadata)} characters (max {MAX_PRIVATE_METADATA})"
        )
    try:
        # validate_json() checks the view's own attributes (block count included), not the
        # blocks inside, which were checked one by one above.
        sent = view if isinstance(blocks, list) else {**view, "blocks": None}
        View(**sent).validate_json()
    except _PARSE_ERRORS as e:
        problems.append(f"{where}: {e}")
    return problems


def validate_outbound(
    calls: Iterable[Call], *, text_required_for: Sequence[str] = ("chat.update",)
) -> list[str]:
    """Problems in every recorded call that carries blocks or a view.

    `text_required_for` names the methods whose block messages must also carry top-level `text`
    (Slack uses it for notifications and screen readers; `chat.update` without it blanks the
    notification preview).
    """
    problems: list[str] = []
    for index, call in enumerate(calls):
        where = f"call {index} {call.method}"
        data = call.data
        if call.method in MESSAGE_METHODS:
            problems.extend(
                validate_message(data, require_text=call.method in text_required_for, where=where)
            )
        elif call.method in VIEW_METHODS:
            problems.extend(validate_view(data.get("view"), where=f"{where} view"))
    return problems


def scan_for_secrets(calls: Iterable[Call], secrets: Sequence[str]) -> list[str]:
    """Where any of `secrets` appears in a recorded call (payload, raw body, path, headers).

    The Authorization header is skipped: the bot token belongs there. Secrets are named by
    their index in `secrets`, never quoted, so the report itself leaks nothing.
    """
    wanted = [(i, s) for i, s in enumerate(secrets) if s]
    found: list[str] = []
    for index, call in enumerate(calls):
        where = f"call {index} {call.method}"
        for secret_index, secret in wanted:
            places = [path for path, text in _strings(call.data, "payload") if secret in text]
            places += [
                f"header {name}"
                for name, value in call.headers.items()
                if name.lower() != "authorization" and secret in value
            ]
            if secret in call.path:
                places.append("path")
            if not places and secret.encode() in call.raw:
                places.append("raw body")
            found += [f"{where}: secret #{secret_index} found in {place}" for place in places]
    return found


def _sdk_problems(block: dict[str, Any], path: str) -> list[str]:
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [f"{path} has unknown block type {block.get('type')!r}"]
        # to_dict() validates the whole tree; validate_json() alone checks one level.
        rendered = parsed.to_dict()
    except _PARSE_ERRORS as e:
        return [f"{path} ({block.get('type')}): {e}"]
    return [
        f"{key_path} is not a field slack_sdk knows for this element (typo?)"
        for key_path in _unknown_keys(block, rendered, path)
    ]


def _unknown_keys(sent: Any, rendered: Any, path: str) -> Iterator[str]:
    """Keys present in what was sent but dropped by slack_sdk's round trip."""
    if isinstance(sent, dict) and isinstance(rendered, dict):
        for key, value in sent.items():
            if key not in rendered:
                if value not in _EMPTY:
                    yield f"{path}.{key}"
            else:
                yield from _unknown_keys(value, rendered[key], f"{path}.{key}")
    elif isinstance(sent, list) and isinstance(rendered, list) and len(sent) == len(rendered):
        for index, (a, b) in enumerate(zip(sent, rendered, strict=True)):
            yield from _unknown_keys(a, b, f"{path}[{index}]")


def _limit_problems(node: Any, path: str) -> Iterator[str]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _limit_problems(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    text = _text_of(node.get("text"))
    if kind == "section":
        yield from _too_long(text, MAX_SECTION_TEXT, f"{path}.text.text")
        fields = node.get("fields") or []
        if len(fields) > MAX_SECTION_FIELDS:
            yield f"{path}.fields has {len(fields)} items (max {MAX_SECTION_FIELDS})"
        for index, field in enumerate(fields):
            field_text = _text_of(field)
            yield from _too_long(field_text, MAX_SECTION_FIELD_TEXT, f"{path}.fields[{index}].text")
    elif kind == "header":
        yield from _too_long(text, MAX_HEADER_TEXT, f"{path}.text.text")
    elif kind == "button":
        yield from _too_long(text, MAX_BUTTON_TEXT, f"{path}.text.text")
        yield from _too_long(node.get("value"), MAX_BUTTON_VALUE, f"{path}.value")
        yield from _too_long(node.get("url"), MAX_URL, f"{path}.url")
    elif kind == "context":
        yield from _too_many(node.get("elements"), MAX_CONTEXT_ELEMENTS, f"{path}.elements")
    elif kind == "actions":
        yield from _too_many(node.get("elements"), MAX_ACTIONS_ELEMENTS, f"{path}.elements")
    elif kind in ("plain_text", "mrkdwn") and node.get("text") in ("", None):
        yield f"{path} is an empty {kind} text object (Slack rejects empty text)"
    if isinstance(kind, str) and kind.endswith("select"):
        yield from _too_many(node.get("options"), MAX_SELECT_OPTIONS, f"{path}.options")
    for key in ("options", "initial_options"):
        for index, option in enumerate(node.get(key) or []):
            if isinstance(option, dict):
                option_path = f"{path}.{key}[{index}]"
                option_text = _text_of(option.get("text"))
                yield from _too_long(option_text, MAX_OPTION_TEXT, f"{option_path}.text.text")
                yield from _too_long(option.get("value"), MAX_OPTION_VALUE, f"{option_path}.value")
    yield from _too_long(node.get("action_id"), MAX_ID, f"{path}.action_id")
    yield from _too_long(node.get("block_id"), MAX_ID, f"{path}.block_id")
    for key, value in node.items():
        if isinstance(value, dict | list):
            yield from _limit_problems(value, f"{path}.{key}")


def _duplicate_action_ids(block: dict[str, Any], path: str) -> Iterator[str]:
    elements = list(block.get("elements") or [])
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            elements.append(block[key])
    seen: set[str] = set()
    for element in elements:
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                yield f"{path} uses action_id {action_id!r} twice"
            seen.add(action_id)


def _text_of(value: Any) -> str | None:
    """The string inside a text object (or a bare string, which slack_sdk also accepts)."""
    if isinstance(value, dict):
        inner = value.get("text")
        return inner if isinstance(inner, str) else None
    return value if isinstance(value, str) else None


def _too_long(value: Any, limit: int, path: str) -> Iterator[str]:
    if isinstance(value, str) and len(value) > limit:
        yield f"{path} is {len(value)} characters (max {limit})"


def _too_many(value: Any, limit: int, path: str) -> Iterator[str]:
    if isinstance(value, list) and len(value) > limit:
        yield f"{path} has {len(value)} items (max {limit})"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string (keys included) in a decoded payload, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}", str(key)
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
