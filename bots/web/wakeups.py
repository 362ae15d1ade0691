"""Waking the sockets of a conversation when its chat stream grows, across processes.

One Redis pub/sub subscription per process, not a blocking XREAD per socket (a connection
each: thousands of open widgets would exhaust the pool). Whoever appends to a chat stream
publishes the conversation's id; each process wakes its sockets of that conversation, which then
read the stream after their `seq`. A notice lost while the subscription reconnects costs only
latency: every socket also looks at its stream every `POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.asyncio import Redis

from bots.backoff import Backoff, describe
from handoff.keys import Keys

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0


class Wakeups:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._channel = keys.web_wake()
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None

    async def publish(self, conv: str) -> None:
        await self._redis.publish(self._channel, conv)

    def register(self, conv: str) -> asyncio.Event:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="web wakeups")
        event = asyncio.Event()
        self._waiting[conv].add(event)
        return event

    def unregister(self, conv: str, event: asyncio.Event) -> None:
        events = self._waiting.get(conv)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waiting[conv]

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        backoff = Backoff()
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                backoff.reset()
                async for message in pubsub.listen():
                    for event in self._waiting.get(str(message["data"]), ()):
                        event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: sockets keep polling meanwhile
                if backoff.failed():
                    log.warning("web wakeups: %s; retrying", describe(exc))
                await backoff.wait()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
