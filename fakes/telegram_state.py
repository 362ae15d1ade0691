"""State of the fake Telegram server: chats, stored messages, topics, files, recorded calls."""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fakes.telegram_limits import LimitViolation, RateLimits
from fakes.telegram_wire import UploadedFile, bad_request

BOT_USERNAME = "supportbot_test_bot"
BOT_FIRST_NAME = "Support Bot"

# The bot a request is made as (its token), set for the task that handles the request.
acting_token: ContextVar[str | None] = ContextVar("fake_telegram_acting_token", default=None)


@dataclass
class BotIdentity:
    """One bot served by the fake. Telegram's limits are per bot: each has its own."""

    token: str
    id: int
    username: str
    first_name: str
    limits: RateLimits
    revoked: bool = False
    # A relay's updates (group messages it sees as an admin, presses on its buttons), served
    # by getUpdates made with its token; `allowed_updates` as its last getUpdates asked.
    updates: list[dict[str, Any]] = field(default_factory=list)
    allowed_updates: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name,
                "username": self.username}
GENERAL_TOPIC_ID = 1
TOPIC_ICON_COLORS = frozenset({7322096, 16766590, 13338331, 9367192, 16749490, 16478047})
MEDIA_KINDS = ("photo", "document", "voice", "video", "audio", "animation", "sticker", "video_note")


@dataclass
class Call:
    """One request the fake received. ``response`` is None while the request is in flight."""

    method: str
    params: dict[str, Any]
    at: float  # time.perf_counter() when the request arrived
    response: dict[str, Any] | None = None
    status: int = 0
    files: dict[str, UploadedFile] = field(default_factory=dict)
    via: str = "http"  # "http" or "webhook-reply" (a method returned in a webhook answer)
    bot: int = 0  # the id of the bot that made the call

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def result(self) -> Any:
        return (self.response or {}).get("result")


@dataclass
class FileRecord:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    meta: dict[str, Any]  # the extra fields of the file object (width, file_name, ...)
    # "file_id is unique for each individual bot and can't be transferred from one bot to
    # another" (Bot API, Sending files; PLATFORMS.md A5): 0 = the main bot's
    owner: int = 0

    def as_object(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            **self.meta,
        }


@dataclass
class ChatState:
    id: int
    type: str  # "private" | "group" | "supergroup"
    title: str | None = None
    is_forum: bool = False
    can_manage_topics: bool = True
    blocked: bool = False
    deactivated: bool = False
    migrated_to: int | None = None
    member_bots: set[int] = field(default_factory=set)  # relay bots in this group (admins)
    kicked_bots: set[int] = field(default_factory=set)
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    topics: dict[int, dict[str, Any]] = field(default_factory=dict)  # ForumTopic + "is_closed"
    user: dict[str, Any] | None = None  # the other party of a private chat

    def allocate_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def as_chat(self) -> dict[str, Any]:
        if self.type == "private":
            user = self.user or {}
            chat: dict[str, Any] = {"id": self.id, "type": "private"}
            for key in ("first_name", "last_name", "username"):
                if user.get(key):
                    chat[key] = user[key]
            return chat
        chat = {"id": self.id, "type": self.type, "title": self.title or f"Chat {self.id}"}
        if self.is_forum:
            chat["is_forum"] = True
        return chat


def shallow(message: dict[str, Any]) -> dict[str, Any]:
    """A message as embedded in another (reply_to_message carries no reply_to_message)."""
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def public_message(message: dict[str, Any]) -> dict[str, Any]:
    """The message as the API returns it: Message.reply_markup is only ever inline."""
    result = copy.deepcopy(message)
    markup = result.get("reply_markup")
    if not (isinstance(markup, dict) and "inline_keyboard" in markup):
        result.pop("reply_markup", None)
    return result


def new_file_id(kind: str) -> tuple[str, str]:
    prefix = {"photo": "AgACAgIAAxk", "voice": "AwACAgIAAxk", "sticker": "CAACAgIAAxk"}
    file_id = prefix.get(kind, "BQACAgIAAxk") + secrets.token_urlsafe(48)
    return file_id, "AQAD" + secrets.token_urlsafe(9)


class FakeState:
    """Everything the fake remembers; the mixins and FakeTelegram build on it."""

    def __init__(
        self,
        token: str,
        enforce_limits: bool,
        clock: Callable[[], float],
        allowed_updates: list[str] | None,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.enforce_limits = enforce_limits
        self._clock = clock
        self._bots: dict[str, BotIdentity] = {token: BotIdentity(
            token, self.bot_id, BOT_USERNAME, BOT_FIRST_NAME, RateLimits(clock))}
        self.calls: list[Call] = []
        self.pushed_at: dict[int, float] = {}
        self.limit_violations: list[LimitViolation] = []
        self.dropped_updates: list[dict[str, Any]] = []  # filtered out by allowed_updates
        self.deleted_messages: list[dict[str, Any]] = []
        self.reactions: dict[tuple[int, int], list[dict[str, Any]]] = {}  # set by the bot
        self.commands: dict[str, list[dict[str, Any]]] = {}  # setMyCommands by scope
        self._chats: dict[int, ChatState] = {}
        self._files: dict[str, FileRecord] = {}
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        # id -> the bot that received the press (the one that sent the message), the only
        # one that may answer it
        self._query_bots: dict[str, int] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._allowed_updates: list[str] = list(allowed_updates or [])
        self._webhook: dict[str, Any] | None = None
        self._webhook_error: tuple[int, str] | None = None

    # --- identities -----------------------------------------------------------------------
    @property
    def acting(self) -> BotIdentity:
        """The bot the current request is made as (the main bot outside a request)."""
        return self._bots[acting_token.get() or self.token]

    @property
    def bot_user(self) -> dict[str, Any]:
        return self.acting.user

    @property
    def limits(self) -> RateLimits:
        return self.acting.limits

    def add_bot(self, token: str, username: str, *, groups: tuple[int, ...] = (),
                first_name: str = "Support Relay") -> dict[str, Any]:
        """Another bot on this server (a relay), an admin of `groups`."""
        identity = BotIdentity(token, int(token.split(":", 1)[0]), username, first_name,
                               RateLimits(self._clock))
        self._bots[token] = identity
        for chat_id in groups:
            self.chat(chat_id).member_bots.add(identity.id)
        return identity.user

    def bot_by_token(self, token: str) -> BotIdentity | None:
        identity = self._bots.get(token)
        return None if identity is None or identity.revoked else identity

    def revoke_bot(self, token: str) -> None:
        """@BotFather revoked the token: every call with it is 401 Unauthorized."""
        self._bots[token].revoked = True

    def remove_bot(self, token: str, chat_id: int) -> None:
        """An admin removed the bot from the group."""
        chat, bot_id = self.chat(chat_id), self._bots[token].id
        chat.member_bots.discard(bot_id)
        chat.kicked_bots.add(bot_id)

    def relay_ids(self) -> set[int]:
        return {bot.id for bot in self._bots.values() if bot.token != self.token}

    def get_me(self) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
            "allows_users_to_create_topics": False,
        }

    def user(self, user_id: int) -> dict[str, Any]:
        chat = self._chats.get(user_id)
        if chat is not None and chat.user is not None:
            return dict(chat.user)
        return {"id": user_id, "is_bot": False, "first_name": "Иван", "language_code": "ru"}

    # --- chats ----------------------------------------------------------------------------
    def private_chat(self, user: dict[str, Any]) -> ChatState:
        """The private chat with ``user``, created or refreshed with the user's details."""
        chat = self._chats.get(user["id"])
        if chat is None:
            chat = self._chats[user["id"]] = ChatState(user["id"], "private")
        chat.user = dict(user)
        return chat

    def chat(self, chat_id: Any) -> ChatState:
        """The chat a method addresses; unknown groups and @usernames are "chat not found"."""
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            try:
                chat_id = int(chat_id)
            except ValueError:
                raise bad_request("chat not found") from None
        if isinstance(chat_id, bool) or not isinstance(chat_id, int):
            raise bad_request("chat not found")
        chat = self._chats.get(chat_id)
        if chat is not None:
            return chat
        if chat_id > 0:  # any user id is a private chat the user opened earlier
            return self.private_chat(self.user(chat_id))
        raise bad_request("chat not found")

    def stored(self, chat: ChatState, message_id: Any, what: str) -> dict[str, Any]:
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise bad_request(f"{what} not found")
        return message

    # --- messages -------------------------------------------------------------------------
    def compose(
        self,
        chat: ChatState,
        sender: dict[str, Any],
        thread_id: int | None,
        content: dict[str, Any],
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A new Message object in ``chat`` (not stored yet)."""
        message: dict[str, Any] = {
            "message_id": message_id if message_id is not None else chat.allocate_id(),
            "from": dict(sender),
            "chat": chat.as_chat(),
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            topic_root = chat.messages.get(thread_id)
            if thread_id in chat.topics:
                message["is_topic_message"] = True
            if topic_root is not None:  # Telegram links topic messages to the topic's root
                message["reply_to_message"] = shallow(topic_root)
        message.update(content)
        return message

    def store(self, message: dict[str, Any]) -> dict[str, Any]:
        chat = self._chats.get(message["chat"]["id"])
        if chat is None:
            chat_obj = message["chat"]
            if chat_obj.get("type") == "private":
                chat = self.private_chat(message.get("from") or self.user(chat_obj["id"]))
            else:
                chat = self._chats[chat_obj["id"]] = ChatState(
                    chat_obj["id"],
                    chat_obj.get("type", "supergroup"),
                    chat_obj.get("title"),
                    bool(chat_obj.get("is_forum")),
                )
        chat.messages[message["message_id"]] = message
        chat.next_message_id = max(chat.next_message_id, message["message_id"] + 1)
        for kind in MEDIA_KINDS:
            self._register_file_objects(kind, message.get(kind))
        return message

    def is_outgoing(self, message: dict[str, Any]) -> bool:
        """Sent by the bot making the request (a bot edits only its own messages)."""
        return (message.get("from") or {}).get("id") == self.acting.id

    # --- files ----------------------------------------------------------------------------
    def add_file(self, kind: str, data: bytes, meta: dict[str, Any], ext: str) -> FileRecord:
        file_id, unique_id = new_file_id(kind)
        folder = {"photo": "photos", "voice": "voice", "sticker": "stickers"}.get(kind, kind + "s")
        path = f"{folder}/file_{len(self._files)}.{ext}"
        record = FileRecord(file_id, unique_id, kind, data, path, meta, owner=self.acting.id)
        self._files[file_id] = record
        return record

    def usable_by(self, record: FileRecord, bot: BotIdentity) -> bool:
        """Only the bot a file_id was issued to can use it (0: the main bot's)."""
        return (record.owner or self.bot_id) == bot.id

    def file(self, file_id: str) -> FileRecord:
        record = self._files.get(file_id)
        if record is None or not self.usable_by(record, self.acting):
            raise bad_request("wrong file identifier/HTTP URL specified")
        return record

    def _register_file_objects(self, kind: str, value: Any) -> None:
        objects = value if isinstance(value, list) else [value]
        for obj in objects:
            if isinstance(obj, dict) and "file_id" in obj and obj["file_id"] not in self._files:
                skip = ("file_id", "file_unique_id", "file_size")
                meta = {k: v for k, v in obj.items() if k not in skip}
                data = b"\0" * int(obj.get("file_size") or 0)
                path = f"{kind}s/file_{len(self._files)}"
                self._files[obj["file_id"]] = FileRecord(
                    obj["file_id"], obj.get("file_unique_id", ""), kind, data, path, meta
                )
