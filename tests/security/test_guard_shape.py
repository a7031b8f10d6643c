"""The guard's shape check reads only the form's keys (and a payload), and decides exactly as
a full parse with urllib's parse_qs would."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.http_guard import Refused, check_shape

FORM = "application/x-www-form-urlencoded"


def _by_parse_qs(text: str) -> bool:
    """What the check answered when it parsed the whole form: True when it accepts."""
    form = parse_qs(text, keep_blank_values=True)
    payload = form.get("payload")
    if payload is not None:
        try:
            return isinstance(json.loads(payload[0]), dict)
        except ValueError:
            return False
    return bool({"command", "type", "ssl_check"} & set(form))


def _accepts(text: str) -> bool:
    try:
        check_shape(text.encode(), FORM)
    except Refused:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    [
        "command=%2Fpreflight&text=status",
        "token=x&command",
        "payload=" + quote_plus(json.dumps({"type": "block_actions"})),
        "payload=" + quote_plus("[1, 2]"),
        "payload=%7Bnot+json",
        "payload=" + quote_plus("{}") + "&payload=nope",
        "type=event_callback",
        "ssl_check=1&token=x",
        "c%6Fmmand=%2Fdecide",
        "text=hello&user_id=U1",
        "",
        "&&&",
    ],
)
def test_known_shapes(text: str) -> None:
    assert _accepts(text) == _by_parse_qs(text)


keys = st.sampled_from(["command", "payload", "type", "ssl_check", "text", "c%6Fmmand", ""])
values = st.one_of(
    st.text(max_size=20).map(quote_plus),
    st.just(quote_plus(json.dumps({"a": 1}))),
    st.just(quote_plus("[]")),
)


@given(st.lists(st.tuples(keys, values, st.booleans()), max_size=6))
def test_any_form_is_decided_as_parse_qs_would(pairs: list[tuple[str, str, bool]]) -> None:
    text = "&".join(f"{k}={v}" if with_value else k for k, v, with_value in pairs)
    assert _accepts(text) == _by_parse_qs(text)
