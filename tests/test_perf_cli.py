"""Big-checklist paths (issue 11): the parsed checklist is cached by content hash in the store
(every backend) and reads back equal to a fresh parse; `preflight --help` imports nothing heavy;
`status --json` is plain JSON written by the standard library."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.checklist import load_bundled, parse_checklist
from bot.parsed_cache import ParsedCache, cache_key, from_data, to_data
from bot.services import Services
from bot.settings import Settings
from store import Store
from store.parsed import KEEP_PARSED
from tests.perf.big_checklist import big_checklist_text
from tests.support.store_helpers import StoreFactory

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


def _parsed_keys(store: Store) -> list[str]:
    with store._read():
        return [r["key"] for r in store._all("SELECT key FROM parsed_checklists ORDER BY key")]


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any parse of a checklist by the services fail; the in-process memo is emptied so
    that only the store's cache can answer."""
    import bot.services

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(bot.services, "parse_checklist", no_parse)
    bot.services._parsed.cache_clear()


@pytest.mark.parametrize("backend", ["file", "postgresql"])
def test_a_second_start_reads_the_parse_from_the_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    target = StoreFactory(backend, request, tmp_path).target
    first = Services.from_settings(Settings(preflight_db=target), env={})
    assert len(_parsed_keys(first.store)) == 1
    first.store.close()
    assert not (tmp_path / "preflight.db-parsed").exists()  # nothing beside the store

    _no_parse(monkeypatch)
    again = Services.from_settings(Settings(preflight_db=target), env={})
    assert again.checklist == first.checklist
    again.store.close()


def test_a_store_in_memory_keeps_the_parse_too(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(":memory:")
    first = Services.from_settings(Settings(preflight_db=":memory:"), env={}, store=store)
    assert len(_parsed_keys(store)) == 1
    _no_parse(monkeypatch)
    assert first.refresh(force=True) is True  # rebuilt from the store, parse from the cache
    assert first.checklist.items and len(first.checklist.items) == len(load_bundled().items)
    store.close()


def test_a_damaged_cache_is_parsed_afresh(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with Store.open(db) as store:
        Services.from_settings(Settings(preflight_db=str(db)), env={}, store=store)
        (key,) = _parsed_keys(store)
        store.save_parsed_checklist(key, '{"title": "T", "items": [')
    again = Services.from_settings(Settings(preflight_db=str(db)), env={})
    assert len(again.checklist.items) == len(load_bundled().items)
    assert ParsedCache(again.store).get(key) == parse_checklist(
        again.store.current_checklist().source_text, source="bundled"
    )  # rewritten
    again.store.close()


def test_a_store_that_refuses_the_parse_still_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: Store, key: str, data: str) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "save_parsed_checklist", refuse)
    services = Services.from_settings(Settings(preflight_db=str(tmp_path / "p.db")), env={})
    assert len(services.checklist.items) == len(load_bundled().items)
    assert _parsed_keys(services.store) == []
    assert "the parsed checklist was not kept (OperationalError)" in caplog.text
    services.store.close()


def test_a_new_document_replaces_the_old_parses(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    services = Services.from_settings(Settings(preflight_db=str(db)), env={})
    (bundled_key,) = _parsed_keys(services.store)
    for n in range(4):
        doc = tmp_path / f"c{n}.md"
        doc.write_text(f"# C{n}\n\n## S\n\n- [ ] item {n} <!-- id: i{n} -->\n", "utf-8")
        services.import_file(doc)
    keys = _parsed_keys(services.store)
    assert len(keys) == KEEP_PARSED and bundled_key not in keys
    assert cache_key(doc.read_text("utf-8"), str(doc)) in keys  # the newest stays
    services.store.close()


def test_an_old_cache_file_beside_the_store_is_removed(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    old = tmp_path / "p.db-parsed"
    old.write_text('{"key": "x", "checklist": {}}')
    Services.from_settings(Settings(preflight_db=str(db)), env={}).store.close()
    assert not old.exists()


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
