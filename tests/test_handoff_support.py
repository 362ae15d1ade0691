"""Helpers shared by the tests/test_handoff_*.py files (no tests of its own).

`enqueue` writes what commit_turn.lua writes on a handoff (same fields, same score formula via
`Handoff.score`) at the fake clock's time, so queue order and SLA timers are deterministic;
test_handoff_service.py also queues through the real commit path to keep the two in step.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.config import HandoffConfig
from handoff.conversations import Handoff
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.scripts import Scripts
from handoff.service import HandoffService

CONV = "tg:42"
ANN, BOB, CAT = "tg:1001", "tg:1002", "tg:1003"
START = 1_790_000_000.0  # a fixed "now" for the fake clock (2026-09-21, a Monday, UTC)


def make_keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:10]}:")


def make_service(redis: aioredis.Redis, keys: Keys, clock: FakeClock, **config: Any
                 ) -> HandoffService:
    return HandoffService(redis, keys, Scripts(redis), HandoffConfig(**config), clock)


async def enqueue(
    redis: aioredis.Redis, keys: Keys, conv: str, clock: FakeClock, *,
    priority: str = "normal", reason: str = "customer_request", tags: tuple[str, ...] = (),
) -> None:
    now = clock.now()
    handoff = Handoff(reason=reason, priority=priority, tags=tags)
    key = keys.conversation(conv)
    version = int(await redis.hincrby(key, "version", 1))  # type: ignore[misc]
    await redis.hset(key, mapping={  # type: ignore[misc]
        "state": "queued", "handoff_reason": reason, "handoff_priority": priority,
        "handoff_tags": ",".join(tags), "queued_at": repr(now), "updated_at": repr(now),
    })
    await redis.hsetnx(key, "created_at", repr(now))  # type: ignore[misc]
    await redis.hincrby(key, "handoffs", 1)  # type: ignore[misc]
    await redis.zadd(keys.queue(), {conv: handoff.score(now)})
    await redis.xadd(keys.journal(), {
        "conv": conv, "action": "handoff", "from": "bot", "to": "queued", "actor": "bot",
        "reason": reason, "priority": priority, "at": repr(now), "version": version,
    })


async def journal(redis: aioredis.Redis, keys: Keys, action: str | None = None
                  ) -> list[dict[str, str]]:
    entries = [fields for _id, fields in await redis.xrange(keys.journal())]
    return [e for e in entries if action is None or e["action"] == action]


async def notices(redis: aioredis.Redis, keys: Keys, channel: str = "tg") -> list[dict[str, Any]]:
    return [json.loads(fields["m"]) for _id, fields in
            await redis.xrange(keys.outbox(channel, "customer"))]


def notice(text: str, conv: str = CONV) -> OutboundMessage:
    return OutboundMessage(conversation=conv, text=text)


async def conversation(redis: aioredis.Redis, keys: Keys, conv: str = CONV) -> dict[str, str]:
    return await redis.hgetall(keys.conversation(conv))  # type: ignore[no-any-return,misc]


async def queued_and_claimed(service: HandoffService, redis: aioredis.Redis, keys: Keys,
                             clock: FakeClock, op: str = ANN) -> None:
    await service.set_status(op, "online")
    await enqueue(redis, keys, CONV, clock)
    clock.advance(30)
    assert (await service.claim(CONV, op)).ok
