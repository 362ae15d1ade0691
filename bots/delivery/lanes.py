"""A channel's sender: its outbox read under a lease, one ordered lane per peer.

Only the holder of the channel's sender lease reads the outbox, under a stable consumer name.
So a platform's limits are kept by one process at a time (two processes never double a
per-chat or per-group budget), and when a holder dies the next one — another process already
waiting, or the same one restarted — takes the lease the moment it runs out and re-sends at once
what the dead one left unacknowledged. An entry is handed to a lane once per holder (the
reader's in-flight set), however long it waits behind a platform limit.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

from bots.backoff import Backoff, describe, redis_unreachable
from handoff.lease import Lease
from handoff.outbox import OutboxItem, OutboxReader

log = logging.getLogger(__name__)


async def held_surely(lease: Lease | None) -> bool:
    """Wait until the lease is surely ours (True), or lost (False): a sender that stalled
    past its renewals must not send what the next holder has taken over meanwhile (the
    message would go twice). While Redis cannot confirm it, nothing is sent."""
    if lease is None:
        return True
    while not await lease.confirm():
        if lease.lost.is_set():
            return False
        await asyncio.sleep(0.2)
    return True


@dataclass(slots=True)
class Lane:
    queue: deque[OutboxItem] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class LaneSender(ABC):
    """Subclasses say which peer an entry goes to (`peer`) and deliver it (`deliver`)."""

    channel = "?"

    def __init__(self, reader: OutboxReader, lease: Lease | None = None) -> None:
        self._reader = reader
        self._lease = lease
        self._lanes: dict[int, Lane] = {}

    # --- what a channel provides ------------------------------------------------------
    @abstractmethod
    def peer(self, item: OutboxItem) -> int | None:
        """The lane an entry belongs to; None drops it (the subclass says why in the log)."""

    @abstractmethod
    async def deliver(self, peer: int, item: OutboxItem, lane: Lane) -> list[OutboxItem]:
        """Deliver `item` (first in its lane); return other entries it took from the lane
        and delivered with it (an album's parts), to be acknowledged too."""

    async def route(self, item: OutboxItem) -> bool:
        """True when the subclass takes the entry elsewhere (the desk's own queue)."""
        return False

    def companions(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Tasks that run beside the lanes while the lease is held (the desk)."""
        return []

    # --- the core ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Hold the lease and deliver until `stop` (or until the lease is lost)."""
        if self._lease is not None and not await self._lease.acquire(stop):
            return
        companions: list[asyncio.Task[None]] = []
        try:
            await self._reader.start()
            for item in await self._reader.take_over():
                await self.dispatch(item)
            companions = self.companions(stop)
            backoff = Backoff()
            while not stop.is_set() and not self._lost():
                try:
                    items = await self._reader.read(block_ms=500)
                except Exception as exc:
                    if not redis_unreachable(exc):
                        raise
                    # Keep the lanes and what they hold: Redis is usually back in seconds,
                    # and the lease says when to give up (lost after a TTL without renewal).
                    if backoff.failed():
                        log.warning("%s sender: %s (failure %d in a row); retrying",
                                    self.channel, describe(exc), backoff.failures)
                    await backoff.wait(stop)
                    continue
                backoff.reset()
                for item in items:
                    await self.dispatch(item)
            if self._lost():
                log.error("%s sender: lease lost; another process delivers from now on",
                          self.channel)
            else:
                await self.drain(timeout=2.0)
        finally:
            # What is still waiting (a long retry_after) stays unacknowledged in the stream for
            # the next holder; nothing may outlive the platform client's session.
            tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
            for task in [*tasks, *companions]:
                task.cancel()
            await asyncio.gather(*tasks, *companions, return_exceptions=True)
            self._lanes.clear()
            self._reader.forget_in_flight()
            if self._lease is not None:
                await self._lease.release()

    def _lost(self) -> bool:
        return self._lease is not None and self._lease.lost.is_set()

    async def dispatch(self, item: OutboxItem) -> None:
        if await self.route(item):
            return
        peer = self.peer(item)
        if peer is None:
            await self.ack(item)
            return
        lane = self._lanes.get(peer)
        if lane is None:
            lane = self._lanes[peer] = Lane()
        lane.queue.append(item)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._run_lane(peer, lane))

    async def ack(self, item: OutboxItem) -> None:
        await self._reader.ack(item)

    async def drain(self, timeout: float | None = None) -> None:
        """Let the lanes empty (at most `timeout` seconds)."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _ack_surely(self, item: OutboxItem) -> None:
        """An unacknowledged entry is delivered again by the next holder: through a Redis
        outage, keep trying (XACK is idempotent) while the lease is ours."""
        backoff = Backoff()
        while True:
            try:
                await self.ack(item)
                return
            except Exception as exc:
                if not redis_unreachable(exc) or self._lost():
                    raise
                if backoff.failed():
                    log.warning("%s sender: ack of %s failed (%s); retrying", self.channel,
                                item.entry_id, describe(exc))
                await backoff.wait()

    async def may_send(self) -> bool:
        return await held_surely(self._lease)

    async def _run_lane(self, peer: int, lane: Lane) -> None:
        while lane.queue:
            if not await self.may_send():
                return  # the next holder sends what is left (unacknowledged in the stream)
            item = lane.queue[0]
            parts: list[OutboxItem] = []
            try:
                parts = await self.deliver(peer, item, lane)
            except Exception:  # a bug must not stop the lane: the next message still goes
                log.exception("%s:%d: unexpected failure delivering %s", self.channel, peer,
                              item.message.id)
            lane.queue.popleft()
            for done in (item, *parts):
                await self._ack_surely(done)
        if self._lanes.get(peer) is lane and not lane.queue:
            del self._lanes[peer]
