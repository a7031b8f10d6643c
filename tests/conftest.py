"""Every module in tests/support/ is a pytest plugin: fixtures there are available to all tests."""

import pkgutil
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    f"tests.support.{m.name}"
    for m in pkgutil.iter_modules([str(Path(__file__).parent / "support")])
    if not m.name.startswith("_")
]
