"""Token buckets for outbound pacing, with priorities so customer replies go before desk chores."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; `delay()` says how long to wait."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def delay(self) -> float:
        """Seconds until one token is available (0 when one is there now)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.burst

    def take(self) -> None:
        self._refill()
        self._tokens -= 1

    def give_back(self) -> None:
        self._tokens = min(self.burst, self._tokens + 1)

    def pause(self, seconds: float) -> None:
        """The platform said 'retry after N': spend the budget for that long."""
        self._refill()
        self._tokens = min(self._tokens, 0.0) - seconds * self.rate


class SlidingWindow:
    """At most `limit` events in any `period` seconds: Telegram's rule for a group (20 a
    minute), which allows a burst of 20 where a token bucket would space them out."""

    def __init__(
        self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sent: deque[float] = deque()

    def _forget(self) -> float:
        now = self._clock()
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()
        return now

    def delay(self) -> float:
        now = self._forget()
        if len(self._sent) < self.limit:
            return 0.0
        # At least a millisecond: woken after a rounding error's worth of wait, a waiter would
        # find the slot still taken and spin.
        return max(self._sent[0] + self.period - now, 0.001)

    def take(self) -> None:
        self._sent.append(self._forget())

    def give_back(self) -> None:
        """The call failed before Telegram counted it (a 400): its slot is free again."""
        if self._sent:
            self._sent.pop()

    def pause(self, seconds: float) -> None:
        now = self._forget()
        self._sent.clear()
        self._sent.extend([now + seconds - self.period] * self.limit)

    def full(self) -> bool:
        self._forget()
        return not self._sent


class Combined:
    """Several rules at once (a group: about 1 a second, and 20 a minute)."""

    def __init__(self, *budgets: TokenBucket | SlidingWindow) -> None:
        self.budgets = budgets

    def delay(self) -> float:
        return max(budget.delay() for budget in self.budgets)

    def take(self) -> None:
        for budget in self.budgets:
            budget.take()

    def give_back(self) -> None:
        for budget in self.budgets:
            budget.give_back()

    def pause(self, seconds: float) -> None:
        for budget in self.budgets:
            budget.pause(seconds)

    def full(self) -> bool:
        return all(budget.full() for budget in self.budgets)


Budget = TokenBucket | SlidingWindow | Combined


def per_second(rate: float, *, clock: Callable[[], float] = time.monotonic) -> Combined:
    """A platform's "N per second" for one token: never more than N in any second (a bucket
    alone lets a full burst and a second's refill through within one second, which Telegram
    answers with 429s), smoothed so that requests do not arrive in bunches. The window is a
    little longer than a second for the jitter between our clock and the platform's."""
    return Combined(TokenBucket(rate, max(1.0, rate / 6), clock=clock),
                    SlidingWindow(max(1, int(rate)), 1.05, clock=clock))


class PriorityLimiter:
    """A shared budget whose waiters are served by priority (lower first), then by `order`
    (the time the customer has been waiting since: after an outage the longest-waiting
    customer is answered first), then by arrival."""

    def __init__(self, bucket: Budget) -> None:
        self.bucket = bucket
        self._waiters: list[tuple[int, float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    async def acquire(self, priority: int = 0, order: float = 0.0) -> None:
        if not self._waiters and self.bucket.delay() == 0:
            self.bucket.take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, order, next(self._seq), future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._serve())
        await future

    async def _serve(self) -> None:
        while self._waiters:
            wait = self.bucket.delay()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            _priority, _order, _seq, future = heapq.heappop(self._waiters)
            if not future.done():
                self.bucket.take()
                future.set_result(None)
