"""Secrets never reach the logs: tokens in messages, %-args, URLs and tracebacks become ***."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bots.redact import (
    CONFIGURED,
    MASK,
    RedactingFilter,
    Redactor,
    install_redaction,
    install_settings_redaction,
    uninstall_redaction,
)
from bots.settings import load_settings

TG_TOKEN = "123456:SECRET-token-value"
TG_SECRET_PART = "SECRET-token-value"
VK_TOKEN = "vk1.a.VKSECRETTOKENVALUE0123456789"
API_TOKEN = "api-token-0123456789"
FILE_URL = f"https://api.telegram.org/file/bot{TG_TOKEN}/photos/x.jpg"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """A root handler writing to a string, like basicConfig's stream handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    configured = set(CONFIGURED)
    try:
        yield stream
    finally:
        uninstall_redaction()
        # These tests log their made-up secrets unmasked on purpose (before install, after
        # uninstall): not secrets of a runtime, which the whole run's log check looks for.
        CONFIGURED.intersection_update(configured)
        root.removeHandler(handler)
        root.setLevel(old_level)


def _download_fails() -> None:
    raise RuntimeError(f"download failed: 401 for {FILE_URL}")


def _log_the_failure(logger: logging.Logger) -> None:
    try:
        _download_fails()
    except RuntimeError:
        logger.exception("desk file for %s (vk token %s) failed", FILE_URL, VK_TOKEN)


def test_secrets_are_masked_in_message_args_and_traceback(output: io.StringIO) -> None:
    install_redaction([TG_TOKEN, VK_TOKEN, API_TOKEN])
    _log_the_failure(logging.getLogger("bots.vk.desk"))
    text = output.getvalue()
    assert "Traceback" in text and "_download_fails" in text  # the traceback is still there
    for secret in (TG_TOKEN, TG_SECRET_PART, VK_TOKEN):
        assert secret not in text
    assert f"/file/bot{MASK}/photos/x.jpg" in text or f"bot123456:{MASK}" in text
    assert text.count(MASK) >= 3


def test_the_secret_half_of_the_token_alone_is_masked(output: io.StringIO) -> None:
    install_redaction([TG_TOKEN])
    logging.getLogger("x").warning("token tail %s and quoted %s", TG_SECRET_PART,
                                   "123456%3ASECRET-token-value")
    text = output.getvalue()
    assert TG_SECRET_PART not in text and "%3A" not in text
    assert text.count(MASK) == 2


def test_handlers_added_after_install_are_covered(output: io.StringIO) -> None:
    install_redaction([VK_TOKEN])
    late = io.StringIO()
    handler = logging.StreamHandler(late)
    logging.getLogger().addHandler(handler)
    try:
        _log_the_failure(logging.getLogger("late"))
    finally:
        logging.getLogger().removeHandler(handler)
    assert VK_TOKEN not in late.getvalue() and MASK in late.getvalue()
    assert "Traceback" in late.getvalue()


def test_non_propagating_loggers_are_covered(output: io.StringIO) -> None:
    install_redaction([VK_TOKEN])
    stream = io.StringIO()
    logger = logging.getLogger("isolated.test")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("vk says no to %s", VK_TOKEN)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert stream.getvalue() == f"vk says no to {MASK}\n"


def test_short_and_empty_secrets_are_not_redacted(output: io.StringIO) -> None:
    install_redaction(["", "abc", "1234567", None])
    logging.getLogger("x").warning("abc 1234567 ok")
    assert output.getvalue().strip().endswith("abc 1234567 ok")
    assert MASK not in output.getvalue()
    assert "abc" not in Redactor(["", "short:abc"]).forms  # nor a secret's short tail


def test_non_string_args_and_messages_do_not_crash(output: io.StringIO) -> None:
    install_redaction([VK_TOKEN])
    logger = logging.getLogger("x")
    logger.warning("numbers %d %.1f %r", 3, 2.5, {"token": VK_TOKEN})
    logger.warning({"a dict as the message": VK_TOKEN})
    logger.warning("mapping %(who)s", {"who": VK_TOKEN})
    logger.warning("bad format %d", "not a number", VK_TOKEN)  # a broken call stays visible
    text = output.getvalue()
    assert VK_TOKEN not in text
    assert "numbers 3 2.5 {'token': '***'}" in text
    assert "mapping ***" in text
    assert "bad format" in text


def test_the_filter_alone_redacts_a_record_with_exc_info() -> None:
    """A record made without the record factory (logging.makeLogRecord) goes through the filter."""
    try:
        _download_fails()
    except RuntimeError as exc:
        record = logging.makeLogRecord({
            "msg": "failed %s", "args": (VK_TOKEN,), "exc_info": (type(exc), exc,
                                                                   exc.__traceback__),
            "levelno": logging.ERROR, "levelname": "ERROR",
        })
    assert RedactingFilter(Redactor([TG_TOKEN, VK_TOKEN])).filter(record) is True
    text = logging.Formatter().format(record)
    assert TG_TOKEN not in text and VK_TOKEN not in text
    assert "Traceback" in text and MASK in text
    # a second pass (a second handler) changes nothing
    RedactingFilter(Redactor([TG_TOKEN, VK_TOKEN])).filter(record)
    assert logging.Formatter().format(record) == text


def test_settings_secrets_are_installed(output: io.StringIO) -> None:
    settings = load_settings(_env_file=None, telegram_bot_token=TG_TOKEN, api_token=API_TOKEN,
                             telegram_webhook_secret="webhook-secret-1")
    install_settings_redaction(settings)
    logging.getLogger("x").error("%s %s %s %s", FILE_URL, API_TOKEN, "webhook-secret-1",
                                 "nothing-secret")
    text = output.getvalue()
    assert TG_SECRET_PART not in text and API_TOKEN not in text
    assert "webhook-secret-1" not in text and "nothing-secret" in text


def test_uninstall_restores_plain_logging(output: io.StringIO) -> None:
    install_redaction([VK_TOKEN])
    uninstall_redaction()
    logging.getLogger("x").warning("%s", VK_TOKEN)
    assert VK_TOKEN in output.getvalue()
