"""Preflight's own settings. Check targets (DB_HOST, FRONTEND_URL, PREFLIGHT_API_URL, ...) are
read by the checks themselves from the environment; this is what the bot needs to run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"


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

    preflight_check_timeout: float = 10.0
    preflight_checks_workers: int = 4  # concurrent /preflight status runs (each fans out itself)
    preflight_listener_workers: int = 16  # Bolt listener threads: acks must never queue behind work

    @field_validator("preflight_deciders", "preflight_admins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and bool(self.slack_bot_token.get_secret_value())

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None and bool(self.slack_app_token.get_secret_value())
