"""Logging that never carries tokens, message text or personal details.

httpx logs every request URL at INFO, and Telegram's URLs contain the bot token, so
httpx and httpcore are held at WARNING; every record passes through a filter that masks
anything shaped like a bot token or a Slack token, and libraries' DEBUG records (which
dump whole updates and request bodies) are dropped whatever level is configured.
"""

from __future__ import annotations

import logging
import re
import traceback

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
    "imapclient",  # IMAP commands and fetched mail
    "aiosmtplib",  # SMTP conversation, including the message
    "aiosmtpd",
    "mailparser_reply",
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
    """``text`` with anything shaped like a bot or Slack token masked, so it is safe to log."""
    return _SECRETS.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    """Drops libraries' payload dumps and masks secrets in every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop libraries' debug payload dumps; mask secrets in the message and the traceback."""
        if record.levelno < logging.INFO and record.name.startswith(PAYLOAD_LOGGERS):
            return False
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(where_it_failed(record.exc_info[1]))
            record.exc_info = None
        return True


def where_it_failed(error: BaseException) -> str:
    """A traceback with the code's lines but not the exceptions' messages.

    A database error's message quotes the statement's parameters, and so what an
    enquirer wrote; the frames and the exception classes are what a developer needs.
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(
            f"Traceback (most recent call last):\n{frames}{kind(current)} (message withheld)"
        )
        current = current.__cause__ or current.__context__
    return "\n\nwhich led to:\n".join(reversed(parts))


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
