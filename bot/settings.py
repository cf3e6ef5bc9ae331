"""Process settings from the environment (and an optional .env file), as DESIGN.md lists them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: str | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: str | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default="sqlite:///opsbot.db", alias="DATABASE_URL")
    config_path: str = Field(default="opsbot.yaml", alias="OPSBOT_CONFIG")
    alert_token: str | None = Field(default=None, alias="OPSBOT_ALERT_TOKEN")
    public_url: str | None = Field(default=None, alias="OPSBOT_PUBLIC_URL")
    smtp_url: str | None = Field(default=None, alias="OPSBOT_SMTP_URL")
    mail_from: str | None = Field(default=None, alias="OPSBOT_MAIL_FROM")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", alias="OPSBOT_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(default="text", alias="OPSBOT_LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def require(self, *names: str) -> None:
        """Fail early with the variable's name when a command needs a setting that is missing."""
        missing = []
        for name in names:
            field = type(self).model_fields[name]
            if not getattr(self, name):
                missing.append(field.alias or name)
        if missing:
            raise MissingSetting(missing)


class MissingSetting(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__("missing environment variable(s): " + ", ".join(names))
        self.names = names
