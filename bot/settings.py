"""Typed settings, read once from the environment (or a ``.env`` file) by the composition root."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows.hours import WorkingCalendar
from storage.db import DEFAULT_URL, supported_url


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def given(secret: SecretStr | None) -> bool:
    """Whether a secret was set to something (an empty or blank value counts as unset)."""
    return secret is not None and bool(secret.get_secret_value().strip())


class Settings(BaseSettings):
    """Every knob of the service. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(DEFAULT_URL, validation_alias=_env("HELPLINE_DATABASE_URL"))

    @field_validator("database_url")
    @classmethod
    def _sqlite_or_postgresql(cls, url: str) -> str:
        # Checked before anything is made for it (a key file) or connects to it; the
        # message never repeats the URL, which can hold a password.
        if not supported_url(url):
            raise ValueError(
                "it must be a SQLite or PostgreSQL URL, such as sqlite:///helpline.db "
                "or postgresql://user@host/helpline"
            )
        return url

    http_host: str = Field("127.0.0.1", validation_alias=_env("HELPLINE_HTTP_HOST"))
    http_port: int = Field(8080, validation_alias=_env("HELPLINE_HTTP_PORT"))
    log_level: str = Field("INFO", validation_alias=_env("HELPLINE_LOG_LEVEL"))
    retention_days: int = Field(365, ge=1, validation_alias=_env("HELPLINE_RETENTION_DAYS"))
    data_key: SecretStr | None = Field(None, validation_alias=_env("HELPLINE_DATA_KEY"))
    """The key(s) personal fields are encrypted with, newest first (see storage.encryption)."""

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
    slack_practitioners: str | None = Field(None, validation_alias=_env("SLACK_PRACTITIONERS"))
    """A Slack user group (``S…``) whose members may act on cards; unset: the desk channel."""

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

    imap_url: SecretStr | None = Field(None, validation_alias=_env("HELPLINE_IMAP_URL"))
    imap_poll_seconds: float = Field(
        30.0, gt=0, validation_alias=_env("HELPLINE_IMAP_POLL_SECONDS")
    )
    imap_done_folder: str = Field("", validation_alias=_env("HELPLINE_IMAP_DONE_FOLDER"))
    smtp_url: SecretStr | None = Field(None, validation_alias=_env("HELPLINE_SMTP_URL"))
    email_from: str | None = Field(None, validation_alias=_env("HELPLINE_EMAIL_FROM"))
    email_max_mb: float = Field(15.0, gt=0, validation_alias=_env("HELPLINE_EMAIL_MAX_MB"))
    email_acks_per_hour: int = Field(3, ge=0, validation_alias=_env("HELPLINE_EMAIL_ACKS_PER_HOUR"))
    email_notices: bool = Field(False, validation_alias=_env("HELPLINE_EMAIL_NOTICES"))
    email_oauth_token_url: str = Field("", validation_alias=_env("HELPLINE_EMAIL_OAUTH_TOKEN_URL"))
    email_oauth_client_id: str = Field("", validation_alias=_env("HELPLINE_EMAIL_OAUTH_CLIENT_ID"))
    email_oauth_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("HELPLINE_EMAIL_OAUTH_CLIENT_SECRET")
    )
    email_oauth_scope: str = Field("", validation_alias=_env("HELPLINE_EMAIL_OAUTH_SCOPE"))
    email_oauth_refresh_token: SecretStr | None = Field(
        None, validation_alias=_env("HELPLINE_EMAIL_OAUTH_REFRESH_TOKEN")
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
    def data_key_text(self) -> str | None:
        """The data key(s) as text, or None for the embedded default (a key file)."""
        key = self.data_key
        return key.get_secret_value() if key is not None and given(key) else None

    @property
    def telegram_enabled(self) -> bool:
        """Telegram intake runs when a bot token is set (the web chat and email need none)."""
        return given(self.telegram_bot_token)

    @property
    def slack_enabled(self) -> bool:
        """Slack is used when a bot token and a channel are set."""
        return given(self.slack_bot_token) and bool(self.slack_channel_id)

    @property
    def email_enabled(self) -> bool:
        """The mailbox is read when an IMAP URL is set (replies need ``HELPLINE_SMTP_URL``)."""
        return given(self.imap_url)

    @property
    def email_address(self) -> str | None:
        """The helpline's own address: ``HELPLINE_EMAIL_FROM``, else the IMAP user if it is one."""
        if self.email_from:
            return self.email_from.strip().lower()
        if not given(self.imap_url) or self.imap_url is None:
            return None
        user = unquote(urlsplit(self.imap_url.get_secret_value()).username or "")
        return user.lower() if "@" in user else None

    @property
    def email_outgoing(self) -> str | None:
        """The helpline's address when it sends email (the mailbox and ``HELPLINE_SMTP_URL``
        both set), else None: a copy asked for in a chat is emailed only then."""
        return self.email_address if self.email_enabled and given(self.smtp_url) else None

    def missing_for_run(self) -> list[str]:
        """Settings without which ``helpline run`` cannot start, by their environment names."""
        missing = []
        if not self.database_url.startswith("sqlite") and not given(self.data_key):
            missing.append("HELPLINE_DATA_KEY")
        if not (self.telegram_enabled or self.web_chat or self.email_enabled):
            missing.append("TELEGRAM_BOT_TOKEN")  # no way in for enquirers at all
        if (
            self.telegram_enabled
            and self.telegram_webhook_url
            and not given(self.telegram_webhook_secret)
        ):
            missing.append("TELEGRAM_WEBHOOK_SECRET")
        socket_mode = given(self.slack_app_token)
        if self.slack_enabled and not socket_mode and not given(self.slack_signing_secret):
            missing.append("SLACK_SIGNING_SECRET")
        if self.email_enabled and not given(self.smtp_url):
            missing.append("HELPLINE_SMTP_URL")
        if self.email_enabled and not self.email_address:
            missing.append("HELPLINE_EMAIL_FROM")
        if self.email_enabled and self.email_oauth_token_url:
            if not self.email_oauth_client_id:
                missing.append("HELPLINE_EMAIL_OAUTH_CLIENT_ID")
            if not given(self.email_oauth_client_secret):
                missing.append("HELPLINE_EMAIL_OAUTH_CLIENT_SECRET")
        return missing
