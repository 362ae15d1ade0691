"""Telegram update (raw JSON) -> channel-neutral InboundEvent, validated with aiogram's types.

Each update is validated on its own so one malformed update is logged and skipped instead of
poisoning the whole getUpdates batch. Private chats are customers; the operator desk group
produces desk events whose conversation is resolved later (by topic) in `ingress`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

from aiogram.types import CallbackQuery, ChatMemberUpdated, Message, Update, User
from pydantic import ValidationError

from handoff.events import InboundEvent, MediaFile, Profile

log = logging.getLogger(__name__)

MEDIA_FIELDS = (
    "photo", "document", "voice", "video", "video_note", "audio", "sticker", "animation",
    "location", "contact", "venue", "poll", "dice",
)
# chat_member: Telegram sends members' changes in a group only when asked for them (and only to
# an administrator): a desk member who leaves or is removed loses access at once.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member", "chat_member"]
UNRESOLVED = ""  # desk events before their conversation is looked up


class UpdateRejected(ValueError):
    """The update is malformed or not for us; the message says why."""


def parse_update(
    raw: Any, bot_id: int, desk_chats: Collection[int] = ()
) -> tuple[int, InboundEvent | None]:
    """Return (update_id, event); event is None when the update is valid but not ours to handle.

    Desk events come back with conversation UNRESOLVED. Raises UpdateRejected for malformed
    input (the caller logs it and moves past it).
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
        return update_id, _from_message(update.message, event_id, desk_chats, edited=False)
    if update.edited_message is not None:
        return update_id, _from_message(update.edited_message, event_id, desk_chats, edited=True)
    if update.callback_query is not None:
        return update_id, _from_callback(update.callback_query, event_id, desk_chats)
    if update.my_chat_member is not None:
        return update_id, _from_member_change(update.my_chat_member, event_id)
    if update.chat_member is not None:
        return update_id, _from_desk_member(update.chat_member, event_id, desk_chats)
    log.debug("update %d of an unhandled type ignored", update_id)
    return update_id, None


def profile_of(user: User) -> Profile:
    return Profile(
        user_id=str(user.id), first_name=user.first_name, last_name=user.last_name or "",
        username=user.username or "", language_code=user.language_code or "",
    )


def _media_of(message: Message) -> str:
    return next((name for name in MEDIA_FIELDS if getattr(message, name, None)), "other")


def _files_of(message: Message) -> tuple[MediaFile, ...]:
    """Photos and documents, for channels that cannot copy a Telegram message (VK)."""
    if message.photo:
        return (MediaFile("photo", file_id=message.photo[-1].file_id),)
    if message.document:
        return (MediaFile("document", file_id=message.document.file_id,
                          name=message.document.file_name or "file"),)
    return ()


def _from_message(
    message: Message, event_id: str, desk_chats: Collection[int], *, edited: bool
) -> InboundEvent | None:
    if message.from_user is None or message.from_user.is_bot:
        return None
    common: dict[str, Any] = {
        "event_id": event_id, "profile": profile_of(message.from_user),
        "message_id": message.message_id, "chat_id": message.chat.id,
        "received_at": time.time(), "album": message.media_group_id or "",
    }
    if message.chat.id in desk_chats:
        return _desk_message(message, common, edited)
    if message.chat.type != "private":
        log.debug("message in %s chat %d ignored", message.chat.type, message.chat.id)
        return None
    common["conversation"] = f"tg:{message.chat.id}"
    if edited:  # recorded, and shown to the operators; the bot does not answer it again
        return InboundEvent(kind="edit", text=message.text or message.caption or "", **common)
    if message.text is not None:
        if message.text.startswith("/"):
            return InboundEvent(kind="command", text=message.text, **common)
        return InboundEvent(kind="text", text=message.text, **common)
    return InboundEvent(kind="media", media=_media_of(message), text=message.caption or "",
                        **common)


def _desk_message(message: Message, common: dict[str, Any], edited: bool) -> InboundEvent | None:
    if message.forum_topic_created or message.forum_topic_edited or message.new_chat_members:
        return None  # service messages
    assert message.from_user is not None
    replied = message.reply_to_message
    if replied is not None and replied.forum_topic_created is not None:
        replied = None  # Telegram links every topic message to the topic's root: not a reply
    common.update(
        conversation=UNRESOLVED, actor=f"tg:{message.from_user.id}",
        thread_id=message.message_thread_id if message.is_topic_message else 0,
        reply_to=replied.message_id if replied else 0,
        reply_text=(replied.text or replied.caption or "") if replied else "",
    )
    if edited:
        return InboundEvent(kind="desk_edit", text=message.text or message.caption or "",
                            **common)
    if message.text is not None:
        return InboundEvent(kind="desk_text", text=message.text, **common)
    return InboundEvent(kind="desk_media", media=_media_of(message),
                        text=message.caption or "", files=_files_of(message), **common)


def _from_callback(
    query: CallbackQuery, event_id: str, desk_chats: Collection[int]
) -> InboundEvent:
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    common: dict[str, Any] = {
        "event_id": event_id, "profile": profile_of(query.from_user),
        "payload": query.data or "", "callback_id": query.id, "chat_id": chat_id,
        "message_id": message.message_id if message is not None else 0,
        "received_at": time.time(),
    }
    if chat_id in desk_chats:
        thread = getattr(message, "message_thread_id", None) or 0
        return InboundEvent(kind="desk_button", conversation=UNRESOLVED,
                            actor=f"tg:{query.from_user.id}", thread_id=thread, **common)
    return InboundEvent(kind="button", conversation=f"tg:{chat_id}", **common)


def _from_desk_member(change: ChatMemberUpdated, event_id: str, desk_chats: Collection[int]
                      ) -> InboundEvent | None:
    """A member of a desk group who left or was removed (banned counts as removed)."""
    status = change.new_chat_member.status
    if change.chat.id not in desk_chats or status not in ("left", "kicked"):
        return None
    member = change.new_chat_member.user
    return InboundEvent(
        event_id=event_id, conversation=UNRESOLVED, kind="desk_member", text=status,
        profile=profile_of(member), actor=f"tg:{member.id}", chat_id=change.chat.id,
        received_at=time.time())


def _from_member_change(change: ChatMemberUpdated, event_id: str) -> InboundEvent | None:
    if change.chat.type != "private" or change.new_chat_member.status != "kicked":
        return None
    return InboundEvent(
        event_id=event_id, conversation=f"tg:{change.chat.id}", kind="blocked",
        profile=profile_of(change.from_user), chat_id=change.chat.id, received_at=time.time(),
    )
