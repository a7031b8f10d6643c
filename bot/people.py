"""People's display names from Slack (`users.info`, scope `users:read`), cached with a time limit.

Renderers take a `Names` callable (user id -> name) so records, post-mortems, exports and the App
Home say "Alice Ng" where they used to say `U0ALICE`. Where a person should be notified, keep a
`<@U…>` mention instead: Slack shows it as the name and pings the person.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger("preflight.people")

Names = Callable[[str], str]
PEOPLE_CACHE_S = 3600.0  # a renamed person shows the new name within the hour
FAILURE_CACHE_S = 60.0  # an id Slack could not name is asked about again after a minute
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")  # what users.info can answer for


def same(user: str) -> str:
    """The Names for places with no Slack client (the CLI): ids stay ids."""
    return user


class People:
    """user id -> display name, one `users.info` call per person per `ttl` seconds; on any
    failure the id itself. Thread-safe: concurrent lookups of one person make one call."""

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = PEOPLE_CACHE_S,
        failure_ttl: float = FAILURE_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __call__(self, user_id: str) -> str:
        return self.name(user_id)

    def name(self, user_id: str) -> str:
        """The name people see in Slack: display name, else real name, else user name, else id."""
        user = self.info(user_id)
        if not user:
            return user_id
        profile = user.get("profile") or {}
        for candidate in (
            profile.get("display_name"),
            profile.get("real_name"),
            user.get("real_name"),
            user.get("name"),
        ):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
        return user_id

    def info(self, user_id: str) -> dict[str, Any] | None:
        """users.info's `user` object (cached), or None when Slack cannot say. Also what a
        caller needs for a person's time zone (`tz`)."""
        if not _USER_ID.fullmatch(user_id or ""):
            return None  # a CLI user name or an empty id: nothing to ask Slack
        hit = self._fresh(user_id)
        if hit is not None:
            return hit[1]
        with self._lock:
            lock = self._locks.setdefault(user_id, threading.Lock())
        with lock:  # one call per person even when several renderers ask at once
            hit = self._fresh(user_id)
            if hit is not None:
                return hit[1]
            user: dict[str, Any] | None
            try:
                user = self._client.users_info(user=user_id).get("user") or None
            except SlackApiError as exc:
                log.info("users.info %s: %s", user_id, exc.response.get("error"))
                user = None
            except OSError as exc:  # timeouts, resets: Slack did not answer
                log.info("users.info %s: %s", user_id, type(exc).__name__)
                user = None
            with self._lock:
                self._cache[user_id] = (self._clock(), user)
            return user

    def _fresh(self, user_id: str) -> tuple[float, dict[str, Any] | None] | None:
        with self._lock:
            hit = self._cache.get(user_id)
        if hit is None:
            return None
        limit = self._ttl if hit[1] is not None else self._failure_ttl
        return hit if self._clock() - hit[0] < limit else None
