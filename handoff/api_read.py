"""Read-only views for the HTTP API: one conversation, lists by state, the queue.

Everything is read from indexes that the scripts maintain (the queue zset, the operators set and
each operator's set of conversations), never by KEYS/SCAN over live keys. Reads are not atomic
across keys: a conversation claimed between reading the queue and reading its hash shows up with
its new state, which is the honest answer at that moment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from handoff.api_models import (
    ConversationDetail,
    ConversationSummary,
    HandoffInfo,
    Profile,
    QueueItem,
)
from handoff.clock import Clock
from handoff.keys import Keys


class ConversationReader:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock

    async def exists(self, conv: str) -> bool:
        return bool(await self._redis.exists(self._keys.conversation(conv)))

    async def summary(self, conv: str) -> ConversationSummary | None:
        raw = _strs(await self._redis.hgetall(self._keys.conversation(conv)))
        return summarize(conv, raw) if raw else None

    async def detail(self, conv: str) -> ConversationDetail | None:
        """Everything but the transcript, which the caller reads through the store."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.conversation(conv))
            pipe.lrange(self._keys.history(conv), 0, -1)
            pipe.zrank(self._keys.queue(), conv)
            found, history, rank = await pipe.execute()
        raw = _strs(found)
        if not raw:
            return None
        return ConversationDetail(
            **summarize(conv, raw).model_dump(),
            banned=raw.get("banned") == "1",
            unreachable=raw.get("unreachable", ""),
            handoffs=int(raw.get("handoffs", 0)),
            closed=int(raw.get("closed", 0)),
            queue_position=None if rank is None else rank + 1,
            transcript=[],
            history=[_json(h) for h in history],
        )

    async def queued(self, limit: int) -> list[ConversationSummary]:
        convs = await self._redis.zrange(self._keys.queue(), 0, limit - 1)
        return await self._summaries(map(str, convs))

    async def assigned(self, limit: int) -> list[ConversationSummary]:
        """Assigned conversations, longest-assigned first, from the operators' sets."""
        operators = map(str, await self._redis.smembers(self._keys.operators()))
        async with self._redis.pipeline(transaction=False) as pipe:
            for op in sorted(operators):
                pipe.smembers(self._keys.operator_convs(op))
            sets: list[set[str]] = await pipe.execute()
        convs = sorted({str(conv) for members in sets for conv in members})
        found = [s for s in await self._summaries(convs) if s.state == "assigned"]
        found.sort(key=lambda s: (s.handoff.assigned_at if s.handoff else None) or 0.0)
        return found[:limit]

    async def queue(self, limit: int, desk: int | None = None
                    ) -> tuple[int, list[QueueItem], dict[str, int]]:
        """The queue's length, its first `limit` items (of one desk group's part, with `desk`)
        and the length per desk group (empty while no conversation was routed to one)."""
        convs = [str(c) for c in await self._redis.zrange(self._keys.queue(), 0, -1)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hget(self._keys.conversation(conv), "desk")
            desks = [str(d) if d else "none" for d in await pipe.execute()]
        per_desk: dict[str, int] = {}
        for routed in desks:
            per_desk[routed] = per_desk.get(routed, 0) + 1
        if desk is not None:
            convs = [c for c, routed in zip(convs, desks, strict=True) if routed == str(desk)]
        length, convs = len(convs), convs[:limit]
        now = self._clock.now()
        items = []
        for position, summary in enumerate(await self._summaries(convs), start=1):
            queued_at = summary.handoff.queued_at if summary.handoff else None
            waited = None if queued_at is None else max(0.0, now - queued_at)
            items.append(QueueItem(position=position, conversation=summary, waited_seconds=waited))
        return length, items, per_desk if set(per_desk) != {"none"} else {}

    async def _summaries(self, convs: Iterable[str]) -> list[ConversationSummary]:
        convs = list(convs)
        if not convs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hgetall(self._keys.conversation(conv))
            raws = await pipe.execute()
        return [summarize(conv, _strs(raw)) for conv, raw in zip(convs, raws, strict=True)]


def summarize(conv: str, raw: dict[str, str]) -> ConversationSummary:
    state = raw.get("state", "bot")
    profile = json.loads(raw["profile"]) if raw.get("profile") else None
    return ConversationSummary(
        id=conv,
        state=state,
        version=int(raw.get("version", 0)),
        owner=raw.get("owner") or None,
        handoff=_handoff(raw) if state in ("queued", "assigned") else None,
        profile=Profile.model_validate(profile) if profile else None,
        desk=int(raw["desk"]) if raw.get("desk", "").lstrip("-").isdigit() else None,
    )


def _handoff(raw: dict[str, str]) -> HandoffInfo:
    tags = raw.get("handoff_tags", "")
    return HandoffInfo(
        reason=raw.get("handoff_reason", ""),
        priority=raw.get("handoff_priority", "normal"),
        tags=[tag for tag in tags.split(",") if tag],
        queued_at=_seconds(raw.get("queued_at")),
        assigned_at=_seconds(raw.get("assigned_at")),
        escalated=raw.get("escalated", "0") != "0",
        reminded=raw.get("reminded", "0") != "0",
        customer_waiting_since=_seconds(raw.get("customer_waiting_since")),
        first_response_at=_seconds(raw.get("first_response_at")),
    )


def _strs(raw: Any) -> dict[str, str]:
    # The runtime's client decodes responses; redis-py's types cannot know that.
    return {str(k): str(v) for k, v in raw.items()}


def _seconds(value: str | None) -> float | None:
    return float(value) if value else None


def _json(entry: str) -> dict[str, Any]:
    data = json.loads(entry)
    # Entries are written by our scripts as JSON objects; anything else is wrapped rather
    # than dropped, so a reader sees it instead of the API failing on it.
    return data if isinstance(data, dict) else {"value": data}
