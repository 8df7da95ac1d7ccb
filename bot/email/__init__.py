"""The email channel: the helpline's mailbox read into the desk, replies sent by SMTP.

:func:`build_email` is its entry for the composition root: the mailbox poller (a
background job) and the outbox sender for the ``email`` channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import Core
from bot.email.intake import CHANNEL, EmailIntake
from bot.email.mailbox import MailPoller
from bot.email.sending import EmailSender
from bot.email.servers import imap_server, smtp_server
from bot.settings import Settings

__all__ = ["CHANNEL", "EmailChannel", "build_email"]


@dataclass(frozen=True, slots=True)
class EmailChannel:
    """The parts :func:`bot.app.build` wires in."""

    intake: EmailIntake
    poller: MailPoller
    sender: EmailSender | None
    """None without ``HELPLINE_SMTP_URL`` (``helpline run`` refuses to start then)."""


def build_email(settings: Settings, core: Core) -> EmailChannel:
    """The email channel from ``settings`` (``HELPLINE_IMAP_URL`` must be set)."""
    if settings.imap_url is None:
        raise ValueError("HELPLINE_IMAP_URL is not set")
    server = imap_server(settings.imap_url.get_secret_value())
    address = settings.email_address or server.user
    intake = EmailIntake(
        sessions=core.sessions,
        flow=core.flow,
        calendar=core.calendar,
        target=settings.response_target,
        clock=core.clock,
        address=address,
        acks_per_hour=settings.email_acks_per_hour,
        max_bytes=int(settings.email_max_mb * 1_000_000),
        on_enqueued=core.wakeup.set,
    )
    poller = MailPoller(
        server=server,
        intake=intake,
        every=settings.imap_poll_seconds,
        done_folder=settings.imap_done_folder,
    )
    sender = None
    if settings.smtp_url is not None and settings.smtp_url.get_secret_value().strip():
        sender = EmailSender(
            sessions=core.sessions,
            server=smtp_server(settings.smtp_url.get_secret_value()),
            address=address,
            flow=core.flow,
            clock=core.clock,
            notices=settings.email_notices,
        )
    return EmailChannel(intake=intake, poller=poller, sender=sender)
