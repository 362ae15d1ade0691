"""One forum topic per customer in the desk group: created on first need, renamed to show the
conversation's state, recreated when deleted, and a reply-thread fallback for non-forum groups.

The desk chat id itself can change (a group upgraded to a supergroup): `DeskChat` holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram.exceptions import TelegramBadRequest

from bots.desk.store import in_chat
from bots.telegram.desk.chat import DeskChat
from bots.telegram.desk.relays import THREAD_GONE, Poster, RelayPool
from handoff.events import Profile

log = logging.getLogger(__name__)

STATE_MARK = {"queued": "🟡", "assigned": "🟢", "bot": "⚪", "banned": "⛔"}
ICON_COLOR = 0xFFD67E  # one of the six colours createForumTopic accepts (PLATFORMS.md T1)


@dataclass(frozen=True, slots=True)
class Place:
    """Where to post about a conversation: a topic, or (fallback) replies to its anchor message."""

    chat_id: int
    thread_id: int | None = None
    reply_to: int | None = None
    created: bool = False  # the topic was created just now, named for the current state


def topic_name(profile: Profile | None, conv: str, state: str) -> str:
    channel = conv.split(":", 1)[0]
    name = profile.display_name if profile else conv
    parts = [f"{STATE_MARK.get(state, '⚪')} {name}"]
    if profile and profile.username:
        parts.append(f"@{profile.username}")
    parts.append(channel)
    return " · ".join(parts)[:128]


class Topics:
    def __init__(self, pool: RelayPool, chat: DeskChat) -> None:
        # Creating, renaming, closing a topic each post a service message, so they are paced
        # like posts, and made by whichever bot of the pool can post soonest (any admin with
        # Manage topics may).
        self.pool = pool
        self.budget = pool.main.budget
        self._bot = pool.main.bot
        self.store = chat.store
        self.chat = chat
        # Whether the desk chat is a forum, remembered per chat id (a migration changes it).
        self._forum: tuple[int, bool] | None = None

    async def chat_id(self) -> int:
        return await self.chat.id()

    async def migrate(self, new_chat: int) -> None:
        await self.chat.migrate(await self.chat.id(), new_chat)

    async def is_forum(self, chat_id: int) -> bool:
        if self._forum is not None and self._forum[0] == chat_id:
            return self._forum[1]
        cached = await self.store.forum()
        if cached is not None:
            self._forum = (chat_id, cached)
            return cached
        chat = await self._bot.get_chat(chat_id)
        forum = bool(chat.is_forum)
        if not forum:
            log.warning("desk chat %d is not a forum: using reply threads", chat_id)
        await self.store.set_forum(forum)
        self._forum = (chat_id, forum)
        return forum

    async def place(
        self, conv: str, profile: Profile | None, state: str,
        known: dict[str, str] | None = None,
    ) -> Place:
        """The conversation's topic, created when it has none (or a fallback anchor).

        `known`: the conversation's hash when the caller just read it (saves a round trip).
        """
        chat_id = await self.chat_id()
        if known is None:
            known = await self.store.place_fields(conv)
        thread = in_chat(known.get("topic", ""), chat_id)
        if thread is not None:
            return Place(chat_id, thread_id=thread)
        anchor = in_chat(known.get("anchor", ""), chat_id)
        if anchor is not None:
            return Place(chat_id, reply_to=anchor)
        if not await self.is_forum(chat_id):
            return Place(chat_id)  # the card becomes the anchor once sent
        name = topic_name(profile, conv, state)
        _, created = await self.pool.run(lambda poster: poster.bot.create_forum_topic(
            chat_id, name, icon_color=ICON_COLOR))
        thread = created.message_thread_id
        await self.store.topic_created(conv, chat_id, thread, f"{state}|{name}")
        log.info("%s: desk topic %d created", conv, thread)
        return Place(chat_id, thread_id=thread, created=True)

    async def remember_message(self, conv: str, place: Place, message_id: int) -> None:
        """In the reply-thread fallback every message we post routes replies back to `conv`."""
        if place.thread_id is not None:
            return
        await self.store.message_posted(conv, place.chat_id, message_id,
                                        anchor=place.reply_to is None)

    async def forget(self, conv: str) -> None:
        """The topic was deleted by someone: the next post creates a new one."""
        await self.store.topic_gone(conv)
        log.warning("%s: desk topic was deleted; it will be recreated", conv)

    async def show_state(
        self, conv: str, profile: Profile | None, state: str, shown: str = "",
    ) -> None:
        """Rename the topic (its mark shows the state) and close it while the bot has it.

        `shown` is what the topic shows now ("state|name"); only what differs is changed, since
        each rename, close and reopen posts a service message into the group. What it shows is
        recorded once both calls went through: a 429 on the second retries it, not skips it.
        """
        name = topic_name(profile, conv, state)
        if shown == f"{state}|{name}":
            return
        place = await self.place(conv, profile, state)
        if place.thread_id is None or place.created:
            return
        chat_id, thread_id = place.chat_id, place.thread_id
        was_state, _, was_name = shown.partition("|")
        if name != was_name and not await self._topic_call(
                conv, lambda p: p.bot.edit_forum_topic(chat_id, thread_id, name=name)):
            return
        if not shown or (was_state == "bot") != (state == "bot"):
            closing = state == "bot"
            if not await self._topic_call(conv, lambda p: (
                    p.bot.close_forum_topic if closing else p.bot.reopen_forum_topic)(
                        chat_id, thread_id)):
                return
        await self.store.set_shown(conv, f"{state}|{name}")

    async def _topic_call(self, conv: str, call: Callable[[Poster], Awaitable[object]]) -> bool:
        """One topic call, paced; False when the topic is gone (it will be recreated). A 429
        or a network error propagates to the desk's retry policy."""
        try:
            await self.pool.run(call)
        except TelegramBadRequest as exc:
            if THREAD_GONE in exc.message:
                await self.forget(conv)
                return False
            if "TOPIC_NOT_MODIFIED" not in exc.message and "not modified" not in exc.message:
                log.info("%s: topic state not shown: %s", conv, exc.message)
        return True
