"""Email settings: the helpline's address, and what ``helpline run`` needs with a mailbox."""

from __future__ import annotations

from typing import Any

import pytest

from bot.email.servers import imap_server, smtp_server
from bot.settings import Settings

IMAP = "imaps://helpline%40school.example:p%40ss@imap.school.example/Enquiries"


def test_address_defaults_to_the_imap_user_when_it_is_one() -> None:
    settings = Settings(imap_url=IMAP, telegram_bot_token="1:x")
    assert settings.email_enabled
    assert settings.email_address == "helpline@school.example"
    assert Settings(imap_url=IMAP, email_from="Desk@School.example").email_address == (
        "desk@school.example"
    )
    assert Settings(imap_url="imaps://helpline:pw@imap.test/").email_address is None


def test_a_mailbox_needs_smtp_and_an_address_to_run() -> None:
    settings = Settings(imap_url="imaps://helpline:pw@imap.test/", telegram_bot_token="1:x")
    assert {"HELPLINE_SMTP_URL", "HELPLINE_EMAIL_FROM"} <= set(settings.missing_for_run())


def test_server_urls_are_read_and_passwords_never_printed() -> None:
    server = imap_server(IMAP)
    assert (server.host, server.port, server.tls, server.folder) == (
        "imap.school.example",
        993,
        True,
        "Enquiries",
    )
    assert server.user == "helpline@school.example" and server.password == "p@ss"
    assert "p@ss" not in repr(server)
    smtp = smtp_server("smtp+starttls://u:secret@smtp.test")
    assert (smtp.port, smtp.security) == (587, "starttls") and "secret" not in repr(smtp)
    with pytest.raises(ValueError):
        imap_server("http://x.test/")
    with pytest.raises(ValueError):
        smtp_server("imap://x.test/")


def test_telegram_is_one_way_in_among_others_not_a_requirement() -> None:
    mail: dict[str, Any] = {
        "imap_url": IMAP,
        "smtp_url": "smtp://helpline:pw@smtp.test/",
        "email_from": "helpline@school.example",
    }
    assert Settings(web_chat=False, **mail).missing_for_run() == []  # email only
    assert Settings(web_chat=True).missing_for_run() == []  # the web chat only
    nothing = Settings(web_chat=False)
    assert not nothing.telegram_enabled and nothing.missing_for_run() == ["TELEGRAM_BOT_TOKEN"]
    # A webhook's secret is only asked for when Telegram runs at all.
    hook: dict[str, Any] = {"telegram_webhook_url": "https://helpline.example/telegram"}
    assert Settings(**hook).missing_for_run() == []
    assert Settings(telegram_bot_token="1:x", **hook).missing_for_run() == [
        "TELEGRAM_WEBHOOK_SECRET"
    ]
