"""Bot API chat, member, forum-topic and command methods of the fake.

Forum topics follow PLATFORMS.md T1: a topic's ``message_thread_id`` is the id of its
``forum_topic_created`` service message; General (id 1) and unknown or deleted topics are
"Bad Request: message thread not found"; ``createForumTopic`` without ``can_manage_topics``
is "Bad Request: not enough rights to create a topic"; ``editForumTopic`` has no
``icon_color``. The bot, being an administrator, may still post into a closed topic
(unconfirmed in the real API).
"""

from __future__ import annotations

from typing import Any

from fakes.telegram_media import MediaMethods
from fakes.telegram_state import GENERAL_TOPIC_ID, TOPIC_ICON_COLORS, ChatState
from fakes.telegram_wire import UploadedFile, bad_request

DEFAULT_ICON_COLOR = 7322096  # 0x6FB9F0, the first of the allowed colours

_ADMIN_RIGHTS = (
    "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
    "can_manage_video_chats", "can_restrict_members", "can_promote_members", "can_change_info",
    "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
    "can_send_welcome_messages", "can_pin_messages", "can_manage_topics",
)  # fmt: skip


class ChatMethods(MediaMethods):
    def _group(self, p: dict[str, Any]) -> ChatState:
        chat = self.chat(p.get("chat_id"))
        self.check_write(chat)
        return chat

    def _topic(self, chat: ChatState, raw: Any) -> dict[str, Any]:
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")  # (approx.)
        topic = chat.topics.get(raw) if isinstance(raw, int) else None
        if topic is None or raw == GENERAL_TOPIC_ID:
            raise bad_request("message thread not found")
        return topic

    def _service(self, chat: ChatState, thread_id: int, content: dict[str, Any]) -> None:
        message = self.compose(chat, self.bot_user, None, content, chat.allocate_id())
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
        self.store(message)

    # --- chats and members ----------------------------------------------------------------
    def m_getChat(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self.chat(p.get("chat_id"))
        info: dict[str, Any] = {
            **chat.as_chat(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }
        if chat.type == "private" and chat.user:
            info["active_usernames"] = [chat.user["username"]] if chat.user.get("username") else []
        return info

    def m_getChatMember(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self.chat(p.get("chat_id"))
        user_id = p.get("user_id")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise bad_request("invalid user_id specified")
        if user_id == self.bot_id:
            if chat.type == "private":
                return {"status": "member", "user": self.bot_user}
            rights = dict.fromkeys(_ADMIN_RIGHTS, True) | {
                "is_anonymous": False,
                "can_be_edited": False,
                "can_manage_topics": chat.can_manage_topics,
            }
            return {"status": "administrator", "user": self.bot_user, **rights}
        if chat.type == "private" and user_id != chat.id:
            raise bad_request("user not found")
        return {"status": "member", "user": self.user(user_id)}

    # --- forum topics ---------------------------------------------------------------------
    def m_createForumTopic(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._group(p)
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")  # (approx.)
        if not chat.can_manage_topics:
            raise bad_request("not enough rights to create a topic")
        name = p.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("TOPIC_TITLE_EMPTY")  # (approx.)
        if len(name) > 128:
            raise bad_request("TOPIC_TITLE_TOO_LONG")  # (approx.)
        color = p.get("icon_color", DEFAULT_ICON_COLOR)
        if color not in TOPIC_ICON_COLORS:
            raise bad_request("invalid icon_color specified")  # (approx.)
        topic: dict[str, Any] = {"name": name, "icon_color": color}
        if p.get("icon_custom_emoji_id"):
            topic["icon_custom_emoji_id"] = p["icon_custom_emoji_id"]
        # "Creating a topic counts as sending a message" (levlam, tdlib/td#2592; PLATFORMS.md A2)
        self.check_limits("createForumTopic", chat, 1)
        thread_id = chat.allocate_id()
        created = self.compose(chat, self.bot_user, None, {"forum_topic_created": topic}, thread_id)
        created.update(message_thread_id=thread_id, is_topic_message=True)
        self.store(created)
        chat.topics[thread_id] = {"message_thread_id": thread_id, **topic, "is_closed": False}
        return {"message_thread_id": thread_id, **topic}

    def m_editForumTopic(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._group(p)
        topic = self._topic(chat, p.get("message_thread_id"))
        edited: dict[str, Any] = {}
        if p.get("name"):
            if len(p["name"]) > 128:
                raise bad_request("TOPIC_TITLE_TOO_LONG")  # (approx.)
            edited["name"] = p["name"]
        if "icon_custom_emoji_id" in p:
            edited["icon_custom_emoji_id"] = p["icon_custom_emoji_id"] or ""
        if all(topic.get(k, "") == v for k, v in edited.items()):
            raise bad_request("TOPIC_NOT_MODIFIED")  # (approx.)
        self.check_limits("editForumTopic", chat, 1)  # it posts a service message
        topic.update(edited)
        if topic.get("icon_custom_emoji_id") == "":
            del topic["icon_custom_emoji_id"]
        self._service(chat, topic["message_thread_id"], {"forum_topic_edited": edited})
        return True

    def _toggle(self, p: dict[str, Any], closed: bool) -> bool:
        chat = self._group(p)
        topic = self._topic(chat, p.get("message_thread_id"))
        if topic["is_closed"] == closed:
            raise bad_request("TOPIC_NOT_MODIFIED")  # (approx.)
        self.check_limits("closeForumTopic" if closed else "reopenForumTopic", chat, 1)
        topic["is_closed"] = closed
        key = "forum_topic_closed" if closed else "forum_topic_reopened"
        self._service(chat, topic["message_thread_id"], {key: {}})
        return True

    def m_closeForumTopic(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._toggle(p, True)

    def m_reopenForumTopic(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._toggle(p, False)

    def m_deleteForumTopic(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._group(p)
        thread_id = self._topic(chat, p.get("message_thread_id"))["message_thread_id"]
        del chat.topics[thread_id]
        for message_id, message in list(chat.messages.items()):
            if message.get("message_thread_id") == thread_id:
                self.deleted_messages.append(chat.messages.pop(message_id))
        return True

    def m_getForumTopicIconStickers(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return []

    # --- commands -------------------------------------------------------------------------
    def m_setMyCommands(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.commands[self._scope_key(p)] = list(p.get("commands") or [])
        return True

    def m_getMyCommands(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.commands.get(self._scope_key(p), [])

    def m_deleteMyCommands(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.commands.pop(self._scope_key(p), None)
        return True

    @staticmethod
    def _scope_key(p: dict[str, Any]) -> str:
        scope = p.get("scope") or {"type": "default"}
        return f"{scope.get('type')}:{scope.get('chat_id', '')}:{p.get('language_code', '')}"
