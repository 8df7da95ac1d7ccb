"""What reaches the log when something fails: where it failed, never what anyone wrote."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactingFilter, where_it_failed

SECRET_TEXT = "my pupil Jane Doe, 07700 900123"


def _failing_statement() -> None:
    raise ValueError(f"INSERT ... parameters: ('{SECRET_TEXT}',)")


def _handler_that_wraps() -> None:
    try:
        _failing_statement()
    except ValueError as error:
        raise RuntimeError(f"handling {SECRET_TEXT} failed") from error


def test_a_traceback_keeps_frames_and_classes_but_withholds_messages() -> None:
    with pytest.raises(RuntimeError) as caught:
        _handler_that_wraps()
    text = where_it_failed(caught.value)
    assert SECRET_TEXT not in text
    assert "_failing_statement" in text and "_handler_that_wraps" in text
    assert "ValueError (message withheld)" in text
    assert "RuntimeError (message withheld)" in text
    assert text.index("ValueError") < text.index("RuntimeError")  # the cause first, as Python does


def test_a_logged_exception_reaches_the_handler_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("helpline.test")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.ERROR, logger="helpline.test"):
            try:
                _handler_that_wraps()
            except RuntimeError:
                logger.exception("turn failed")
    finally:
        logger.filters.clear()
    (record,) = caplog.records
    rendered = logging.Formatter().format(record)
    assert "turn failed" in rendered
    assert "_failing_statement" in rendered
    assert SECRET_TEXT not in rendered
