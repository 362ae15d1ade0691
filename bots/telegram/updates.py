"""Telegram update (raw JSON) -> channel-neutral InboundEvent, validated with aiogram's types.

Each update is validated on its own so one malformed update is logged and skipped instead of
poisoning the whole getUpdates batch.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, Update, User
from pydantic import ValidationError

from handoff.events import InboundEvent, Profile

log = logging.getLogger(__name__)

MEDIA_FIELDS = (
    "photo", "document", "voice", "video", "video_note", "audio", "sticker", "animation",
    "location", "contact", "venue", "poll", "dice",
)
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]


class UpdateRejected(ValueError):
    """The update is malformed or not for the customer channel; the message says why."""


def parse_update(raw: Any, bot_id: int) -> tuple[int, InboundEvent | None]:
    """Return (update_id, event); event is None when the update is valid but not ours to handle.

    Raises UpdateRejected for malformed input (the caller logs it and moves past it).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
        raise UpdateRejected("no integer update_id")
    update_id: int = raw["update_id"]
    try:
        update = Update.model_validate(raw)
    except ValidationError as exc:
        raise UpdateRejected(f"update {update_id} malformed: {exc.error_count()} errors") from None
    event_id = f"tg:{bot_id}:{update_id}"
    if update.message is not None:
        return update_id, _from_message(update.message, event_id)
    if update.callback_query is not None:
        return update_id, _from_callback(update.callback_query, event_id)
    if update.my_chat_member is not None:
        return update_id, _from_member_change(update.my_chat_member, event_id)
    log.debug("update %d of an unhandled type ignored", update_id)
    return update_id, None


def _profile(user: User) -> Profile:
    return Profile(
        user_id=str(user.id), first_name=user.first_name, last_name=user.last_name or "",
        username=user.username or "", language_code=user.language_code or "",
    )


def _from_message(message: Message, event_id: str) -> InboundEvent | None:
    if message.chat.type != "private" or message.from_user is None:
        log.debug("message in %s chat %d ignored by the customer channel", message.chat.type,
                  message.chat.id)
        return None
    common: dict[str, Any] = {
        "event_id": event_id, "conversation": f"tg:{message.chat.id}",
        "profile": _profile(message.from_user), "message_id": message.message_id,
        "received_at": time.time(),
    }
    if message.text is not None:
        if message.text.startswith("/"):
            return InboundEvent(kind="command", text=message.text, **common)
        return InboundEvent(kind="text", text=message.text, **common)
    media = next((name for name in MEDIA_FIELDS if getattr(message, name, None)), "other")
    return InboundEvent(kind="media", media=media, text=message.caption or "", **common)


def _from_callback(query: CallbackQuery, event_id: str) -> InboundEvent:
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    return InboundEvent(
        event_id=event_id, conversation=f"tg:{chat_id}", kind="button",
        profile=_profile(query.from_user), payload=query.data or "", callback_id=query.id,
        message_id=query.message.message_id if query.message is not None else 0,
        received_at=time.time(),
    )


def _from_member_change(change: ChatMemberUpdated, event_id: str) -> InboundEvent | None:
    if change.chat.type != "private" or change.new_chat_member.status != "kicked":
        return None
    return InboundEvent(
        event_id=event_id, conversation=f"tg:{change.chat.id}", kind="blocked",
        profile=_profile(change.from_user), received_at=time.time(),
    )
