"""Reading what a stranger can send us: bounded before it is read, parsed without surprises.

A body longer than the limit gets 413 as soon as its declared length (or the bytes read so
far) pass it, and the connection is closed so the rest is never taken in.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

CLOSE = {"Connection": "close"}


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be longer than ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading anything; a
    chunked body is read only until it passes the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                return None
        except ValueError:
            return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return b""
    return b"".join(chunks)


def too_large() -> Response:
    """The answer to a body over the limit: 413, closing the connection so the rest is not read."""
    return Response(status_code=413, headers=CLOSE)


def parse_json(body: bytes) -> Any:
    """JSON from a request body; ValueError for anything that is not (however deep)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not JSON: {type(error).__name__}") from None
