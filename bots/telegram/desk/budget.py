"""One budget for everything the bot posts into the desk group.

Telegram lets a bot post about 20 messages a minute into one group, and about one a second into
any chat. Its maintainers say edits share that limit, and that creating a forum topic counts as
a message (it posts the "topic created" service message); renaming, closing and reopening a
topic post service messages too (PLATFORMS.md, addendum A2). So every call that changes what
the group shows spends from this one budget, in the order the desk picked its items (by
priority): topics, cards, card edits, relayed messages and the queue summary alike. Before, only
messages were paced, and 40 handoffs at once met 458 429s from unpaced topic creation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bots.ratelimit import Combined, SlidingWindow, TokenBucket

WINDOW = 61.0  # Telegram's minute, and a second of margin for the clocks' disagreement


class GroupBudget:
    def __init__(
        self, per_minute: float = 20.0, per_second: float = 1.0, *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bucket = Combined(
            # Under Telegram's 1/s with a burst of 3: request jitter bunches paced sends up.
            TokenBucket(per_second * 0.9, 2, clock=clock),
            SlidingWindow(max(1, int(per_minute)), WINDOW, clock=clock),
        )
        self._sleep = sleep
        # One waiter at a time (FIFO, so in the order items were picked): concurrent
        # deliveries must not all spend the same token.
        self._lock = asyncio.Lock()

    async def spend(self, count: int = 1) -> None:
        """Wait until `count` posts fit, and take them."""
        async with self._lock:
            for _ in range(count):
                wait = self.bucket.delay()
                if wait > 0:
                    await self._sleep(wait)
                self.bucket.take()

    async def ready(self) -> None:
        """Wait until a post would fit, without taking it (to decide what to post last)."""
        async with self._lock:
            wait = self.bucket.delay()
            if wait > 0:
                await self._sleep(wait)

    def give_back(self) -> None:
        """A call refused before Telegram counted it (a 400): its slot is free again."""
        self.bucket.give_back()

    def pause(self, seconds: float) -> None:
        """Telegram said 429 retry_after: nothing is posted into the group for that long."""
        self.bucket.pause(seconds)

    def delay(self) -> float:
        """Seconds a post would have to wait now."""
        return self.bucket.delay()

    def short(self) -> bool:
        """Whether a post would have to wait now."""
        return self.delay() > 0
