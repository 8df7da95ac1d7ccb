"""Logging that never carries tokens, message text or personal details.

httpx logs every request URL at INFO, and Telegram's URLs contain the bot token, so
httpx and httpcore are held at WARNING; every record passes through a filter that masks
anything shaped like a bot token or a Slack token, and libraries' DEBUG records (which
dump whole updates and request bodies) are dropped whatever level is configured.
"""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(
    r"(?:bot)?\d{5,}:[A-Za-z0-9_-]{20,}"  # Telegram bot token (also inside /bot<token>/ URLs)
    r"|xox[abpre]-[A-Za-z0-9-]+"  # Slack tokens
    r"|xapp-[A-Za-z0-9-]+"
)
# Libraries whose DEBUG records dump payloads (updates, request bodies, SQL parameters).
PAYLOAD_LOGGERS = (
    "telegram",
    "httpx",
    "httpcore",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "slack_sdk",
    "slack_bolt",
    "aiohttp",
    "uvicorn",
)
QUIET = (
    "httpx",
    "httpcore",
    "alembic",
    "matplotlib",
    "telegram.ext.Updater",
    "apscheduler",
    "aiosqlite",
    "asyncio",
)


def kind(error: BaseException | None) -> str:
    """What went wrong, by exception class only: messages can quote what a user wrote."""
    return type(error).__name__ if error is not None else "unknown"


def redact(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    """Drops libraries' payload dumps and masks secrets in every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and record.name.startswith(PAYLOAD_LOGGERS):
            return False
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure(level: str = "INFO") -> None:
    """Log to stderr, redacted, with chatty libraries held back."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
