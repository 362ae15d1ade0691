"""The queue as customers and supervisors see it: order, positions and an honest wait estimate.

Order is the zset score written by commit_turn.lua: `(3 - rank(priority)) * 10**13 +
queued_at_ms`, so urgent before high before normal before low, then oldest first. The score
also carries the original queued time (`score % 10**13` ms), which escalation keeps.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from handoff.clock import SYSTEM_CLOCK, Clock, as_datetime
from handoff.config import HandoffConfig
from handoff.conversations import PRIORITIES
from handoff.keys import Keys
from handoff.operators import Operators
from handoff.scripted import Scripted
from handoff.scripts import Scripts

SCORE_BAND = 10**13


@dataclass(frozen=True, slots=True)
class QueueItem:
    conv: str
    priority: str
    reason: str
    tags: tuple[str, ...]
    queued_at: float
    position: int  # 1 = next
    escalated: bool
    desk: str = ""  # the desk group's chat id, "" until routed


@dataclass(frozen=True, slots=True)
class QueueStatus:
    position: int  # 0 when the conversation is not queued
    estimate_seconds: float  # 0 when not queued
    open_now: bool
    opens_at: datetime | None  # the next opening while closed, else None


@dataclass(frozen=True, slots=True)
class _Wait:
    median: float | None  # of the recent waits; None before any was measured
    rounds: int  # how many rounds of free operators until the position is reached


class Queue(Scripted):
    def __init__(
        self, redis: Redis, keys: Keys, scripts: Scripts, config: HandoffConfig,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(redis, keys, scripts, config, clock)
        self._operators = Operators(redis, keys, scripts, config, clock)

    async def items(self, limit: int = 50) -> list[QueueItem]:
        convs = [str(c) for c in await self.redis.zrange(self.keys.queue(), 0, limit - 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in convs:
                pipe.hmget(self.keys.conversation(conv), "handoff_priority", "handoff_reason",
                           "handoff_tags", "queued_at", "escalated", "desk")
            rows = await pipe.execute()
        return [
            QueueItem(
                conv=conv, priority=priority or "normal", reason=reason or "",
                tags=tuple(tag for tag in (tags or "").split(",") if tag),
                queued_at=float(queued_at or 0), position=number,
                escalated=(escalated or "0") != "0", desk=desk or "",
            )
            for number, (conv, (priority, reason, tags, queued_at, escalated, desk))
            in enumerate(zip(convs, rows, strict=True), start=1)
        ]

    async def length(self) -> int:
        return int(await self.redis.zcard(self.keys.queue()))

    async def wait_estimate(self, position: int = 1) -> float | None:
        """Seconds until a customer at `position` is claimed, from the recent waits:

            median(last `wait_samples_max` waits) * ceil(position / max(1, free))

        where `free` is the number of online operators with a free slot: the first `free`
        customers wait about as long as people usually do, each further round of `free` waits
        that long again. None when no wait was measured yet; business hours not included."""
        wait = await self._wait(None, position)
        return None if wait.median is None else round(wait.median * wait.rounds, 1)

    async def estimate_for(self, priority: str = "normal", position: int | None = None
                           ) -> float:
        """Always a figure: `wait_estimate`, with `default_wait_seconds` standing in for the
        median before any wait was measured. Without `position`, the place a new handoff of
        `priority` would take: behind everyone queued with the same or a higher priority."""
        rank = PRIORITIES.index(priority) if priority in PRIORITIES else 1
        if position is None:
            wait = await self._wait(rank, 1)
        else:
            wait = await self._wait(None, position)
        if wait.median is None:
            return float(self.config.default_wait_seconds * wait.rounds)
        return round(wait.median * wait.rounds, 1)

    async def _wait(self, rank: int | None, position: int) -> _Wait:
        """What an estimate needs, in one round trip (two with operators): it is on the way of
        every handoff. With `rank`, `position` is the place a new handoff of that priority rank
        would take."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if rank is not None:
                pipe.zcount(self.keys.queue(), "-inf",
                            f"({(len(PRIORITIES) - rank) * SCORE_BAND}")
            pipe.lrange(self.keys.wait_samples(), 0, -1)
            pipe.smembers(self.keys.operators())
            replies = await pipe.execute()
        if rank is not None:
            position = int(replies.pop(0)) + 1
        raw, operator_ids = replies
        free = len(await self._operators.available(operator_ids)) if operator_ids else 0
        median = statistics.median(float(value) for value in raw) if raw else None
        return _Wait(median, math.ceil(max(1, position) / max(1, free)))

    async def position(self, conv: str) -> QueueStatus:
        """Where the customer stands. While the team is closed the estimate also counts the
        time until the next opening (`opens_at`)."""
        now = as_datetime(self.clock.now())
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrank(self.keys.queue(), conv)
            pipe.hget(self.keys.conversation(conv), "desk")
            rank, desk = await pipe.execute()
        hours = self.config.hours_for(desk)
        open_now = hours is None or hours.is_open(now)
        opens_at = None if open_now or hours is None else hours.next_open(now)
        if not isinstance(rank, int):  # None: not queued
            return QueueStatus(0, 0.0, open_now, opens_at)
        estimate = await self.estimate_for(position=rank + 1)
        if opens_at is not None:
            estimate += opens_at.timestamp() - now.timestamp()  # real seconds, DST included
        return QueueStatus(rank + 1, round(estimate, 1), open_now, opens_at)

