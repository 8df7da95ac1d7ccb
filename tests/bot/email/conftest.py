"""Mail server fixtures: a real Dovecot and a real aiosmtpd, each private to one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mail_servers import DOVECOT, Dovecot, SmtpRecorder, running_as_root


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """Dovecot on a free loopback port with an empty mailbox."""
    if DOVECOT is None:
        pytest.skip("DOVECOT MISSING: install Debian's dovecot-imapd to run the IMAP tests")
    if not running_as_root():
        pytest.skip("DOVECOT NEEDS ROOT: the test server drops to 'nobody' for mail")
    server = Dovecot()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    """An SMTP server that records what it accepts."""
    server = SmtpRecorder()
    server.start()
    try:
        yield server
    finally:
        server.stop()
