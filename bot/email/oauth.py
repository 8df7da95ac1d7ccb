"""Access tokens for mailboxes that sign in with OAuth2 (``XOAUTH2``), not a password.

Microsoft 365 has turned password sign-in off for IMAP, and Google Workspace prefers
tokens too. The helpline registers the service with its provider once and gives us the
token endpoint, a client id and secret, and either nothing more (the client credentials
grant: Microsoft 365 with an app granted access to the mailbox) or a refresh token (a
user's consent, given once: Google). Both grants are one form POST to the endpoint
(RFC 6749 §4.4 and §6); a token is kept until shortly before it expires and shared by
the mailbox poller (a thread) and the mail sender (the event loop).

Nothing here is ever logged or put in an error: not the secret, not a token, not what the
endpoint answered beyond its status and OAuth error code.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

EARLY_SECONDS = 60.0
"""A token is renewed this long before it expires (a sign-in must not race its expiry)."""


class OAuthError(Exception):
    """The token endpoint could not be reached or refused us (no secrets in the text)."""


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The helpline's registration with its mail provider."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = ""
    refresh_token: str = field(default="", repr=False)
    """Empty: the client credentials grant."""


class OAuthTokens:
    """A current access token for ``client``, fetched when there is none or it is expiring."""

    def __init__(
        self,
        client: OAuthClient,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._refresh = client.refresh_token
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        """The access token (blocking: call it from a thread, or use :meth:`current`)."""
        with self._lock:
            if not self._token or self._clock() >= self._renew_at:
                self._fetch()
            return self._token

    def forget(self) -> None:
        """The server refused the token (revoked, say): the next sign-in fetches another.

        No lock: a fetch in another thread may hold it for as long as the endpoint takes,
        and this is called on the event loop. One assignment is atomic; at worst a token
        fetched meanwhile is fetched again."""
        self._renew_at = 0.0

    async def current(self) -> str:
        """:meth:`token` without blocking the event loop (aiosmtplib's token generator)."""
        return await asyncio.to_thread(self.token)

    def _fetch(self) -> None:
        client = self._client
        form = {"client_id": client.client_id, "client_secret": client.client_secret}
        if self._refresh:
            form |= {"grant_type": "refresh_token", "refresh_token": self._refresh}
        else:
            form["grant_type"] = "client_credentials"
        if client.scope:
            form["scope"] = client.scope
        try:
            response = httpx.post(client.token_url, data=form, timeout=self._timeout)
        except httpx.HTTPError as error:
            raise OAuthError(f"token endpoint unreachable ({type(error).__name__})") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise OAuthError(f"token endpoint answered {response.status_code}, not JSON")
        token = answer.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            code = answer.get("error")
            said = code if isinstance(code, str) and code.isidentifier() else "no token"
            raise OAuthError(f"token endpoint refused ({response.status_code}, {said})")
        try:  # a number, or a number in a string (both are seen)
            seconds = float(answer.get("expires_in", 3600))
        except (TypeError, ValueError):
            seconds = 3600.0
        if not math.isfinite(seconds) or seconds <= 0:  # "NaN" would never be renewed
            seconds = 3600.0
        self._token = token
        self._renew_at = self._clock() + max(seconds - EARLY_SECONDS, 0.0)
        rotated = answer.get("refresh_token")
        if self._refresh and isinstance(rotated, str) and rotated:
            self._refresh = rotated  # a provider that rotates them wants the new one next
