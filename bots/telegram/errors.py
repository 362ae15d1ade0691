"""What a Bot API error means for a delivery (bots/delivery/policy.py acts on it).

aiogram maps Telegram's answers to exception classes: 429 -> TelegramRetryAfter (with
`retry_after`), 403 -> TelegramForbiddenError ("bot was blocked by the user"), 400 ->
TelegramBadRequest, 5xx -> TelegramServerError, no answer -> TelegramNetworkError, and a group
that became a supergroup -> TelegramMigrateToChat.
"""

from __future__ import annotations

from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bots.delivery.policy import Outcome, Permanent, RetryAfter, Transient, Unreachable


def classify_telegram(exc: Exception) -> Outcome | None:
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(float(exc.retry_after))
    if isinstance(exc, TelegramForbiddenError):
        return Unreachable(exc.message)
    if isinstance(exc, TelegramMigrateToChat):  # the desk follows it; a customer chat cannot
        return Permanent(f"chat migrated to {exc.migrate_to_chat_id}")
    if isinstance(exc, TelegramBadRequest):
        return Permanent(exc.message)
    if isinstance(exc, (TelegramNetworkError, TelegramServerError)):
        return Transient(str(exc))
    return None
