"""Fixtures for the pure flow: the flow itself and an enquirer talking to it."""

from __future__ import annotations

import pytest

from flows.conversation import Step
from flows.intake import IntakeFlow
from tests.support.conversations import PROFESSIONAL_TO_REVIEW, Enquirer


@pytest.fixture(scope="session")
def flow() -> IntakeFlow:
    return IntakeFlow()


@pytest.fixture
def enquirer(flow: IntakeFlow) -> Enquirer:
    return Enquirer(flow)


@pytest.fixture
def at_review(enquirer: Enquirer) -> Enquirer:
    enquirer.say(*PROFESSIONAL_TO_REVIEW)
    assert enquirer.step is Step.REVIEW, enquirer.text
    return enquirer
