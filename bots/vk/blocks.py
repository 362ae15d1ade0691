"""`user_block` / `user_unblock`: a ban an administrator made in VK itself (not from the desk).

Each is journaled (`vk_block` or `vk_unblock`, with admin_id, user_id, unblock_date, reason,
comment), and every wall or board thread of that user still with the operators gets a line in
its topic, so nobody keeps answering an author who can no longer write. The threads a user
commented in are remembered by the ingress (`note_author`, a set kept THREADS_TTL seconds).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from handoff.conversations import ConversationStore
from handoff.events import InboundEvent
from handoff.keys import Keys

KINDS = frozenset({"user_block", "user_unblock"})
THREADS_TTL = 30 * 86400
JOURNAL_MAXLEN = 100_000
# user_block `reason`: 0 other, 1 spam, 2 verbal abuse, 3 strong language, 4 irrelevant messages
REASONS = {0: "другое", 1: "спам", 2: "оскорбления", 3: "нецензурная брань",
           4: "сообщения не по теме"}
OPEN = ("queued", "assigned")
DEDUP_SECONDS = 24 * 3600


async def note_author(redis: Redis, keys: Keys, event: InboundEvent) -> None:
    """A comment's author and its thread (called for `vk-wall:` comments at ingress)."""
    if event.channel != "vk-wall" or event.kind not in ("text", "media") or not event.chat_id:
        return
    key = keys.vk_author_threads(event.chat_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.sadd(key, event.conversation)
        pipe.expire(key, THREADS_TTL)
        await pipe.execute()


async def first_delivery(redis: Redis, keys: Keys, raw: dict[str, Any]) -> bool:
    """Whether this is the first delivery of the event: VK delivers again what was not
    acknowledged in time, and these events bypass the ingest's dedup (they are not stored as
    a conversation's events). Keyed by VK's `event_id`, kept as long as the ingest's markers."""
    event_id = str(raw.get("event_id") or "")
    if not event_id:
        return True  # an old API version without ids: nothing to tell repeats apart by
    return bool(await redis.set(keys.seen(0, f"vk-{raw['type']}:{event_id}"), "1", nx=True,
                                ex=DEDUP_SECONDS))


def line(kind: str, obj: dict[str, Any]) -> str:
    """The topic's line: `Автор заблокирован администратором … до …` (or unblocked)."""
    user, admin = int(obj.get("user_id") or 0), int(obj.get("admin_id") or 0)
    who = f"администратором https://vk.com/id{admin}" if admin else "администратором"
    if kind == "user_unblock":
        return f"✅ Автор https://vk.com/id{user} разблокирован {who} в ВКонтакте."
    until = int(obj.get("unblock_date") or 0)
    term = (f"до {datetime.fromtimestamp(until, UTC):%d.%m.%Y %H:%M} UTC" if until
            else "навсегда")
    reason = REASONS.get(int(obj.get("reason") or 0), "другое")
    comment = str(obj.get("comment") or "")
    return (f"⛔ Автор https://vk.com/id{user} заблокирован {who} в ВКонтакте {term} "
            f"(причина: {reason}{'; ' + comment if comment else ''}).")


async def blocked(redis: Redis, keys: Keys, store: ConversationStore | None, kind: str,
                  obj: dict[str, Any]) -> list[str]:
    """Journal the event and tell the user's open threads; the threads told."""
    user = int(obj["user_id"])
    fields = {"conv": f"vk:{user}", "action": "vk_block" if kind == "user_block" else
              "vk_unblock", "actor": f"vk:{int(obj.get('admin_id') or 0)}",
              "at": str(time.time()), "admin_id": str(int(obj.get("admin_id") or 0)),
              "user_id": str(user), "unblock_date": str(int(obj.get("unblock_date") or 0)),
              "reason": str(int(obj.get("reason") or 0)), "comment": str(obj.get("comment") or "")}
    await redis.xadd(keys.journal(), fields,  # type: ignore[arg-type]
                     maxlen=JOURNAL_MAXLEN, approximate=True)
    if store is None:
        return []
    told = []
    for raw in sorted(await redis.smembers(keys.vk_author_threads(user))):
        conv = raw.decode() if isinstance(raw, bytes) else str(raw)
        if (await store.load(conv)).state in OPEN:
            await store.report_to_desk(conv, line(kind, obj))
            told.append(conv)
    return told
