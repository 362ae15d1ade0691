"""The desk's state in Redis, one owner for all of it.

What the desk group shows of each conversation lives in the conversation's hash: `topic`
("chat:thread"), `topic_shown` ("state|name", what the topic's name and open/closed state show
now), `anchor` ("chat:message", the first post, in a group that is not a forum), `card`
("chat:message"), `card_handoff` (the handoff that card was posted for) and `card_bot` (the
bot that posted it: a relay's card is edited by that relay). Which conversation a
thread or a message of the group belongs to is `desk_threads` ("chat:thread" or "chat:mID" ->
conversation), what operators' messages and presses are routed by. The group itself is
`desk_state`: `chat` (after a migration to a supergroup), `forum` ("1"/"0") and `summary`
("chat:message", the queue summary edited in place).

Before, these were written from the topic manager, the desk sender, the ingress and the runtime;
now only through here (the handoff scripts write the conversation's other fields).
"""

from __future__ import annotations

from redis.asyncio import Redis

from handoff.keys import Keys


def message_ref(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def card_of_this_handoff(fields: dict[str, str]) -> bool:
    """The stored card was posted for the conversation's latest handoff (cards from before
    `card_handoff` existed count as such; the handoff scripts write `handoffs`)."""
    handoff = fields.get("handoffs", "0")
    return bool(fields.get("card")) and fields.get("card_handoff", handoff) == handoff


def in_chat(ref: str, chat_id: int) -> int | None:
    """The message or thread id of a "chat:id" reference, if it is in `chat_id`."""
    chat, _, number = ref.partition(":")
    return int(number) if chat == str(chat_id) and number.isdigit() else None


class DeskStore:
    def __init__(self, redis: Redis, keys: Keys, desk: int | None = None) -> None:
        """`desk`: the configured chat id of a desk group other than the first."""
        self._redis = redis
        self._keys = keys
        self._state = keys.desk_state(desk)

    def of_desk(self, desk: int | None) -> DeskStore:
        """The same store for another desk group's state."""
        return DeskStore(self._redis, self._keys, desk)

    # --- which desk a conversation belongs to -----------------------------------------------
    async def routed(self, conv: str, desk: int) -> int:
        """Route `conv` to `desk` unless it already belongs to one; the desk it belongs to."""
        key = self._keys.conversation(conv)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "desk", desk)
            pipe.hget(key, "desk")
            _, stored = await pipe.execute()
        return int(stored)

    async def desks_of(self, convs: list[str]) -> list[int | None]:
        if not convs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hget(self._keys.conversation(conv), "desk")
            found = await pipe.execute()
        return [int(value) if value else None for value in found]

    async def moved(self, conv: str, desk: int) -> None:
        """`conv` now belongs to `desk`: its next post creates a topic and a card there."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.conversation(conv), "desk", desk)
            pipe.hdel(self._keys.conversation(conv), "topic", "topic_shown", "anchor", "card",
                      "card_bot", "card_handoff")
            await pipe.execute()

    # --- the group ------------------------------------------------------------------------
    async def chat(self) -> int | None:
        stored = await self._redis.hget(self._state, "chat")
        return int(stored) if stored else None

    async def migrated(self, new_chat: int) -> None:
        """The group became supergroup `new_chat`: whether it is a forum is asked again."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._state, "chat", new_chat)
            pipe.hdel(self._state, "forum")
            await pipe.execute()

    async def forum(self) -> bool | None:
        cached = await self._redis.hget(self._state, "forum")
        return None if cached is None else cached == "1"

    async def set_forum(self, forum: bool) -> None:
        await self._redis.hset(self._state, "forum", "1" if forum else "0")

    async def summary(self) -> str:
        return str(await self._redis.hget(self._state, "summary") or "")

    async def set_summary(self, chat_id: int, message_id: int) -> None:
        await self._redis.hset(self._state, "summary",
                               message_ref(chat_id, message_id))

    # --- a conversation's place in the group ----------------------------------------------
    async def place_fields(self, conv: str) -> dict[str, str]:
        topic, anchor = await self._redis.hmget(self._keys.conversation(conv),
                                                ["topic", "anchor"])
        return {"topic": str(topic or ""), "anchor": str(anchor or "")}

    async def topic_created(self, conv: str, chat_id: int, thread: int, shown: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.conversation(conv), mapping={
                "topic": message_ref(chat_id, thread), "topic_shown": shown})
            pipe.hset(self._keys.desk_threads(), message_ref(chat_id, thread), conv)
            await pipe.execute()

    async def set_shown(self, conv: str, shown: str) -> None:
        await self._redis.hset(self._keys.conversation(conv), "topic_shown", shown)

    async def topic_gone(self, conv: str) -> None:
        """Deleted by someone: the next post creates a new topic (and a new card)."""
        await self._redis.hdel(self._keys.conversation(conv), "topic", "card", "card_bot",
                               "topic_shown")

    async def message_posted(self, conv: str, chat_id: int, message_id: int, *,
                             anchor: bool) -> None:
        """A post outside a forum topic: replies to it route to `conv`; the first is the
        conversation's anchor."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.desk_threads(), f"{chat_id}:m{message_id}", conv)
            if anchor:
                pipe.hset(self._keys.conversation(conv), "anchor",
                          message_ref(chat_id, message_id))
            await pipe.execute()

    async def card_posted(self, conv: str, chat_id: int, message_id: int, handoff: str, *,
                          bot: int = 0) -> None:
        """`bot`: the one that posted it, the only one that may edit it (0: the main bot)."""
        await self._redis.hset(self._keys.conversation(conv), mapping={
            "card": message_ref(chat_id, message_id), "card_handoff": handoff,
            "card_bot": bot})

    async def conversations_of(self, refs: list[str]) -> dict[str, str]:
        """Which conversation each "chat:thread" / "chat:mID" belongs to (those known)."""
        if not refs:
            return {}
        found = await self._redis.hmget(self._keys.desk_threads(), refs)
        return {ref: str(value) for ref, value in zip(refs, found, strict=True) if value}
