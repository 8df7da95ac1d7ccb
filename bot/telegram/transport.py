"""PTB's HTTP transport over aiohttp.

PTB's default transport is httpx, whose connection pool re-scans every connection on
each request (encode/httpcore#1035): with many chats at once that dominated our cost per
update (measured with bench/telegram_turns.py). aiohttp is already a dependency (Bolt).
"""

from __future__ import annotations

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

Timeout = object
"""PTB passes a number, None (no limit) or its ``DEFAULT_NONE`` marker (unset)."""


def _seconds(value: Timeout, default: float | None) -> float | None:
    """A timeout PTB passed, or ours when the caller left it unset."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default  # BaseRequest.DEFAULT_NONE, or a default value PTB wraps


class AiohttpRequest(BaseRequest):
    """PTB's requests over one pooled aiohttp session (see the module docstring)."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
    ) -> None:
        self._pool = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout, which PTB adds to a long poll's own wait."""
        return self._read

    async def initialize(self) -> None:
        """Open the pooled session; called again after :meth:`shutdown` it opens a new one."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        write_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        connect_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        pool_timeout: Timeout = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One Bot API request over the shared session, with PTB's timeouts mapped to aiohttp's."""
        if self._session is None or self._session.closed:
            await self.initialize()
        assert self._session is not None
        read = _seconds(read_timeout, self._read)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=_seconds(connect_timeout, self._connect), sock_read=read
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None and request_data.contains_files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, part in request_data.multipart_data.items():
                filename, content, mime = part if len(part) == 3 else (*part, None)
                form.add_field(name, content, filename=filename, content_type=mime)
            data = form
        elif request_data is not None:
            data = request_data.json_parameters
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            # Never the error's text: it can carry the URL, and the URL carries the token.
            raise NetworkError(f"aiohttp {type(error).__name__}") from error
