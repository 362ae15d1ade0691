"""Back-off for loops that must outlive their failures (a Redis restart, a platform outage).

Every role of `supportbot run` keeps running through such outages: it logs one line per failed
try, waits a little longer each time (capped, with jitter so that many processes do not come
back in lockstep) and starts again where its state in Redis says.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Backoff:
    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

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
