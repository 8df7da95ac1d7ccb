"""``helpline run``: the long-running service (see :mod:`bot.app`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot import logs
from bot.cli.base import Commands, offline
from bot.settings import Settings
from storage import db, encryption

log = logging.getLogger(__name__)

HOW_TO_RUN = """helpline run needs these settings: {missing}.
Set them in the environment or in a .env file, for example:
  TELEGRAM_BOT_TOKEN=123456:ABC...   (from @BotFather)
To try the conversation locally without Telegram, run: helpline chat"""
TOKEN_REJECTED = """Telegram rejected the bot token.
Check TELEGRAM_BOT_TOKEN (from @BotFather), and that TELEGRAM_API_BASE_URL, if set, points
at a Bot API server (for example https://api.telegram.org/bot)."""


def _run_service(settings: Settings, args: argparse.Namespace) -> int:
    from telegram.error import InvalidToken

    from bot.app import serve

    missing = settings.missing_for_run()
    if missing:
        print(HOW_TO_RUN.format(missing=", ".join(missing)), file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    key_file = db.key_file_used(settings.database_url, settings.data_key_text)
    try:
        with encryption.key_file_in_use(key_file):  # no key rotation under a running service
            asyncio.run(serve(settings))
    except InvalidToken:
        # PTB's message quotes the token: say what to check, never what it was.
        print(TOKEN_REJECTED, file=sys.stderr)
        return 2
    except Exception:
        # Through the redacting log handler, not Python's own traceback printer.
        log.critical("the service stopped on an error", exc_info=True)
        return 1
    return 0


def register(commands: Commands, settings: Settings) -> None:
    """``run``."""
    run = commands.add_parser("run", help="run the service: Telegram intake and the HTTP server")
    offline(run, _run_service)
