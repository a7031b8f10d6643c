"""Ack lanes (bot/lanes.py): request threads take turns in arrival order, a thread that waits
on its listener's ack steps aside, and nobody waits past the overflow for a stuck holder."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.lanes import AckLanes
from tests.support.slack_app import SIGNING_SECRET, SlackApp
from tests.support.slack_requests import block_actions, sign, slash_command


def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never came true"
        time.sleep(0.001)


def _waiting(lanes: AckLanes) -> int:
    with lanes._lock:
        return len(lanes._waiting)


def _free(lanes: AckLanes) -> int:
    with lanes._lock:
        return lanes._free


def test_turns_are_handed_out_in_arrival_order() -> None:
    lanes = AckLanes(1, overflow_s=30)
    order: list[int] = []
    release = threading.Event()

    def holder() -> None:
        with lanes.turn():
            release.wait(5)

    def waiter(n: int) -> None:
        with lanes.turn():
            order.append(n)

    first = threading.Thread(target=holder)
    first.start()
    _until(lambda: _free(lanes) == 0)
    threads = []
    for n in range(8):
        thread = threading.Thread(target=waiter, args=(n,))
        thread.start()
        threads.append(thread)
        _until(lambda: _waiting(lanes) == len(threads))  # queued before the next one arrives
    release.set()
    for thread in [first, *threads]:
        thread.join(5)
    assert order == list(range(8))
    assert lanes.overflows == 0 and _free(lanes) == 1 and _waiting(lanes) == 0


def test_a_wider_lane_lets_that_many_in_at_once() -> None:
    lanes = AckLanes(3, overflow_s=30)
    inside, most = 0, 0
    guard = threading.Lock()
    barrier = threading.Barrier(3, timeout=5)  # only passable when 3 hold a turn together

    def work() -> None:
        nonlocal inside, most
        with lanes.turn():
            with guard:
                inside += 1
                most = max(most, inside)
            barrier.wait()
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most == 3 and _free(lanes) == 3 and lanes.overflows == 0


def test_a_stuck_holder_costs_the_next_the_overflow_not_its_answer() -> None:
    lanes = AckLanes(1, overflow_s=0.05)
    stuck = threading.Event()

    def hold_until_told() -> None:
        with lanes.turn():
            stuck.wait(5)

    holder = threading.Thread(target=hold_until_told)
    holder.start()
    _until(lambda: _free(lanes) == 0)
    done: list[str] = []
    with lanes.turn():  # waits out the overflow, then goes ahead without a turn
        done.append("answered")
        lanes.step_aside()  # nothing to give back: it holds none
    assert done == ["answered"] and lanes.overflows == 1
    assert _free(lanes) == 0 and _waiting(lanes) == 0  # the holder still has its turn
    stuck.set()
    holder.join(5)
    assert _free(lanes) == 1


def test_stepping_aside_gives_the_turn_on_once() -> None:
    lanes = AckLanes(1, overflow_s=30)
    got, leave = threading.Event(), threading.Event()

    def next_in_line() -> None:
        with lanes.turn():
            got.set()
            leave.wait(5)

    with lanes.turn():
        other = threading.Thread(target=next_in_line)
        other.start()
        _until(lambda: _waiting(lanes) == 1)
        lanes.step_aside()
        assert got.wait(5)  # the one in line has it while this block still runs
        lanes.step_aside()  # a second time gives nothing away
        assert _free(lanes) == 0
    assert _free(lanes) == 0  # leaving the block gives nothing away either
    leave.set()
    other.join(5)
    assert _free(lanes) == 1 and lanes.overflows == 0


def test_an_error_inside_a_turn_gives_it_back() -> None:
    lanes = AckLanes(1)
    with pytest.raises(RuntimeError), lanes.turn():
        raise RuntimeError("listener blew up")
    assert _free(lanes) == 1


def test_no_turn_is_lost_or_doubled_under_a_storm_of_overflows() -> None:
    """Short overflows race with hand-overs: a turn handed to a thread the moment its wait ran
    out must still come back, and never two threads hold the one turn."""
    lanes = AckLanes(1, overflow_s=0.0005)
    holding, worst = 0, 0
    guard = threading.Lock()
    rng = random.Random(11)
    pauses = [rng.random() * 0.001 for _ in range(400)]

    def work(pause: float) -> None:
        nonlocal holding, worst
        with lanes.turn():
            held = getattr(lanes._mine, "held", False)
            if held:
                with guard:
                    holding += 1
                    worst = max(worst, holding)
            time.sleep(pause)
            if held:
                with guard:
                    holding -= 1

    threads = [threading.Thread(target=work, args=(p,)) for p in pauses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert worst == 1
    assert _free(lanes) == 1 and _waiting(lanes) == 0
    assert lanes.overflows > 0  # the race was exercised


def test_a_lane_is_at_least_one_wide() -> None:
    with pytest.raises(ValueError):
        AckLanes(0)


def test_a_request_waiting_on_its_listener_steps_aside(slack: SlackApp, slack_http: str) -> None:
    """Over real HTTP: as many buttons as there are turns, each listener on the pool and not
    acked yet; a slash command that arrives meanwhile gets a turn and its answer at once. Had
    the buttons' requests kept their turns, it would have waited out the overflow."""
    lanes: AckLanes = slack.app._preflight_lanes  # type: ignore[attr-defined]
    assert lanes.width == 2  # the SQLite store
    started, go_on = threading.Semaphore(0), threading.Event()

    def slow_button(ack: Any) -> None:
        started.release()
        go_on.wait(5)
        ack()

    slack.app.action("lane_probe")(slow_button)
    url = f"{slack_http}/slack/events"
    answers: list[httpx.Response] = []

    def press(n: int) -> None:
        body, _ = block_actions("lane_probe", str(n), user_id=f"UBUTTON{n}")
        answers.append(httpx.post(url, content=body, headers=sign(SIGNING_SECRET, body)))

    buttons = [threading.Thread(target=press, args=(n,)) for n in range(lanes.width)]
    for button in buttons:
        button.start()
    for _ in buttons:
        assert started.acquire(timeout=5)
    body, _ = slash_command("/preflight", "help")
    command = httpx.post(url, content=body, headers=sign(SIGNING_SECRET, body), timeout=5)
    assert command.status_code == 200 and json.loads(command.text)["text"]
    assert answers == []  # the buttons' requests still wait on their listeners
    assert lanes.overflows == 0  # the command had a turn, not the overflow
    go_on.set()
    for button in buttons:
        button.join(5)
    assert [a.status_code for a in answers] == [200] * lanes.width
    assert _free(lanes) == lanes.width
