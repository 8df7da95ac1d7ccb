"""Typed settings, read once from the environment (or a ``.env`` file) by the composition root."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.hours import WorkingCalendar
from storage.db import DEFAULT_URL


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def given(secret: SecretStr | None) -> bool:
    """Whether a secret was set to something (an empty or blank value counts as unset)."""
    return secret is not None and bool(secret.get_secret_value().strip())


class Settings(BaseSettings):
    """Every knob of the service. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_URL, validation_alias=_env("HELPLINE_DATABASE_URL"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("HELPLINE_HTTP_HOST"))
    http_port: int = Field(8080, validation_alias=_env("HELPLINE_HTTP_PORT"))
    log_level: str = Field("INFO", validation_alias=_env("HELPLINE_LOG_LEVEL"))
    retention_days: int = Field(365, ge=1, validation_alias=_env("HELPLINE_RETENTION_DAYS"))

    hours: str = Field("Mon-Fri 10:00-16:00", validation_alias=_env("HELPLINE_HOURS"))
    timezone: str = Field("Europe/London", validation_alias=_env("HELPLINE_TIMEZONE"))
    holiday_region: str = Field("ENG", validation_alias=_env("HELPLINE_HOLIDAY_REGION"))
    closures: str = Field("", validation_alias=_env("HELPLINE_CLOSURES"))
    response_target_hours: float = Field(
        3.0, gt=0, validation_alias=_env("HELPLINE_RESPONSE_TARGET_HOURS")
    )

    outbox_poll_seconds: float = Field(
        1.0, gt=0, validation_alias=_env("HELPLINE_OUTBOX_POLL_SECONDS")
    )
    outbox_backoff_seconds: float = Field(
        1.0, gt=0, validation_alias=_env("HELPLINE_OUTBOX_BACKOFF_SECONDS")
    )
    outbox_backoff_cap_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("HELPLINE_OUTBOX_BACKOFF_CAP_SECONDS")
    )
    outbox_stuck_seconds: float = Field(
        600.0, gt=0, validation_alias=_env("HELPLINE_OUTBOX_STUCK_SECONDS")
    )
    lease_seconds: float = Field(15.0, gt=0, validation_alias=_env("HELPLINE_LEASE_SECONDS"))
    health_timeout_seconds: float = Field(
        2.0, gt=0, validation_alias=_env("HELPLINE_HEALTH_TIMEOUT_SECONDS")
    )

    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_channel_id: str | None = Field(None, validation_alias=_env("SLACK_CHANNEL_ID"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    slack_oncall: str | None = Field(None, validation_alias=_env("SLACK_ONCALL"))
    timer_seconds: float = Field(30.0, gt=0, validation_alias=_env("HELPLINE_TIMER_SECONDS"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))

    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_api_base_url: str = Field(
        "https://api.telegram.org/bot", validation_alias=_env("TELEGRAM_API_BASE_URL")
    )
    telegram_chat_rate: float = Field(1.0, gt=0, validation_alias=_env("TELEGRAM_CHAT_RATE"))
    telegram_chat_burst: int = Field(3, ge=1, validation_alias=_env("TELEGRAM_CHAT_BURST"))
    telegram_send_patience: float = Field(
        120.0, gt=0, validation_alias=_env("TELEGRAM_SEND_PATIENCE")
    )
    telegram_webhook_url: str | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_webhook_connections: int = Field(
        20, ge=1, le=100, validation_alias=_env("TELEGRAM_WEBHOOK_MAX_CONNECTIONS")
    )

    web_chat: bool = Field(True, validation_alias=_env("HELPLINE_WEB_CHAT"))
    web_origins: str = Field("", validation_alias=_env("HELPLINE_WEB_ORIGINS"))
    web_exit_url: str = Field(
        "https://www.bbc.co.uk/weather", validation_alias=_env("HELPLINE_WEB_EXIT_URL")
    )
    web_poll_seconds: float = Field(0.5, gt=0, validation_alias=_env("HELPLINE_WEB_POLL_SECONDS"))
    web_session_rate: int = Field(30, ge=1, validation_alias=_env("HELPLINE_WEB_SESSION_RATE"))
    web_address_rate: int = Field(300, ge=1, validation_alias=_env("HELPLINE_WEB_ADDRESS_RATE"))

    def calendar(self) -> WorkingCalendar:
        """The helpline's working-time calendar (raises ValueError on a bad spec)."""
        return WorkingCalendar.from_spec(
            hours=self.hours,
            timezone=self.timezone,
            holiday_region=self.holiday_region,
            closures=self.closures,
        )

    @property
    def response_target(self) -> timedelta:
        """How soon a case is due, in working time."""
        return timedelta(hours=self.response_target_hours)

    @property
    def slack_enabled(self) -> bool:
        """Slack is used when a bot token and a channel are set."""
        return given(self.slack_bot_token) and bool(self.slack_channel_id)

    def missing_for_run(self) -> list[str]:
        """Settings without which ``helpline run`` cannot start, by their environment names."""
        missing = []
        if not given(self.telegram_bot_token):
            missing.append("TELEGRAM_BOT_TOKEN")
        if self.telegram_webhook_url and not given(self.telegram_webhook_secret):
            missing.append("TELEGRAM_WEBHOOK_SECRET")
        socket_mode = given(self.slack_app_token)
        if self.slack_enabled and not socket_mode and not given(self.slack_signing_secret):
            missing.append("SLACK_SIGNING_SECRET")
        return missing
