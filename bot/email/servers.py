"""Where the mailbox and the mail server are: ``imaps://user:password@host/INBOX`` and
``smtp://user:password@host:587`` read once into typed values (secrets never printed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

_IMAP_SCHEMES = {"imap": (143, False), "imaps": (993, True)}
_SMTP_SCHEMES = {
    "smtp": (25, "plain"),
    "smtp+starttls": (587, "starttls"),
    "smtps": (465, "tls"),
}


@dataclass(frozen=True, slots=True)
class ImapServer:
    """The helpline's mailbox."""

    host: str
    port: int
    tls: bool
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """The server our mail goes out through; ``security`` is plain, starttls or tls."""

    host: str
    port: int
    security: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


def imap_server(url: str) -> ImapServer:
    """``imap[s]://user:password@host[:port][/FOLDER]``; ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in _IMAP_SCHEMES or not parts.hostname:
        raise ValueError("HELPLINE_IMAP_URL must look like imaps://user:password@host/INBOX")
    port, tls = _IMAP_SCHEMES[parts.scheme]
    if not parts.username or parts.password is None:
        raise ValueError("HELPLINE_IMAP_URL needs a user and a password")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapServer(
        host=parts.hostname,
        port=parts.port or port,
        tls=tls,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
    )


def smtp_server(url: str) -> SmtpServer:
    """``smtp://``, ``smtp+starttls://`` or ``smtps://`` with optional user:password."""
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_SCHEMES or not parts.hostname:
        raise ValueError("HELPLINE_SMTP_URL must look like smtp+starttls://user:password@host:587")
    port, security = _SMTP_SCHEMES[parts.scheme]
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or port,
        security=security,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
