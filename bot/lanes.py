"""Ack lanes: Preflight's HTTP request threads take turns, in the order they arrived.

Answering a slash command is CPU work under the GIL: verify, parse, read the store, build
blocks. With ten requests in flight on one core, every store call and every socket read hands
the GIL to another thread and queues to get it back, so the answers come out in a random order
with a long tail. Taking turns in arrival order, two at a time, evens the tail out. Measured
with the server pinned to one CPU, 1,000 requests, two runs each (ms, p99; req/s at c=50):

    /decide  c=10: no lanes 21-26, two 20-23 · c=50: no lanes 77-78 at 1,430 req/s, two 49-58
             at 1,250-1,320 · one lane: c=10 19-23, c=50 55-59 at only 1,060-1,100 req/s
    /preflight status  c=10: no lanes 24-32, two 19-21 · c=50: no lanes 91-95, two 58-99

One turn alone evened the tail as well but left the CPU idle whenever its holder waited on a
commit's write; two keep the CPU busy.

A turn is not a lock around anything: a thread that would wait on something other than the
CPU (its listener's ack from the pool) steps aside, and a thread that waited longer than
`overflow_s` goes ahead without a turn, so a holder stuck on a slow store costs the others
some milliseconds, never their answer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

# Longest a request waits for its turn before it goes ahead anyway: far above the queue a
# healthy server builds (50 requests x well under 1 ms each), far below Slack's 3 s.
OVERFLOW_S = 0.25


class AckLanes:
    """`width` turns, handed to waiting threads first come, first served."""

    def __init__(self, width: int, overflow_s: float = OVERFLOW_S) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self.width = width
        self._overflow_s = overflow_s
        self._lock = threading.Lock()
        self._free = width
        self._waiting: deque[threading.Lock] = deque()
        self._mine = threading.local()
        self.overflows = 0  # requests that went ahead without a turn (tests, diagnostics)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a turn for the block (or until step_aside); waits for it in arrival order."""
        self._mine.held = self._acquire()
        try:
            yield
        finally:
            self.step_aside()

    def step_aside(self) -> None:
        """Give this thread's turn to the next in line, if it holds one (else nothing)."""
        if not getattr(self._mine, "held", False):
            return
        self._mine.held = False
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()  # handed over: _free stays as it is
            else:
                self._free += 1

    def _acquire(self) -> bool:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            baton = threading.Lock()
            baton.acquire()
            self._waiting.append(baton)
        if baton.acquire(timeout=self._overflow_s):
            return True
        with self._lock:
            if baton in self._waiting:  # still in line: go ahead without a turn
                self._waiting.remove(baton)
                self.overflows += 1
                return False
        return True  # handed a turn just as the wait ran out: it is ours to give back
