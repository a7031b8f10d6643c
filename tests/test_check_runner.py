"""The runner's promises: concurrency, per-check deadlines, errors contained, secrets redacted."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks import registry
from checks.base import Check, CheckContext, Result, Status
from checks.runner import run_checks, run_one


def _check(check_id: str, run, **kw) -> Check:
    return Check(id=check_id, title=check_id, section="Test", run=run, **kw)


def _sleep(seconds: float, status: Status = Status.PASS):
    def run(ctx: CheckContext) -> Result:
        time.sleep(seconds)
        return Result(status, f"slept {seconds}s", evidence={"slept": seconds}, observations=1)

    return run


def test_checks_run_concurrently_and_keep_their_order() -> None:
    # Each check waits until all five are running: only a concurrent runner gets past it.
    all_running = threading.Barrier(5, timeout=10)

    def meet(ctx: CheckContext) -> Result:
        all_running.wait()
        return Result(Status.PASS, "all five ran at once", observations=1)

    checks = [_check(f"c{i}", meet) for i in range(5)]
    results = run_checks(checks, CheckContext(env={}))
    assert [r.check_id for r in results] == ["c0", "c1", "c2", "c3", "c4"]
    assert all(r.status is Status.PASS for r in results)


def test_a_hanging_check_is_an_error_at_its_deadline_and_others_are_unaffected() -> None:
    release = threading.Event()

    def hang(ctx: CheckContext) -> Result:
        release.wait(30)
        return Result(Status.PASS, "never seen")

    seen: list[str] = []
    checks = [_check("hangs", hang, timeout_s=0.5), _check("quick", _sleep(0.01))]
    results = run_checks(checks, CheckContext(env={}), on_result=lambda r: seen.append(r.check_id))
    assert not release.is_set()  # the run ended while the hanging check still hangs
    release.set()
    assert results[0].status is Status.ERROR
    assert "did not finish within 0.5 s" in results[0].summary
    assert results[1].status is Status.PASS
    assert seen == ["quick", "hangs"]  # the quick one is reported as soon as it is done


def test_an_exception_becomes_an_error_naming_the_check() -> None:
    def boom(ctx: CheckContext) -> Result:
        raise RuntimeError("kaput")

    result = run_one(_check("boom", boom), CheckContext(env={}))
    assert result.status is Status.ERROR
    assert result.check_id == "boom"
    assert "boom failed to run: RuntimeError: kaput" in result.summary


def test_a_non_result_is_an_error() -> None:
    result = run_one(_check("bad", lambda ctx: "PASS"), CheckContext(env={}))  # type: ignore[arg-type,return-value]
    assert result.status is Status.ERROR


def test_active_checks_are_skipped_unless_allowed() -> None:
    check = _check("loud", _sleep(0), active=True)
    assert run_one(check, CheckContext(env={})).status is Status.SKIPPED
    assert run_one(check, CheckContext(env={}, allow_active=True)).status is Status.PASS


def test_results_are_redacted_timed_and_stored() -> None:
    env = {"DB_PASSWORD": "hunter2-not-real", "PREFLIGHT_API_TOKEN": "tok-not-real-123"}

    def leaky(ctx: CheckContext) -> Result:
        return Result(
            Status.FAIL,
            f"login with {ctx.env['DB_PASSWORD']} refused",
            evidence={
                "dsn": "postgresql://app:s3cret-pw@db.local:5432/app",
                "headers": ["Authorization: Bearer tok-not-real-123"],
                "slack": "xoxb-123456789012-fake-token",
            },
            remediation="password=hunter2-not-real is wrong",
        )

    stored: list[Result] = []

    class Sink:
        def save_result(self, result: Result) -> None:
            stored.append(result)

    result = run_checks(
        [_check("leaky", leaky, max_age_s=60)], CheckContext(env=env), store=Sink()
    )[0]
    text = repr(result.to_dict())
    for secret in ("hunter2-not-real", "s3cret-pw", "tok-not-real-123", "xoxb-123456789012"):
        assert secret not in text
    assert "postgresql://app:[REDACTED]@db.local:5432/app" in text
    assert stored == [result]
    assert result.max_age_s == 60 and result.observed_at is not None and result.is_fresh()
    assert result.started_at is not None and result.started_at <= result.observed_at


def test_registry_discovers_builtins_and_refuses_duplicates() -> None:
    builtins = registry.all_checks()
    for check_id, check in builtins.items():
        assert check.id == check_id
    extra = _check("zz_temporary_check", _sleep(0))
    registry.register(extra)
    try:
        assert registry.get("zz_temporary_check") is extra
        with pytest.raises(registry.CheckRegistryError):
            registry.register(extra)
    finally:
        registry.unregister("zz_temporary_check")
    assert registry.get("zz_temporary_check") is None


def _returns(result: Result):
    return lambda ctx: result


def test_a_pass_without_observations_becomes_unknown_keeping_its_summary() -> None:
    blind = _check("blind", _returns(Result(Status.PASS, "no problems in 0 files")))
    result = run_one(blind, CheckContext(env={}))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("observed nothing")
    assert result.summary.endswith("no problems in 0 files")
    assert result.observations == 0
    assert result.remediation  # says what to look at


def test_a_pass_with_observations_stays_a_pass() -> None:
    seen = _check("seen", _returns(Result(Status.PASS, "3 files scanned", observations=3)))
    result = run_one(seen, CheckContext(env={}))
    assert result.status is Status.PASS
    assert result.summary == "3 files scanned"
    assert result.to_dict()["observations"] == 3


@pytest.mark.parametrize(
    "status", [Status.FAIL, Status.WARN, Status.UNKNOWN, Status.SKIPPED, Status.ERROR]
)
def test_other_statuses_are_not_touched_by_the_evidence_rule(status: Status) -> None:
    check = _check("other", _returns(Result(status, "as reported")))
    result = run_one(check, CheckContext(env={}))
    assert result.status is status
    assert result.summary == "as reported"


def test_a_negative_observation_count_is_no_evidence() -> None:
    check = _check("negative", _returns(Result(Status.PASS, "odd", observations=-1)))
    assert run_one(check, CheckContext(env={})).status is Status.UNKNOWN


# --- the registry's start-up rules, on a throwaway checks package --------------------------

_MODULE = """
from checks.base import Check, Result, Status

CHECK = Check(
    id={check_id!r},
    title="fake",
    section="Test",
    run=lambda ctx: Result(Status.PASS, "fake", observations=1),
)
"""


@pytest.fixture
def fake_package(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(name, directory) of an empty importable package; imports are undone afterwards."""
    name = f"preflight_fake_checks_{tmp_path.name.replace('-', '_')}"
    directory = tmp_path / name
    directory.mkdir()
    (directory / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, directory
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def _write(directory: Path, module: str, body: str) -> None:
    (directory / f"{module}.py").write_text(textwrap.dedent(body))


def test_discover_finds_checks_and_skips_helpers(fake_package: tuple[str, Path]) -> None:
    name, directory = fake_package
    _write(directory, "alpha", _MODULE.format(check_id="alpha"))
    _write(directory, "_helper", _MODULE.format(check_id="not_a_check"))
    _write(directory, "runner", _MODULE.format(check_id="machinery"))
    _write(directory, "plain", "VALUE = 1\n")
    found = registry.discover(name, [str(directory)])
    assert list(found) == ["alpha"]


def test_an_id_that_differs_from_its_module_name_is_refused(
    fake_package: tuple[str, Path],
) -> None:
    name, directory = fake_package
    _write(directory, "alpha", _MODULE.format(check_id="beta"))
    with pytest.raises(registry.CheckRegistryError, match="differs from its module name"):
        registry.discover(name, [str(directory)])


def test_two_modules_with_one_id_are_refused(fake_package: tuple[str, Path]) -> None:
    name, directory = fake_package
    _write(directory, "alpha", _MODULE.format(check_id="alpha"))
    _write(directory, "beta", _MODULE.format(check_id="alpha"))
    with pytest.raises(registry.CheckRegistryError):
        registry.discover(name, [str(directory)])


def test_a_check_that_is_not_a_check_is_refused(fake_package: tuple[str, Path]) -> None:
    name, directory = fake_package
    _write(directory, "alpha", "CHECK = {'id': 'alpha'}\n")
    with pytest.raises(registry.CheckRegistryError, match="is not a Check"):
        registry.discover(name, [str(directory)])


def test_registering_a_builtin_id_again_is_refused() -> None:
    with pytest.raises(registry.CheckRegistryError, match="two checks"):
        registry.register(_check("db_connect", _sleep(0)))
    assert registry.get("db_connect") is not _check("db_connect", _sleep(0))


def test_the_builtin_package_obeys_the_rules() -> None:
    found = registry.discover()
    assert found == {k: v for k, v in registry.all_checks().items() if k in found}
    assert all(check_id == check.id for check_id, check in found.items())
