"""What Long Poll and the Callback API share: raw VK events in, stored events out.

Before storing, each customer's profile is completed: the commit writes the event's profile
onto the conversation, so every event must carry the full one. It is read back from the
conversation (one pipelined HGET per batch); only on first contact does users.get run (name,
city, screen name), once for the whole batch. If users.get fails the events are stored with
the bare id: a profile is nice to have, a lost message is not.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from bots import metrics
from bots.vk import blocks
from bots.vk.client import VkClient, VkError
from bots.vk.updates import EventRejected, button_actions, parse_event
from bots.vk.wall import is_wall
from bots.vk.wall_events import is_topic, post_of
from handoff.conversations import ConversationStore
from handoff.events import InboundEvent, Profile
from handoff.ingest import Ingestor
from handoff.keys import Keys

log = logging.getLogger(__name__)

PROFILE_FIELDS = "city,screen_name"
POST_SHOWN = 500  # characters of a wall post on its comments' card


class VkIngress:
    def __init__(self, ingestor: Ingestor, client: VkClient, redis: Redis, keys: Keys,
                 store: ConversationStore | None = None, admin: VkClient | None = None) -> None:
        self._ingestor = ingestor
        self._admin = admin  # a community admin's user token: wall.getById for posts' texts
        self._store = store  # for user_block's line in the author's topics (bots/vk/blocks.py)
        self._client = client
        self._redis = redis
        self._keys = keys

    @property
    def group_id(self) -> int:
        return self._client.group_id

    async def accept(self, raw_events: Sequence[Any]) -> int:
        """Store a batch; the number of new events. Raises when Redis fails (nothing acked)."""
        events: list[InboundEvent] = []
        for raw in raw_events:
            if isinstance(raw, dict) and raw.get("type") in blocks.KINDS \
                    and isinstance(raw.get("object"), dict) \
                    and raw.get("group_id") in (None, self.group_id):
                try:
                    if await blocks.first_delivery(self._redis, self._keys, raw):
                        await blocks.blocked(self._redis, self._keys, self._store,
                                             raw["type"], raw["object"])
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("vk %s rejected: malformed (%s)", raw["type"], exc)
                continue
            try:
                event = parse_event(raw, self.group_id)
            except EventRejected as exc:
                log.warning("vk event rejected: %s", exc)
                metrics.INBOUND.labels("vk", "rejected").inc()
                continue
            if event is None:
                metrics.INBOUND.labels("vk", "ignored").inc()
                continue
            events.append(event)
            await self._note_buttons(event, raw)
            await blocks.note_author(self._redis, self._keys, event)
        events = await self._with_posts(await self._with_profiles(events))
        stored = 0
        for entry in await self._ingestor.ingest(events):
            metrics.INBOUND.labels("vk", "stored" if entry else "duplicate").inc()
            stored += entry is not None
        return stored

    async def _note_buttons(self, event: InboundEvent, raw: Any) -> None:
        """Remember who cannot press callback buttons (old apps): they get text buttons."""
        actions = button_actions(raw)
        if actions is None:
            return
        key = self._keys.text_buttons("vk")
        if "callback" in actions:
            await self._redis.srem(key, event.conversation)
        else:
            await self._redis.sadd(key, event.conversation)

    async def _with_profiles(self, events: list[InboundEvent]) -> list[InboundEvent]:
        convs = sorted({event.conversation for event in events})
        if not convs:
            return events
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hget(self._keys.conversation(conv), "profile")
            stored = await pipe.execute()
        known = {conv: Profile(**json.loads(raw)) for conv, raw in zip(convs, stored, strict=True)
                 if raw}
        missing = sorted({e.profile.user_id for e in events
                          if not _named(known.get(e.conversation), e.profile.user_id)})
        fetched = await self._users(missing) if missing else {}
        result = []
        for event in events:
            profile = fetched.get(event.profile.user_id) or known.get(event.conversation)
            if profile is not None and profile.user_id == event.profile.user_id:
                event = dataclasses.replace(event, profile=profile)
            result.append(event)
        return result

    async def _with_posts(self, events: list[InboundEvent]) -> list[InboundEvent]:
        """A wall comment carries its post's text (`reply_text`: what it replies to), for the
        card. wall.getById takes a user token (VK_ADMIN_TOKEN): without one the card shows
        the post's link only. Fetched once a day per post, whatever the comments."""
        if self._admin is None:
            return events
        result = []
        for event in events:
            if is_wall(event.conversation) and not is_topic(event.conversation) \
                    and event.kind in ("text", "media") and not event.reply_text:
                event = dataclasses.replace(event, reply_text=await self._post_text(
                    event.conversation))
            result.append(event)
        return result

    async def _post_text(self, thread: str) -> str:
        key = self._keys.vk_post(thread)
        known = await self._redis.get(key)
        if known is not None:
            return str(known)
        owner, post = post_of(thread)
        try:
            found = await self._admin.call("wall.getById",  # type: ignore[union-attr]
                                           posts=f"{owner}_{post}")
        except VkError as exc:
            log.warning("vk wall.getById %s_%s failed (%s): the card shows the link only",
                        owner, post, exc)
            return ""
        items = found.get("items", found) if isinstance(found, dict) else found
        text = str(items[0].get("text") or "")[:POST_SHOWN] if items else ""
        await self._redis.set(key, text, ex=86400)
        return text

    async def _users(self, user_ids: list[str]) -> dict[str, Profile]:
        try:
            users = await self._client.call("users.get", user_ids=",".join(user_ids),
                                            fields=PROFILE_FIELDS)
        except VkError as exc:
            log.warning("vk users.get for %d users failed (%s): bare profiles", len(user_ids), exc)
            return {}
        return {str(user["id"]): profile_of(user) for user in users if isinstance(user, dict)}


def profile_of(user: dict[str, Any]) -> Profile:
    city = user.get("city")
    screen_name = str(user.get("screen_name") or "")
    return Profile(
        user_id=str(user["id"]), first_name=str(user.get("first_name") or ""),
        last_name=str(user.get("last_name") or ""),
        # "id123" is what VK shows for users without a short name of their own
        username="" if screen_name == f"id{user['id']}" else screen_name,
        city=str(city.get("title") or "") if isinstance(city, dict) else "",
    )


def _named(profile: Profile | None, user_id: str) -> bool:
    return profile is not None and profile.user_id == user_id and bool(profile.first_name)
