"""Adversarial inputs for the redactor: 1 MiB each, built to make a backtracking or
quadratic matcher stall on one of its patterns. Shared by the security tests (which assert
only that the output is right) and tests/perf/bench_redactor.py (which prints MB/s)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

SIZE = 1 << 20
# Obviously fake: a password with two spaces (the whitespace-collapse leak), a slash
# (JSON's \/ escape) and characters URL encoding changes.
CANARY = "canary-Pa55  not/real+x=1"
CANARY_ENV = {"DB_PASSWORD": CANARY}


def _fill(unit: str, head: str = "", tail: str = "") -> str:
    body = SIZE - len(head) - len(tail)
    return head + (unit * (body // len(unit) + 1))[:body] + tail


def inputs() -> dict[str, str]:
    """name -> 1 MiB of text aimed at one pattern (or at the known-value matcher)."""
    secret_b64 = base64.b64encode(CANARY.encode()).decode()
    return {
        "url: a:// + ':' x N": _fill(":", "a://"),
        "url: a://u: + 'p' x N, no @": _fill("p", "a://u:"),
        "url: 'a://x:' repeated": _fill("a://x:"),
        "url: scheme chars then ://u:p@h": _fill("a", "", "://u:p@h"),
        "dsn: 'password=' repeated": _fill("password="),
        "dsn: password=' unclosed": _fill("a", "password='"),
        "dsn: 'password=\" ' repeated": _fill('password=" '),
        "dsn: password + spaces, no =": _fill(" ", "password"),
        "bearer: 'Bearer ' + spaces": _fill(" ", "Bearer "),
        "bearer: 'Bearer ' + token run": _fill("a", "Bearer "),
        "bearer: 'Basic Basic ' repeated": _fill("Basic "),
        "slack: 'xoxb-' repeated": _fill("xoxb-"),
        "slack: 'xapp-1-' + run": _fill("a", "xapp-1-"),
        "aws: 'AKIA' + run": _fill("A", "AKIA"),
        "aws: secret key assignment repeated": _fill("aws_secret_access_key="),
        "aws: secret key + long run": _fill("a", "aws_secret_access_key = "),
        "pem: BEGIN without END": _fill("abcd\n", "-----BEGIN PRIVATE KEY-----\n"),
        "pem: BEGIN lines repeated": _fill("-----BEGIN RSA PRIVATE KEY-----"),
        "pem: '-----BEGIN ' + run": _fill("A", "-----BEGIN "),
        "known: near-miss prefixes (11 chars)": _fill(CANARY[:11] + "#"),
        "known: 12-char runs back to back": _fill(CANARY[:12] + CANARY[5:17]),
        "known: secret repeated": _fill(CANARY),
        "known: base64 of secret repeated": _fill(secret_b64),
        "known: url and json forms mixed": _fill(quote(CANARY, safe="") + json.dumps(CANARY)),
        "plain: prose without secrets": _fill("the quick brown fox jumps over the lazy dog. "),
        "plain: non-ASCII and lone surrogates": _fill("é漢\ud800 x"),
    }
