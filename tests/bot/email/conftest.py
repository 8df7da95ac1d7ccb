"""Mail server fixtures: a real Dovecot and a real aiosmtpd, each private to one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.oauth import FakeOAuth
from tests.support.mail_servers import DOVECOT, USER, Dovecot, SmtpRecorder, running_as_root


def _dovecot(oauth: FakeOAuth | None = None) -> Iterator[Dovecot]:
    if DOVECOT is None:
        pytest.skip("DOVECOT MISSING: install Debian's dovecot-imapd to run the IMAP tests")
    if not running_as_root():
        pytest.skip("DOVECOT NEEDS ROOT: the test server drops to 'nobody' for mail")
    server = Dovecot(oauth)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """Dovecot on a free loopback port with an empty mailbox."""
    yield from _dovecot()


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    """An SMTP server that records what it accepts."""
    server = SmtpRecorder()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oauth() -> Iterator[FakeOAuth]:
    """A fake OAuth2 provider issuing tokens for the helpline's mailbox."""
    provider = FakeOAuth(USER)
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def oauth_dovecot(oauth: FakeOAuth) -> Iterator[Dovecot]:
    """Dovecot taking ``XOAUTH2`` sign-ins, checking each token with ``oauth``."""
    yield from _dovecot(oauth)


@pytest.fixture
def oauth_smtp(oauth: FakeOAuth) -> Iterator[SmtpRecorder]:
    """An SMTP server that takes mail only after an ``XOAUTH2`` sign-in with ``oauth``."""
    server = SmtpRecorder(oauth)
    server.start()
    try:
        yield server
    finally:
        server.stop()
