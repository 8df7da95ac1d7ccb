"""Cases submitted through the intake service in this process, as the running service does."""

from __future__ import annotations

from bot.core import open_core
from bot.settings import Settings
from flows.messages import Inbound
from tests.support.conversations import PROFESSIONAL_TO_REVIEW


async def submit(url: str, chat: str, data_key: str | None = None) -> str:
    """A teacher's whole enquiry over the Telegram channel's intake; the case's reference."""
    async with open_core(Settings(database_url=url, data_key=data_key)) as core:
        for said in PROFESSIONAL_TO_REVIEW:
            await core.intake.handle("telegram", chat, Inbound.typed(said))
        handled = await core.intake.handle("telegram", chat, Inbound.typed("send"))
        assert handled.case is not None
        return handled.case.reference
