"""The redactor: every shape of a known secret, the secret-shaped patterns, nested data,
1 MiB of adversarial input per pattern (correctness only: timing is tests/perf's business),
and property-based fuzzing of all of it with Hypothesis."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from checks.redact import MASK, Redactor, is_secret_name
from tests.security import adversarial
from tests.security.canaries import CANARY_ENV, leaks, shapes

REDACT = Redactor.from_env(CANARY_ENV)
FUZZ = settings(
    max_examples=200,
    deadline=None,  # no timing assertions in the regular suite
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("setting", sorted(CANARY_ENV))
@pytest.mark.parametrize("shape", sorted(shapes("x" * 20)))
def test_every_shape_of_every_canary_is_masked(setting: str, shape: str) -> None:
    secret = CANARY_ENV[setting]
    echoed = shapes(secret)[shape]
    text = f"server said: invalid value {echoed!s}, see the docs"
    assert leaks(secret, text), "the shape must carry the secret, else the test proves nothing"
    out = REDACT.text(text)
    assert leaks(secret, out) == [], out
    assert out.startswith("server said: invalid value ") and out.endswith(", see the docs")


def test_basic_header_keeps_its_scheme_and_loses_the_password() -> None:
    header = "Authorization: Basic " + base64.b64encode(
        f"app-user:{CANARY_ENV['DB_PASSWORD']}".encode()
    ).decode("ascii")
    out = REDACT.text(header)
    assert out.startswith("Authorization: Basic ") and MASK in out
    assert leaks(CANARY_ENV["DB_PASSWORD"], out) == []


def test_secret_inside_a_larger_base64_blob_at_every_alignment() -> None:
    secret = CANARY_ENV["AWS_SECRET_ACCESS_KEY"]
    for pad in range(6):
        blob = base64.b64encode(b'{"k": "' + b"z" * pad + secret.encode() + b'", "n": 1}')
        out = REDACT.text(blob.decode())
        assert leaks(secret, out) == [], (pad, out)


def test_short_values_are_masked_raw_only_and_four_is_the_floor() -> None:
    redact = Redactor(["abc", "hunt", "s3cr3t"])
    assert redact.text("abc hunt s3cr3t") == f"abc {MASK} {MASK}"
    assert redact.text(base64.b64encode(b"s3cr3t").decode()) == MASK


def test_dsn_setting_masks_its_credentials_not_its_host() -> None:
    redact = Redactor.from_env(
        {
            "DATABASE_URL": "postgresql://app:db-Pw-canary-77x@db.internal:5432/app",
            "SENTRY_DSN": "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42",
        }
    )
    out = redact.text(
        "connecting to db.internal:5432 as app with db-Pw-canary-77x; "
        "key 0123456789ab (truncated); events go to o1.ingest.sentry.io/42; "
        "dsn postgresql://app:db-Pw-canary-77x@db.internal:5432/app"
    )
    assert "db-Pw-canary-77x" not in out and "0123456789ab" not in out
    assert "db.internal:5432 as app" in out and "o1.ingest.sentry.io/42" in out
    assert out.endswith(f"dsn postgresql://app:{MASK}@db.internal:5432/app")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql://app:s3cret-pw@db.local:5432/app",
            f"postgresql://app:{MASK}@db.local:5432/app",
        ),
        ("host=db password=s3cret user=app", f"host=db password={MASK} user=app"),
        ("password = 'two words' sslmode=require", f"password = {MASK} sslmode=require"),
        ('password="es\\"caped" x', f"password={MASK} x"),
        ("Authorization: Bearer abc.def-ghi_jkl", f"Authorization: Bearer {MASK}"),
        ("Basic dXNlcjpwYXNzd29yZA==", f"Basic {MASK}"),
        ("token xoxb-123456789012-abcdefABCDEF", f"token {MASK}"),
        ("app token xapp-1-A0123-456-abcdef", f"app token {MASK}"),
        ("key AKIAABCDEFGHIJKLMNOP in use", f"key {MASK} in use"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"aws_secret_access_key = {MASK}",
        ),
        ('"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"', f'"aws_secret_access_key": "{MASK}"'),
        (
            "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nb",
            f"a\n{MASK}\nb",
        ),
        ("cut: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", f"cut: {MASK}"),
    ],
)
def test_secret_shapes(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'FATAL:  password authentication failed for user "app"',
        "see https://example.com/path?x=1 and mailto:ops@example.com",
        "Bearer short",
        "xoxb-12 is not a token",
        "AKIA is an access key id prefix",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "the quick brown fox",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert REDACT.text(text) == text


def test_nested_data_keeps_its_types() -> None:
    secret = CANARY_ENV["PREFLIGHT_API_TOKEN"]
    data = {
        secret: [secret, (secret, 1), {secret}, frozenset({secret})],
        "bytes": b"token=" + secret.encode() + b"\xff\xfe",
        "bytearray": bytearray(secret.encode()),
        "n": 3,
        "none": None,
    }
    out = REDACT(data)
    assert list(out) == [MASK, "bytes", "bytearray", "n", "none"]
    assert out[MASK] == [MASK, (MASK, 1), {MASK}, frozenset({MASK})]
    assert out["bytes"] == b"token=" + MASK.encode() + b"\xff\xfe"
    assert isinstance(out["bytearray"], bytearray) and out["bytearray"] == MASK.encode()
    assert out["n"] == 3 and out["none"] is None


def test_lone_surrogates_and_invalid_utf8_do_not_break_it() -> None:
    secret = CANARY_ENV["DB_PASSWORD"]
    assert REDACT.text(f"\ud800{secret}\udcff Bearer abcdefghijk") == (
        f"\ud800{MASK}\udcff Bearer {MASK}"
    )
    assert REDACT(b"\xc3(" + secret.encode()) == b"\xc3(" + MASK.encode()


def test_secret_names() -> None:
    for name in ("DB_PASSWORD", "JWT_SECRET", "PREFLIGHT_API_TOKEN", "SENTRY_DSN", "STRIPE_KEY"):
        assert is_secret_name(name)
    for name in ("DB_HOST", "DB_USER", "FRONTEND_URL", "PREFLIGHT_KEYS_DIR"):
        assert not is_secret_name(name)


# --- 1 MiB of adversarial input per pattern ---------------------------------------------

UNCHANGED = {
    "url: a:// + ':' x N",
    "url: a://u: + 'p' x N, no @",
    "url: 'a://x:' repeated",
    "dsn: password + spaces, no =",
    "bearer: 'Bearer ' + spaces",
    "bearer: 'Basic Basic ' repeated",
    "aws: 'AKIA' + run",
    "aws: secret key assignment repeated",
    "pem: '-----BEGIN ' + run",
    "known: near-miss prefixes (11 chars)",
    "plain: prose without secrets",
    "plain: non-ASCII and lone surrogates",
}
INPUTS = adversarial.inputs()


def test_every_adversarial_input_is_a_mebibyte() -> None:
    assert set(INPUTS) > UNCHANGED
    assert all(len(text) == adversarial.SIZE for text in INPUTS.values())


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_adversarial_mebibyte(name: str) -> None:
    text = INPUTS[name]
    out = Redactor.from_env(adversarial.CANARY_ENV).text(text)
    assert leaks(adversarial.CANARY, out) == []
    if name in UNCHANGED:
        assert out == text
    else:
        assert MASK in out
        assert len(out) <= 2 * len(text)


# --- Property-based ---------------------------------------------------------------------

# Secrets as settings hold them: printable ASCII, stripped. "[" and "]" are MASK's own
# characters: a secret made of them could be re-formed next to a mask.
_secret = st.text(
    alphabet=st.sampled_from([c for c in string.printable if c not in "[]\x0b\x0c"]),
    min_size=6,
    max_size=40,
).map(str.strip)
_context = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="[]"), max_size=40)


def _usable(secret: str) -> bool:
    return len(secret) >= 6 and not any(f in MASK for f in shapes(secret).values())


@FUZZ
@given(
    secret=_secret, shape=st.sampled_from(sorted(shapes("x" * 20))), before=_context, after=_context
)
def test_fuzz_no_shape_of_a_secret_survives(
    secret: str, shape: str, before: str, after: str
) -> None:
    assume(_usable(secret))
    out = Redactor([secret]).text(before + shapes(secret)[shape] + after)
    assert leaks(secret, out) == [], (shape, out)


@FUZZ
@given(secrets=st.lists(_secret, max_size=3), text=st.text(max_size=300))
def test_fuzz_idempotent_and_never_raises(secrets: list[str], text: str) -> None:
    redact = Redactor(secrets)
    once = redact.text(text)
    assert redact.text(once) == once


_leaf = st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(), st.none())
_nested = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=10), children, max_size=4),
    ),
    max_leaves=20,
)


@FUZZ
@given(data=_nested)
def test_fuzz_nested_data_never_raises(data: object) -> None:
    out = REDACT(data)
    assert type(out) is type(data)


def _brute_force_mask(patterns: list[str], text: str) -> str:
    covered = [False] * len(text)
    for pattern in patterns:
        start = text.find(pattern)
        while start >= 0:
            covered[start : start + len(pattern)] = [True] * len(pattern)
            start = text.find(pattern, start + 1)
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@FUZZ
@given(
    secrets=st.lists(st.text(alphabet="ab", min_size=4, max_size=20), min_size=1, max_size=3),
    text=st.text(alphabet="ab", max_size=80),
)
def test_fuzz_overlapping_matches_merge_into_one_mask_per_region(
    secrets: list[str], text: str
) -> None:
    """On a two-letter alphabet every secret overlaps every other: the masked regions must be
    exactly the union of all occurrences of all forms (checked against a brute force)."""
    redact = Redactor(secrets)
    patterns = list(redact._automaton.keys()) if redact._automaton is not None else []
    assert redact.text(text) == _brute_force_mask(patterns, text)
