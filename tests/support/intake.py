"""Cases submitted through the intake services in this process, as the running service does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.core import open_core
from bot.email.intake import EmailIntake
from bot.settings import Settings
from flows.hours import WorkingCalendar
from flows.intake import IntakeFlow
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


def email_intake(
    sessions: async_sessionmaker[AsyncSession], address: str, **changes: Any
) -> EmailIntake:
    """The email intake for the mailbox ``address``, with the defaults ``helpline run`` has."""
    values: dict[str, Any] = {
        "sessions": sessions,
        "flow": IntakeFlow(),
        "calendar": WorkingCalendar.default(),
        "target": timedelta(hours=3),
        "clock": utcnow,
        "address": address,
    }
    return EmailIntake(**(values | changes))
