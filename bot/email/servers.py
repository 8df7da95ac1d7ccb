"""Where the mailbox and the mail server are: ``imaps://user:password@host/INBOX`` and
``smtp://user:password@host:587`` read once into typed values (secrets never printed).

With OAuth2 (:mod:`bot.email.oauth`) the URLs name the user and no password: both
servers sign in with ``XOAUTH2`` and a token from the same source."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from bot.email.oauth import OAuthTokens

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
    tokens: OAuthTokens | None = field(default=None, repr=False, compare=False)
    """Sign in with ``XOAUTH2`` and these tokens (no password)."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """The server our mail goes out through; ``security`` is plain, starttls or tls."""

    host: str
    port: int
    security: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tokens: OAuthTokens | None = field(default=None, repr=False, compare=False)
    """Sign in with ``XOAUTH2`` as ``user`` and these tokens (no password)."""


def imap_server(url: str, tokens: OAuthTokens | None = None) -> ImapServer:
    """``imap[s]://user:password@host[:port][/FOLDER]`` (no password with ``tokens``);
    ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in _IMAP_SCHEMES or not parts.hostname:
        raise ValueError("HELPLINE_IMAP_URL must look like imaps://user:password@host/INBOX")
    port, tls = _IMAP_SCHEMES[parts.scheme]
    if not parts.username or (parts.password is None and tokens is None):
        raise ValueError("HELPLINE_IMAP_URL needs a user and a password")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapServer(
        host=parts.hostname,
        port=parts.port or port,
        tls=tls,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=folder,
        tokens=tokens,
    )


def smtp_server(url: str, tokens: OAuthTokens | None = None, user: str = "") -> SmtpServer:
    """``smtp://``, ``smtp+starttls://`` or ``smtps://`` with optional user:password; with
    ``tokens``, the URL's user (else ``user``, the mailbox's) signs in with them."""
    parts = urlsplit(url)
    if parts.scheme not in _SMTP_SCHEMES or not parts.hostname:
        raise ValueError("HELPLINE_SMTP_URL must look like smtp+starttls://user:password@host:587")
    port, security = _SMTP_SCHEMES[parts.scheme]
    named = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or port,
        security=security,
        user=(named or user) if tokens is not None else named,
        password=None if tokens is not None else password,
        tokens=tokens,
    )
