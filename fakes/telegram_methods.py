"""Bot API methods of the fake that send, copy, edit and delete messages.

A handler is ``m_<methodName>(params, files) -> result`` and raises ``ApiError`` to fail.
Error texts marked "(approx.)" are plausible but not confirmed by PLATFORMS.md or the Bot API
server source; all others are the real texts.
"""

from __future__ import annotations

import copy
import html
import itertools
import re
import secrets
import time
from typing import Any

from fakes.telegram_state import (
    GENERAL_TOPIC_ID,
    ChatState,
    FakeState,
    public_message,
    shallow,
)
from fakes.telegram_wire import ApiError, UploadedFile, bad_request

TEXT_LIMIT = 4096  # sendMessage text, "1-4096 characters after entities parsing" (T5)
CAPTION_LIMIT = 1024  # captions, "0-1024 characters after entities parsing" (T5)
CONTENT_KEYS = (
    "text", "entities", "caption", "caption_entities", "photo", "document", "voice", "video",
    "audio", "animation", "sticker", "video_note", "location", "contact", "venue", "poll", "dice",
)  # fmt: skip
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_TAG = re.compile(r"<[^>]*>")


def visible_length(text: str, parse_mode: Any) -> int:
    """Length after entity parsing: HTML tags are stripped; Markdown is counted raw."""
    if isinstance(parse_mode, str) and parse_mode.lower() == "html":
        return len(html.unescape(_TAG.sub("", text)))
    return len(text)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request(f"{name} is empty" if value is None else f"invalid {name} specified")
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"invalid {name} specified") from None  # (approx.)


def check_markup(markup: Any) -> None:
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return
    for row in markup["inline_keyboard"]:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
            if len(button) == 1:  # only "text"
                raise bad_request("text buttons are unallowed in the inline keyboard")


class MessagingMethods(FakeState):
    # --- shared checks --------------------------------------------------------------------
    def check_write(self, chat: ChatState) -> None:
        self.check_member(chat)
        if chat.migrated_to is not None:
            raise bad_request(
                "group chat was upgraded to a supergroup chat", migrate_to_chat_id=chat.migrated_to
            )
        if chat.deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def check_member(self, chat: ChatState) -> None:
        """A relay bot acts only in the groups it is an admin of, and has no private chats
        (it never talked to the customer: "bot can't initiate conversation with a user")."""
        bot = self.acting
        if bot.token == self.token:
            return
        if chat.type == "private":
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
        if bot.id in chat.kicked_bots:
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
        if bot.id not in chat.member_bots:
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind}")

    def _readable(self, chat: ChatState) -> None:
        """Copying needs the source chat: a relay was never in the customer's private chat
        (message ids there are per account, PLATFORMS.md A5)."""
        bot = self.acting
        if bot.token != self.token and (chat.type == "private" or bot.id not in chat.member_bots):
            raise bad_request("chat not found")

    def thread(self, chat: ChatState, raw: Any) -> int | None:
        """Validate ``message_thread_id`` like the Bot API server (Client.cpp, T1)."""
        if raw is None or raw == 0:
            return None
        thread_id = _as_int(raw, "message_thread_id")
        if chat.type == "supergroup" and chat.is_forum:
            if thread_id == GENERAL_TOPIC_ID or thread_id not in chat.topics:
                raise bad_request("message thread not found")
            return thread_id
        if chat.type == "private":
            if thread_id not in chat.topics:
                raise bad_request("message thread not found")
            return thread_id
        return None  # non-forum groups: the server ignores it

    def target(self, p: dict[str, Any]) -> tuple[ChatState, int | None]:
        chat = self.chat(p.get("chat_id"))
        self.check_write(chat)
        return chat, self.thread(chat, p.get("message_thread_id"))

    def check_limits(self, method: str, chat: ChatState, count: int) -> None:
        if not self.enforce_limits:
            return
        is_group = chat.type in ("group", "supergroup")
        violation = self.limits.check(method, chat.id, is_group, count)
        if violation is not None:
            self.limit_violations.append(violation)
            raise ApiError(
                429,
                f"Too Many Requests: retry after {violation.retry_after}",
                {"retry_after": violation.retry_after},
            )

    def reply_target(self, chat: ChatState, p: dict[str, Any]) -> dict[str, Any] | None:
        params = p.get("reply_parameters")
        if isinstance(params, dict):
            message_id, allow = params.get("message_id"), params.get("allow_sending_without_reply")
        else:
            message_id, allow = p.get("reply_to_message_id"), p.get("allow_sending_without_reply")
        if message_id is None:
            return None
        found = chat.messages.get(message_id)
        if found is None and not allow:
            raise bad_request("message to be replied not found")
        return found

    def emit(
        self,
        method: str,
        chat: ChatState,
        thread_id: int | None,
        contents: list[dict[str, Any]],
        p: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Check limits, then store one bot message per content dict."""
        markup = p.get("reply_markup")
        check_markup(markup)
        reply = self.reply_target(chat, p)
        self.check_limits(method, chat, len(contents))
        messages = []
        for content in contents:
            message = self.compose(chat, self.bot_user, thread_id, content, chat.allocate_id())
            if reply is not None:
                message["reply_to_message"] = shallow(reply)
            if markup and len(contents) == 1:
                message["reply_markup"] = markup
            if p.get("protect_content"):
                message["has_protected_content"] = True
            messages.append(self.store(message))
        return messages

    def text_content(self, p: dict[str, Any], key: str = "text") -> dict[str, Any]:
        text = p.get(key)
        if not isinstance(text, str) or not text.strip():
            raise bad_request("message text is empty")
        if visible_length(text, p.get("parse_mode")) > TEXT_LIMIT:
            raise bad_request("message is too long")
        content: dict[str, Any] = {"text": text}
        if p.get("entities"):
            content["entities"] = p["entities"]
        return content

    def caption_content(self, p: dict[str, Any]) -> dict[str, Any]:
        caption = p.get("caption")
        if not isinstance(caption, str) or not caption:
            return {}
        if visible_length(caption, p.get("parse_mode")) > CAPTION_LIMIT:
            raise bad_request("message caption is too long")
        content: dict[str, Any] = {"caption": caption}
        if p.get("caption_entities"):
            content["caption_entities"] = p["caption_entities"]
        return content

    # --- sending text ---------------------------------------------------------------------
    def m_sendMessage(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat, thread_id = self.target(p)
        content = self.text_content(p)
        return public_message(self.emit("sendMessage", chat, thread_id, [content], p)[0])

    def m_sendLocation(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat, thread_id = self.target(p)
        for key in ("latitude", "longitude"):
            if not isinstance(p.get(key), (int, float)):
                raise bad_request(f"{key} is empty")
        location = {"latitude": float(p["latitude"]), "longitude": float(p["longitude"])}
        messages = self.emit("sendLocation", chat, thread_id, [{"location": location}], p)
        return public_message(messages[0])

    def m_sendContact(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat, thread_id = self.target(p)
        contact: dict[str, Any] = {}
        for key in ("phone_number", "first_name", "last_name", "vcard"):
            if p.get(key) is not None:
                contact[key] = str(p[key])
        for key in ("phone_number", "first_name"):
            if not contact.get(key):
                raise bad_request(f"{key.replace('_', ' ')} is empty")  # (approx.)
        messages = self.emit("sendContact", chat, thread_id, [{"contact": contact}], p)
        return public_message(messages[0])

    def m_sendChatAction(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.target(p)
        actions = {
            "typing", "upload_photo", "record_video", "upload_video", "record_voice",
            "upload_voice", "upload_document", "choose_sticker", "find_location",
            "record_video_note", "upload_video_note",
        }  # fmt: skip
        if p.get("action") not in actions:
            raise bad_request("wrong parameter action in request")
        return True

    # --- copy / forward -------------------------------------------------------------------
    def _source(self, p: dict[str, Any], verb: str) -> dict[str, Any]:
        source_chat = self.chat(p.get("from_chat_id"))
        self._readable(source_chat)
        message = self.stored(source_chat, p.get("message_id"), f"message to {verb}")
        if not any(key in message for key in CONTENT_KEYS):  # a service message
            raise bad_request(f"message can't be {verb.replace('copy', 'copi')}ed")  # (approx.)
        return message

    def _copy_content(
        self, source: dict[str, Any], p: dict[str, Any], *, forward: bool
    ) -> dict[str, Any]:
        content = {k: copy.deepcopy(source[k]) for k in CONTENT_KEYS if k in source}
        if forward:
            origin: dict[str, Any] = {"type": "user", "date": source["date"]}
            if source.get("sender_chat"):
                origin = {**origin, "type": "chat", "sender_chat": source["sender_chat"]}
            else:
                origin["sender_user"] = source.get("from") or self.bot_user
            return {"forward_origin": origin, **content}
        if "caption" in p or p.get("remove_caption"):
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self.caption_content(p))
        return content

    def _batch_ids(self, p: dict[str, Any]) -> list[int]:
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message_ids must be a non-empty array of at most 100 items")
        if any(b <= a for a, b in itertools.pairwise(ids)):
            raise bad_request("message identifiers must be in a strictly increasing order")
        return [int(i) for i in ids]  # (approx. texts above)

    def m_copyMessage(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat, thread_id = self.target(p)
        source = self._source(p, "copy")
        content = self._copy_content(source, p, forward=False)
        content.pop("media_group_id", None)
        message = self.emit("copyMessage", chat, thread_id, [content], p)[0]
        return {"message_id": message["message_id"]}

    def m_forwardMessage(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat, thread_id = self.target(p)
        source = self._source(p, "forward")
        if source.get("has_protected_content"):
            raise bad_request("message can't be forwarded")
        content = self._copy_content(source, p, forward=True)
        return public_message(self.emit("forwardMessage", chat, thread_id, [content], p)[0])

    def _batch(self, method: str, p: dict[str, Any], *, forward: bool) -> Any:
        chat, thread_id = self.target(p)
        source_chat = self.chat(p.get("from_chat_id"))
        self._readable(source_chat)
        sources = [source_chat.messages[i] for i in self._batch_ids(p) if i in source_chat.messages]
        sources = [s for s in sources if any(k in s for k in CONTENT_KEYS)]
        if not sources:
            raise bad_request(f"message to {'forward' if forward else 'copy'} not found")
        copy_params = {"remove_caption": True} if p.get("remove_caption") else {}
        groups: dict[str, str] = {}
        contents = []
        for source in sources:
            content = self._copy_content(source, copy_params, forward=forward)
            if source.get("media_group_id"):  # "Album grouping is kept"
                group = groups.setdefault(source["media_group_id"], str(secrets.randbits(60)))
                content["media_group_id"] = group
            contents.append(content)
        messages = self.emit(method, chat, thread_id, contents, {**p, "reply_markup": None})
        return [{"message_id": m["message_id"]} for m in messages]

    def m_copyMessages(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._batch("copyMessages", p, forward=False)

    def m_forwardMessages(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._batch("forwardMessages", p, forward=True)

    # --- edit / delete --------------------------------------------------------------------
    def _editable(self, p: dict[str, Any]) -> dict[str, Any] | None:
        """The stored message an edit addresses; None for inline messages."""
        if p.get("inline_message_id"):
            return None
        chat = self.chat(p.get("chat_id"))
        if chat.deactivated:
            raise ApiError(403, "Forbidden: user is deactivated")
        message = self.stored(chat, p.get("message_id"), "message to edit")
        if not self.is_outgoing(message):
            raise bad_request("message can't be edited")
        return message

    def _apply_edit(self, message: dict[str, Any] | None, changes: dict[str, Any]) -> Any:
        if message is None:
            return True
        current = {k: message.get(k) for k in changes}
        if current == changes:
            raise bad_request(NOT_MODIFIED)
        chat = self.chat(message["chat"]["id"])
        if chat.type in ("group", "supergroup"):
            # "Edits and sends share one limit, about 20 per minute in a chat" (levlam,
            # tdlib/td#2592; PLATFORMS.md A2): counted in groups, where that limit binds.
            self.check_limits("editMessage", chat, 1)
        for key, value in changes.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return public_message(message)

    def m_editMessageText(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._editable(p)
        if message is not None and "text" not in message:
            raise bad_request("there is no text in the message to edit")
        content = self.text_content(p)
        check_markup(p.get("reply_markup"))
        changes = {"text": content["text"], "entities": content.get("entities")}
        changes["reply_markup"] = p.get("reply_markup")
        return self._apply_edit(message, changes)

    def m_editMessageCaption(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._editable(p)
        if message is not None and "text" in message:
            raise bad_request("there is no caption in the message to edit")  # (approx.)
        content = self.caption_content(p)
        check_markup(p.get("reply_markup"))
        changes = {
            "caption": content.get("caption"),
            "caption_entities": content.get("caption_entities"),
            "reply_markup": p.get("reply_markup"),
        }
        return self._apply_edit(message, changes)

    def m_editMessageReplyMarkup(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._editable(p)
        check_markup(p.get("reply_markup"))
        return self._apply_edit(message, {"reply_markup": p.get("reply_markup")})

    def m_deleteMessage(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self.chat(p.get("chat_id"))
        message = self.stored(chat, p.get("message_id"), "message to delete")
        self.deleted_messages.append(chat.messages.pop(message["message_id"]))
        return True

    def m_deleteMessages(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self.chat(p.get("chat_id"))
        for message_id in self._batch_ids(p):
            if message_id in chat.messages:
                self.deleted_messages.append(chat.messages.pop(message_id))
        return True

    def m_setMessageReaction(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self.chat(p.get("chat_id"))
        message = self.stored(chat, p.get("message_id"), "message to react")
        self.reactions[(chat.id, message["message_id"])] = list(p.get("reaction") or [])
        return True

    # --- callback queries -----------------------------------------------------------------
    def m_answerCallbackQuery(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        query_id = str(p.get("callback_query_id") or "")
        if self._callback_queries.get(query_id, True):  # unknown or already answered
            raise bad_request(QUERY_TOO_OLD)
        if self._query_bots.get(query_id, self.bot_id) != self.acting.id:
            raise bad_request(QUERY_TOO_OLD)  # another bot's query id means nothing here
        self._callback_queries[query_id] = True
        return True
