"""Big-checklist paths (issue 11): the parsed checklist is cached by content hash beside the
store and reads back equal to a fresh parse; `preflight --help` imports nothing heavy;
`status --json` is plain JSON written by the standard library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.checklist import load_bundled, parse_checklist
from bot.parsed_cache import ParsedCache, cache_key, from_data, to_data
from bot.services import Services
from bot.settings import Settings
from tests.perf.big_checklist import big_checklist_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ("bundled", (ROOT / "bot/content/checklist.md").read_text("utf-8")),
    ("big", big_checklist_text(300, 12)),
    ("odd", "# T\n\n## A\n\n- [x] one ✅ <!-- id: x -->\n  - Host: `h`\n| [ ] | row |\n"),
]


@pytest.mark.parametrize(("name", "text"), DOCS, ids=[d[0] for d in DOCS])
def test_a_parse_reads_back_equal(name: str, text: str) -> None:
    parsed = parse_checklist(text, source=name)
    assert from_data(json.loads(json.dumps(to_data(parsed)))) == parsed


def test_the_key_covers_text_origin_and_parser() -> None:
    text = DOCS[0][1]
    assert cache_key(text, "a") == cache_key(text, "a")
    assert cache_key(text, "a") != cache_key(text, "b")
    assert cache_key(text, "a") != cache_key(text + "\n", "a")


def test_a_start_reads_the_cached_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "p.db"
    first = Services.from_settings(Settings(preflight_db=str(db)), env={})
    cache = ParsedCache.beside(str(db))
    assert cache is not None and cache.file.is_file()
    assert cache.file.stat().st_mode & 0o077 == 0  # private, like the store
    first.store.close()

    import bot.services

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(bot.services, "parse_checklist", no_parse)
    bot.services._parsed.cache_clear()  # not the in-process memo: the file beside the store
    again = Services.from_settings(Settings(preflight_db=str(db)), env={})
    assert again.checklist == first.checklist
    again.store.close()


def test_a_damaged_cache_is_parsed_afresh(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    Services.from_settings(Settings(preflight_db=str(db)), env={}).store.close()
    cache = ParsedCache.beside(str(db))
    assert cache is not None
    cache.file.write_text('{"key": "x", "checklist": [')
    again = Services.from_settings(Settings(preflight_db=str(db)), env={})
    assert len(again.checklist.items) == len(load_bundled().items)
    assert json.loads(cache.file.read_text())["key"] != "x"  # rewritten
    again.store.close()


def test_a_store_in_memory_has_no_cache() -> None:
    assert ParsedCache.beside(":memory:") is None and ParsedCache.beside(None) is None


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        "sys.argv = ['preflight', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        # markdown_it may come with rich, which typer uses to format the help itself.
        "heavy = {'pydantic', 'pydantic_settings', 'sqlite_utils', 'boto3', 'bot.checklist',"
        " 'bot.services', 'store'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert "Usage" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_status_json_is_plain_json(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFLIGHT_DB": str(tmp_path / "p.db")}
    env.pop("SLACK_BOT_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "status", "--cached", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert "\x1b[" not in done.stdout
    data = json.loads(done.stdout)
    assert data["items"]["total"] == len(load_bundled().items)
    assert done.stdout.startswith('{\n  "gate": ')
