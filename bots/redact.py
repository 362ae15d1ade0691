"""Secrets never reach the logs: every configured token is replaced by `***` in what is logged.

`SecretStr` keeps secrets out of a repr, but a token also travels inside URLs
(`https://api.telegram.org/file/bot<TOKEN>/...`), and those URLs end up in exception messages
and tracebacks. So the log records themselves are redacted.

How: `RedactingFilter` rewrites a record in place. It renders the message (`msg % args`), the
traceback (`exc_info` -> `exc_text`) and `stack_info` to text, replaces every secret in them, and
stores the result back (`msg` = the redacted message, `args` = (), `exc_text` = the redacted
traceback). A `logging.Formatter` uses `exc_text` when it is set, so whatever formatter a handler
has, its output contains only redacted text. Redacting the record rather than one formatter's
output keeps each handler's own format (no double time stamps) and makes the filter idempotent.

Where: `install_redaction` puts the filter on every handler of the root logger AND wraps the
log-record factory, so records are redacted at creation too. The factory covers handlers added
later (pytest's, a library's, a second `basicConfig`) and loggers that do not propagate; the
handler filters cover records made without the factory (`logging.makeLogRecord`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from bots.settings import Settings

MASK = "***"
MIN_SECRET_LENGTH = 8  # shorter strings are too likely to be ordinary words or numbers

_formatter = logging.Formatter()


def secret_forms(secrets: Iterable[str | None]) -> list[str]:
    """Every string to mask: each secret, the part after its colon (a Telegram token's secret
    half), and their URL-quoted forms; none shorter than MIN_SECRET_LENGTH; longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        candidates = [secret]
        if ":" in secret:
            candidates.append(secret.rsplit(":", 1)[1])
        for candidate in candidates:
            for form in (candidate, quote(candidate, safe="")):
                if len(form) >= MIN_SECRET_LENGTH:
                    forms.add(form)
    return sorted(forms, key=lambda form: (-len(form), form))


class Redactor:
    """Replaces each configured secret in a text with `***`."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.forms = secret_forms(secrets)
        self._pattern = (re.compile("|".join(re.escape(form) for form in self.forms))
                         if self.forms else None)

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def record(self, record: logging.LogRecord) -> None:
        """Redact a record in place: its message with args, its traceback and its stack.
        A record with no secret in it is left as it was (its `msg` and `args` intact)."""
        if self._pattern is None:
            return
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep everything, as text, redacted
            message = f"{record.msg!s} (arguments: {record.args!r})"
        if record.exc_info and not record.exc_text:
            record.exc_text = _formatter.formatException(record.exc_info)
        texts = (message, record.exc_text or "", record.stack_info or "")
        if not any(self._pattern.search(text) for text in texts):
            return
        record.msg = self(message)
        record.args = ()
        if record.exc_text:
            record.exc_text = self(record.exc_text)
        if record.stack_info:
            record.stack_info = self(record.stack_info)


class RedactingFilter(logging.Filter):
    """Lets every record through, redacted (see the module's docstring)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self.redactor.record(record)
        except Exception:  # logging must never fail because of redaction  # pragma: no cover
            record.msg, record.args = MASK, ()
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_installed: RedactingFilter | None = None
_original_factory: Any = None
_secrets: set[str] = set()  # what the installed filter masks
CONFIGURED: set[str] = set()  # every secret of settings masked in this process (the tests
# grep the whole run's log for each)


def install_redaction(secrets: Iterable[str | None]) -> RedactingFilter:
    """Redact `secrets` (as well as those installed before) from everything logged from now
    on: every runtime of a process adds its own."""
    global _installed, _original_factory
    new = {secret for secret in secrets if secret}
    if _installed is not None:
        _secrets.update(new)
        _installed.redactor = Redactor(_secrets)
        return _installed
    _secrets.update(new)
    redacting = RedactingFilter(Redactor(_secrets))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    _original_factory = logging.getLogRecordFactory()
    original = _original_factory

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = original(*args, **kwargs)
        redacting.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = redacting
    return redacting


def uninstall_redaction() -> None:
    """Undo `install_redaction` (for tests)."""
    global _installed, _original_factory
    if _installed is None:
        return
    for handler in logging.getLogger().handlers:
        handler.removeFilter(_installed)
    if _original_factory is not None:
        logging.setLogRecordFactory(_original_factory)
    _installed, _original_factory = None, None
    _secrets.clear()


def settings_secrets(settings: Settings) -> list[str]:
    values: list[SecretStr | None] = [
        settings.telegram_bot_token, settings.vk_token, settings.api_token,
        settings.telegram_webhook_secret, settings.vk_secret, settings.vk_admin_token,
    ]
    return [value.get_secret_value() for value in values if value is not None] \
        + settings.relay_tokens


def install_settings_redaction(settings: Settings) -> RedactingFilter:
    """Redact every secret of the settings from the logs."""
    secrets = settings_secrets(settings)
    CONFIGURED.update(secrets)
    return install_redaction(secrets)
