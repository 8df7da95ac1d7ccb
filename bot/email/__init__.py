"""The email channel: the helpline's mailbox read into the desk, replies sent by SMTP.

:func:`build_email` is its entry for the composition root: the mailbox poller (a
background job) and the outbox sender for the ``email`` channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import Core
from bot.email.intake import CHANNEL, EmailIntake
from bot.email.mailbox import MailPoller
from bot.email.oauth import OAuthClient, OAuthTokens
from bot.email.sending import EmailSender
from bot.email.servers import ImapServer, SmtpServer, imap_server, smtp_server
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
    server, outgoing = email_servers(settings)
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
    if outgoing is not None:
        sender = EmailSender(
            sessions=core.sessions,
            server=outgoing,
            address=address,
            flow=core.flow,
            clock=core.clock,
            notices=settings.email_notices,
        )
    return EmailChannel(intake=intake, poller=poller, sender=sender)


def email_servers(settings: Settings) -> tuple[ImapServer, SmtpServer | None]:
    """The mailbox and the outgoing server (None without ``HELPLINE_SMTP_URL``), signing
    in with one source of OAuth2 tokens when one is set up."""
    if settings.imap_url is None:
        raise ValueError("HELPLINE_IMAP_URL is not set")
    tokens = oauth_tokens(settings)
    mailbox = imap_server(settings.imap_url.get_secret_value(), tokens)
    smtp = settings.smtp_url.get_secret_value().strip() if settings.smtp_url else ""
    return mailbox, smtp_server(smtp, tokens, mailbox.user) if smtp else None


def oauth_tokens(settings: Settings) -> OAuthTokens | None:
    """The mailbox's OAuth2 tokens, when ``HELPLINE_EMAIL_OAUTH_TOKEN_URL`` is set."""
    if not settings.email_oauth_token_url:
        return None
    secret, refresh = settings.email_oauth_client_secret, settings.email_oauth_refresh_token
    return OAuthTokens(
        OAuthClient(
            token_url=settings.email_oauth_token_url,
            client_id=settings.email_oauth_client_id,
            client_secret=secret.get_secret_value() if secret else "",
            scope=settings.email_oauth_scope,
            refresh_token=refresh.get_secret_value() if refresh else "",
        )
    )
