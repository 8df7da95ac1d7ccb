"""Mailboxes that sign in with OAuth2 (Microsoft 365, Google Workspace): tokens from a
fake provider's endpoint over HTTP, ``XOAUTH2`` sign-ins checked by a real Dovecot (its
``oauth2`` passdb asking the provider) and by aiosmtpd."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import utcnow
from bot.email import email_servers
from bot.email.mailbox import MailPoller
from bot.email.oauth import OAuthClient, OAuthError, OAuthTokens
from bot.email.sending import EmailSender
from bot.email.servers import imap_server, smtp_server
from bot.services.outbox import Retry, Sent
from bot.settings import Settings
from flows.intake import IntakeFlow
from storage.models import Case, OutboxMessage
from tests.fakes.oauth import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeOAuth
from tests.support.intake import email_intake
from tests.support.mail_servers import USER, Dovecot, SmtpRecorder, free_port

pytestmark = pytest.mark.e2e
CORPUS = Path(__file__).parent / "corpus"
SCOPE = "https://outlook.office365.com/.default"


class Clock:
    """Seconds that pass only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tokens_for(oauth: FakeOAuth, clock: Clock | None = None, **changes: str) -> OAuthTokens:
    values = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scope": SCOPE} | changes
    client = OAuthClient(token_url=oauth.token_url, **values)
    return OAuthTokens(client, clock=clock or Clock())


async def test_a_token_is_fetched_once_and_kept_until_shortly_before_it_expires(
    oauth: FakeOAuth,
) -> None:
    clock = Clock()
    tokens = tokens_for(oauth, clock)
    first = await tokens.current()
    clock.now += 3600 - 61
    assert await tokens.current() == first
    clock.now += 2  # within a minute of expiring: a sign-in must not race it
    assert await tokens.current() != first
    assert [(g.grant_type, g.scope) for g in oauth.grants] == [("client_credentials", SCOPE)] * 2


async def test_a_refresh_token_is_used_and_a_rotated_one_kept(oauth: FakeOAuth) -> None:
    """Google's consent is a refresh token; a provider that rotates it wants the new one."""
    oauth.rotate, oauth.lifetime = True, 30
    tokens = tokens_for(oauth, refresh_token=REFRESH_TOKEN)
    await tokens.current()
    await tokens.current()  # 30 s is inside the renewal margin: fetched again
    assert [g.grant_type for g in oauth.grants] == ["refresh_token"] * 2
    assert all(g.issued for g in oauth.grants), "the second used the rotated refresh token"


async def test_a_refused_or_missing_endpoint_is_an_error_that_names_no_secret(
    oauth: FakeOAuth,
) -> None:
    with pytest.raises(OAuthError) as refused:
        await tokens_for(oauth, client_secret="wrong-secret").current()
    assert str(refused.value) == "token endpoint refused (401, invalid_client)"
    client = OAuthClient(f"http://127.0.0.1:{free_port()}/token", CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(OAuthError) as unreachable:
        await OAuthTokens(client).current()
    assert "unreachable" in str(unreachable.value)
    for error in (refused.value, unreachable.value):
        assert CLIENT_SECRET not in str(error) and "wrong-secret" not in str(error)
        assert error.__cause__ is None  # nothing of the request chained on for a log


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


def poller_for(
    sessions: async_sessionmaker[AsyncSession], dovecot: Dovecot, tokens: OAuthTokens
) -> MailPoller:
    server = imap_server(dovecot.oauth_url, tokens)
    intake = email_intake(sessions, server.user)
    return MailPoller(server=server, intake=intake)


async def test_the_mailbox_is_read_signing_in_with_a_token(
    sessions: async_sessionmaker[AsyncSession], oauth: FakeOAuth, oauth_dovecot: Dovecot
) -> None:
    oauth_dovecot.deliver((CORPUS / "outlook_new_dsl.eml").read_bytes())
    poller = poller_for(sessions, oauth_dovecot, tokens_for(oauth))
    assert await poller.poll_once() == 1
    assert await count(sessions, Case) == 1
    assert oauth.introspected == ["token-1"], "Dovecot checked the token we signed in with"


async def test_a_revoked_token_fails_one_poll_and_the_next_fetches_another(
    sessions: async_sessionmaker[AsyncSession], oauth: FakeOAuth, oauth_dovecot: Dovecot
) -> None:
    tokens = tokens_for(oauth)
    oauth.revoke(await tokens.current())
    oauth_dovecot.deliver((CORPUS / "outlook_new_dsl.eml").read_bytes())
    poller = poller_for(sessions, oauth_dovecot, tokens)
    with pytest.raises(Exception, match="AUTHENTICATIONFAILED"):
        await poller.poll_once()
    assert await poller.poll_once() == 1
    assert [g.issued for g in oauth.grants] == ["token-1", "token-2"]


async def queue_acknowledged_case(sessions: async_sessionmaker[AsyncSession]) -> OutboxMessage:
    intake = email_intake(sessions, USER)
    await intake.handle((CORPUS / "outlook_new_dsl.eml").read_bytes(), mailbox_key="I:1:1")
    async with sessions() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars()
        return next(r for r in rows if r.kind == "enquirer.message")


async def test_mail_goes_out_signing_in_with_the_same_tokens(
    sessions: async_sessionmaker[AsyncSession], oauth: FakeOAuth, oauth_smtp: SmtpRecorder
) -> None:
    tokens = tokens_for(oauth)
    sender = EmailSender(
        sessions=sessions,
        server=smtp_server(oauth_smtp.url, tokens, USER),
        address=USER,
        flow=IntakeFlow(),
        clock=utcnow,
        timeout=10,
    )
    row = await queue_acknowledged_case(sessions)
    oauth.revoke(await tokens.current())
    refused = await sender(row)
    assert isinstance(refused, Retry) and "535" in refused.error
    assert isinstance(await sender(row), Sent), "the refused token was forgotten"
    (sent,) = await oauth_smtp.wait_for(1)
    assert sent["To"] == "jane.smith@hilltop.sch.uk"
    assert oauth_smtp.handler.signed_in == [USER]

    oauth.refuse_next = 1
    tokens.forget()
    unavailable = await sender(row)
    assert isinstance(unavailable, Retry) and "no token" in unavailable.error


def oauth_settings(dovecot: Dovecot, oauth: FakeOAuth, smtp: SmtpRecorder, **env: str) -> Settings:
    values = {
        "HELPLINE_IMAP_URL": dovecot.oauth_url,
        "HELPLINE_SMTP_URL": smtp.url,
        "HELPLINE_EMAIL_OAUTH_TOKEN_URL": oauth.token_url,
        "HELPLINE_EMAIL_OAUTH_CLIENT_ID": CLIENT_ID,
        "HELPLINE_EMAIL_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
    }
    return Settings(**(values | env))  # type: ignore[arg-type]


def test_settings_wire_one_token_source_into_both_servers(
    oauth: FakeOAuth, oauth_dovecot: Dovecot, oauth_smtp: SmtpRecorder
) -> None:
    settings = oauth_settings(oauth_dovecot, oauth, oauth_smtp)
    assert settings.missing_for_run() == []
    mailbox, outgoing = email_servers(settings)
    assert outgoing is not None and mailbox.tokens is not None
    assert outgoing.tokens is mailbox.tokens and outgoing.user == USER
    assert (mailbox.password, outgoing.password) == ("", None)
    without = oauth_settings(
        oauth_dovecot,
        oauth,
        oauth_smtp,
        HELPLINE_EMAIL_OAUTH_CLIENT_ID="",
        HELPLINE_EMAIL_OAUTH_CLIENT_SECRET="",
    )
    assert without.missing_for_run() == [
        "HELPLINE_EMAIL_OAUTH_CLIENT_ID",
        "HELPLINE_EMAIL_OAUTH_CLIENT_SECRET",
    ]
    with pytest.raises(ValueError, match="needs a user and a password"):
        imap_server(oauth_dovecot.oauth_url)  # no password, and no tokens either


@pytest.mark.parametrize("lifetime", ["NaN", "inf", -5, "soon"])
async def test_a_lifetime_that_is_no_number_of_seconds_counts_as_an_hour(
    oauth: FakeOAuth, lifetime: object
) -> None:
    """Else "NaN" would never be renewed, and "-5" renewed at every sign-in."""
    oauth.lifetime = lifetime  # type: ignore[assignment]
    clock = Clock()
    tokens = tokens_for(oauth, clock)
    first = await tokens.current()
    clock.now += 3000
    assert await tokens.current() == first
    clock.now += 600
    assert await tokens.current() != first
