"""Back-off for loops that must outlive their failures (a Redis restart, a platform outage).

Every role of `supportbot run` keeps running through such outages: it waits a little longer
after each failed try (jitter keeps many processes from coming back in lockstep), capped at a
second because Redis is usually back within one or two (a restart, a failover) and a try costs
nothing; it logs the 1st, 2nd, 4th, 8th, ... failure in a row, so a long outage writes a handful
of lines per role rather than one a second; and it starts again where its state in Redis says.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Backoff:
    def __init__(self, first: float = 0.1, cap: float = 1.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first
        self.failures = 0

    def reset(self) -> None:
        self.delay = self.first
        self.failures = 0

    def failed(self) -> bool:
        """Count a failure in a row; True when it deserves a log line."""
        self.failures += 1
        return self.failures & (self.failures - 1) == 0

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        """Sleep the current delay (or until `stop`), then lengthen it for the next failure."""
        pause = self.delay * random.uniform(0.8, 1.2)
        self.delay = min(self.cap, self.delay * 2)
        if stop is None:
            await asyncio.sleep(pause)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)


def redis_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionError))


def describe(exc: BaseException) -> str:
    """One line for a log: the outage itself needs no traceback, a bug does (the caller
    decides with `redis_unreachable`)."""
    kind = "Redis unreachable" if redis_unreachable(exc) else type(exc).__name__
    return f"{kind}: {exc}"
