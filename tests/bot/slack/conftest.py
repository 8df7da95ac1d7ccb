"""The desk's scenarios run twice: Slack reaching the service over HTTP and over Socket Mode."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    """How Slack reaches the service: signed HTTP requests, or Socket Mode envelopes."""
    return str(request.param)
