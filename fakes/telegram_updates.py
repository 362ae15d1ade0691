"""Builders of realistic incoming updates for the fake (they do not push; see push_update).

Each builder allocates the message id in its chat at once, so build and push in the order the
user would have sent them: ``fake.push_update(fake.text_update(42, "/start"))``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fakes.telegram_media import media_object
from fakes.telegram_state import ChatState, FakeState, public_message, shallow

_SAMPLE_BYTES = {
    "photo": b"\xff\xd8\xff\xe0fake-jpeg",
    "voice": b"OggSfake-opus",
    "sticker": b"RIFFfake-webp",
    "document": b"%PDF-1.4 fake",
}
_MEDIA_EXT = {"photo": "jpg", "voice": "oga", "sticker": "webp", "video": "mp4", "audio": "mp3",
              "animation": "mp4", "video_note": "mp4", "document": "pdf"}  # fmt: skip


def command_entities(text: str) -> list[dict[str, Any]]:
    if not text.startswith("/"):
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(text.split(maxsplit=1)[0])}]


def _person(
    user_id: int,
    first_name: str,
    last_name: str | None,
    username: str | None,
    language_code: str | None,
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


class UpdateBuilders(FakeState):
    def _incoming(
        self, chat: ChatState, user: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        return {"message": self.compose(chat, user, None, content, chat.allocate_id())}

    def _group_chat(self, chat_id: int) -> ChatState:
        chat = self._chats.get(chat_id)
        if chat is None or chat.type == "private":
            raise ValueError(f"chat {chat_id} is not a known group; call add_group first")
        return chat

    def text_update(
        self,
        user_id: int,
        text: str,
        *,
        first_name: str = "Иван",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
    ) -> dict[str, Any]:
        """A private message from ``user_id``; "/start" and other commands get an entity."""
        user = _person(user_id, first_name, last_name, username, language_code)
        content: dict[str, Any] = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return self._incoming(self.private_chat(user), user, content)

    def media_update(
        self,
        user_id: int,
        kind: str,
        *,
        caption: str | None = None,
        file_name: str = "document.pdf",
        data: bytes | None = None,
        media_group_id: str | None = None,
        latitude: float = 55.751244,
        longitude: float = 37.618423,
        phone_number: str = "+79991234567",
    ) -> dict[str, Any]:
        """A private photo/document/voice/video/audio/animation/sticker/video_note/location/
        contact message. Files get a fresh file_id the fake knows (getFile and re-sending work).
        """
        user = self.user(user_id)
        chat = self.private_chat(user)
        content = self._media_content(
            kind, user, caption=caption, file_name=file_name, data=data,
            media_group_id=media_group_id, latitude=latitude, longitude=longitude,
            phone_number=phone_number,
        )
        return self._incoming(chat, user, content)

    def group_media_update(
        self, chat_id: int, user_id: int, kind: str, *, thread_id: int | None = None,
        caption: str | None = None, first_name: str = "Оператор",
        media_group_id: str | None = None,
    ) -> dict[str, Any]:
        """An operator's photo/document/... in a group (a topic message when ``thread_id``)."""
        chat = self._group_chat(chat_id)
        user = _person(user_id, first_name, None, None, "ru")
        content = self._media_content(kind, user, caption=caption, media_group_id=media_group_id)
        message = self.compose(chat, user, thread_id, content, chat.allocate_id())
        if thread_id is not None and chat.is_forum:
            message["is_topic_message"] = True
        return {"message": message}

    def _media_content(
        self, kind: str, user: dict[str, Any], *, caption: str | None = None,
        file_name: str = "document.pdf", data: bytes | None = None,
        media_group_id: str | None = None, latitude: float = 55.751244,
        longitude: float = 37.618423, phone_number: str = "+79991234567",
    ) -> dict[str, Any]:
        content: dict[str, Any]
        if kind == "location":
            content = {"location": {"latitude": latitude, "longitude": longitude}}
        elif kind == "contact":
            contact = {"phone_number": phone_number, "first_name": user["first_name"]}
            content = {"contact": {**contact, "user_id": user["id"]}}
        elif kind in _MEDIA_EXT:
            meta: dict[str, Any] = {}
            if kind == "document":
                meta = {"file_name": file_name, "mime_type": "application/pdf"}
            if kind == "sticker":
                meta = {"emoji": "👍", "set_name": "TestStickers"}
            payload = data if data is not None else _SAMPLE_BYTES.get(kind, b"fake-media")
            record = self.add_file(kind, payload, meta, _MEDIA_EXT[kind])
            content = {kind: media_object(kind, record)}
            if caption and kind != "sticker":
                content["caption"] = caption
            if media_group_id:
                content["media_group_id"] = media_group_id
        else:
            raise ValueError(f"unknown media kind {kind!r}")
        return content

    def callback_update(
        self,
        user_id: int,
        data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        first_name: str = "Оператор",
    ) -> dict[str, Any]:
        """A press on an inline button under ``message_id`` (default: the bot's latest message
        with an inline keyboard in that chat). The chat is the private chat with ``user_id``,
        or the group ``chat_id`` (an operator pressing a button in a topic; ``first_name``
        names the operator). The query id is registered for answerCallbackQuery."""
        if chat_id is None:
            user = self.user(user_id)
            chat = self.private_chat(user)
        else:
            user = _person(user_id, first_name, None, None, "ru")
            chat = self._group_chat(chat_id)
        message = chat.messages.get(message_id) if message_id is not None else None
        if message is None and message_id is None:
            outgoing = [m for m in chat.messages.values() if self.is_outgoing(m)]
            keyboards = [m for m in outgoing if "inline_keyboard" in (m.get("reply_markup") or {})]
            message = (keyboards or outgoing)[-1] if outgoing else None
        if message is None:  # a keyboard message the fake never saw: make one up
            content = {"text": "…", "reply_markup": {"inline_keyboard": [[
                {"text": "…", "callback_data": data}]]}}  # fmt: skip
            message = self.store(self.compose(chat, self.bot_user, None, content, message_id))
        query_id = str(secrets.randbits(62))
        self._callback_queries[query_id] = False
        query = {
            "id": query_id,
            "from": user,
            "message": public_message(message),
            "chat_instance": str((chat.id * 2654435761 + self.bot_id) % 2**63),
            "data": data,
        }
        return {"callback_query": query}

    def chat_member_update(
        self, chat_id: int, user_id: int, status: str, *, first_name: str = "Оператор",
        username: str | None = None, by: int | None = None,
    ) -> dict[str, Any]:
        """A member's status changed in a group (ChatMemberUpdated): `left` when they leave,
        `kicked` when an admin (`by`) removes them. Telegram sends these only to a bot that is
        an administrator and listed "chat_member" in allowed_updates
        (https://core.telegram.org/bots/api#chatmemberupdated)."""
        chat = self._group_chat(chat_id)
        user = _person(user_id, first_name, None, username, "ru")
        old = {"status": "member", "user": user}
        new: dict[str, Any] = {"status": status, "user": user}
        if status == "kicked":
            new["until_date"] = 0
        actor = user if by is None else _person(by, "Админ", None, None, "ru")
        return {"chat_member": {"chat": chat.as_chat(), "from": actor, "date": int(time.time()),
                                "old_chat_member": old, "new_chat_member": new}}

    def group_message_update(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        first_name: str = "Оператор",
        last_name: str | None = None,
        username: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A message by a (human) operator in a group added with ``add_group``; in a forum,
        ``thread_id`` makes it a topic message (is_topic_message, linked to the topic root)."""
        chat = self._group_chat(chat_id)
        user = _person(user_id, first_name, last_name, username, "ru")
        content: dict[str, Any] = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        message = self.compose(chat, user, thread_id, content, chat.allocate_id())
        if thread_id is not None and chat.is_forum:
            message["is_topic_message"] = True
        if reply_to_message_id is not None:
            message["reply_to_message"] = shallow(chat.messages[reply_to_message_id])
        return {"message": message}
