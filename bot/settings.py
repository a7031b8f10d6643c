"""Preflight's own settings. Check targets (DB_HOST, FRONTEND_URL, PREFLIGHT_API_URL, ...) are
read by the checks themselves from the environment; this is what the bot needs to run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"
# Every Web API call runs after the ack, on the work pool: a generous timeout lets a post that
# Slack completes late still return its ts (a runbook run's thread), instead of being lost.
SLACK_API_TIMEOUT_S = 30


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # xapp-...: Socket Mode
    preflight_slack_api_url: str = SLACK_API_URL

    preflight_db: str = "preflight.db"
    # Imported at start when its content differs from the store's current checklist; unset,
    # the store's current checklist stands (the bundled one for a fresh store).
    preflight_checklist: Path | None = None
    # Check id -> item ids for the current checklist (the bundled format); unset, only the
    # `<!-- check: ... -->` annotations bind, or bot/content/bindings.yml for the bundled list.
    preflight_bindings: Path | None = None
    preflight_runbooks_dir: Path | None = None

    # Who may close and reopen decisions, run active checks and manage digests: Slack user
    # ids (U...) or user group ids (S...). Empty means nobody from Slack (fail closed);
    # the CLI is trusted because it runs with the operator's own access.
    preflight_deciders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    preflight_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Section owners may assign that section's items: `section-id=U1,S2;other-section=U3`,
    # section ids being the slugs of `##`/`###` headings (as in item ids).
    preflight_owners: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=dict)

    preflight_check_timeout: float = 10.0
    preflight_checks_workers: int = 4  # concurrent /preflight status runs (each fans out itself)
    # Threads for work after the ack (posting, updating, uploading): enough that one Slack call
    # hanging until its timeout never holds up the others.
    preflight_work_workers: int = 32
    # How many steps of CPU priority (Linux nice) the work threads run below the acks.
    preflight_work_nice: int = Field(default=19, ge=0, le=19)
    preflight_listener_workers: int = 16  # Bolt listener threads: acks must never queue behind work

    # Votes a decision needs before a decider may close it from Slack, unless its checklist text
    # says otherwise (`<!-- quorum: 3 -->`).
    preflight_quorum: int = Field(default=1, ge=0)
    # Skip a scheduled digest when nothing changed since the channel's last one.
    preflight_digest_quiet: bool = False
    # How often the digest scheduler looks for due slots, in seconds past each minute (a divisor
    # of 60). Slots are whole minutes, so 60 loses nothing; tests shorten it to see a slot soon.
    preflight_digest_tick_seconds: int = Field(default=60, ge=1, le=60)

    @field_validator("preflight_deciders", "preflight_admins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("preflight_digest_tick_seconds")
    @classmethod
    def _divides_a_minute(cls, value: int) -> int:
        if 60 % value:
            raise ValueError("PREFLIGHT_DIGEST_TICK_SECONDS must divide 60 (1, 2, 5, 10, 30, 60)")
        return value

    @field_validator("preflight_owners", mode="before")
    @classmethod
    def _owners(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        owners: dict[str, list[str]] = {}
        for entry in value.split(";"):
            section, sep, who = entry.partition("=")
            if not entry.strip():
                continue
            if not sep or not section.strip():
                raise ValueError(f"PREFLIGHT_OWNERS entry {entry.strip()!r} is not section=U…,S…")
            owners.setdefault(section.strip().lower(), []).extend(
                w.strip() for w in who.split(",") if w.strip()
            )
        return owners

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and bool(self.slack_bot_token.get_secret_value())

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None and bool(self.slack_app_token.get_secret_value())
