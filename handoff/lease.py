"""Leases in Redis: one holder at a time for a shard, a sender or a poller, kept by a heartbeat.

A lease is a key holding its owner's token with a TTL. The holder renews it every third of the
TTL; a holder that dies stops renewing, and the next process takes over as soon as the TTL runs
out: a waiter asks how long the current holder has left and sleeps exactly that long, so the
failover time is the TTL plus a round trip, not the TTL plus a polling interval.

A holder that cannot reach Redis cannot know whether it still holds the lease: once a full TTL
has passed since its last successful renewal it treats the lease as `lost` and stops acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from redis.asyncio import Redis

from handoff.scripts import Scripts

log = logging.getLogger(__name__)

MAX_POLL = 0.5  # seconds between two tries while the holder's TTL is unknown or long


def owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """`await lease.acquire(stop)` waits until the lease is ours; `lost` is set when it is not
    ours any more (taken over, or not renewed for a whole TTL)."""

    def __init__(self, redis: Redis, scripts: Scripts, key: str, *, ttl: float, owner: str) -> None:
        self._redis = redis
        self._scripts = scripts
        self.key = key
        self.ttl = ttl
        self.owner = owner
        self.lost = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        self._stop_renewing = asyncio.Event()
        self._renewed = 0.0  # monotonic time of the last successful take or renewal

    async def attempt(self) -> float:
        """One try: 0 when the lease is ours now, else the seconds the holder has left."""
        asked = time.monotonic()
        got = int(await self._scripts["lease"](
            keys=[self.key], args=[self.owner, int(self.ttl * 1000)]))
        if got == 1:
            self._renewed = asked
            return 0.0
        return -got / 1000

    async def try_acquire(self) -> bool:
        """One try; the caller keeps it alive itself (or calls `acquire`)."""
        return await self.attempt() == 0.0

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for the lease and keep it renewed; False if `stop` was set first."""
        while not stop.is_set():
            left = await self.attempt()
            if left == 0.0:
                self.hold()
                return True
            # Just past the holder's expiry: a dead holder's lease changes hands at once.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), min(left + 0.005, MAX_POLL, self.ttl / 3))
        return False

    def hold(self) -> None:
        """Start renewing a lease just taken with `try_acquire`."""
        self.lost.clear()
        if self._heartbeat is None or self._heartbeat.done():
            self._stop_renewing = asyncio.Event()
            self._heartbeat = asyncio.create_task(self._renew(self._stop_renewing),
                                                  name=f"lease {self.key}")

    async def confirm(self) -> bool:
        """Whether the lease is surely still ours, before an action another holder must not
        repeat (a message sent). Renewals run every third of the TTL; when the last one is
        older than two thirds (this process stalled, or Redis is slow), ask Redis now instead
        of acting on a lease that may have passed to someone else meanwhile."""
        if self.lost.is_set():
            return False
        if time.monotonic() - self._renewed < self.ttl * 2 / 3:
            return True
        try:
            if await self.try_acquire():
                return True
        except Exception as exc:  # unreachable: cannot be sure, so not ours to act on
            log.warning("lease %s: cannot confirm (%s)", self.key, exc)
            return False
        log.error("lease %s: lost to another owner", self.key)
        self.lost.set()
        return False

    async def _renew(self, stop: asyncio.Event) -> None:
        """Renew every third of the TTL until `stop` (an event of this heartbeat's own: a
        cancellation alone can be lost inside a Redis call, leaving the loop running)."""
        renewed = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.ttl / 3)
            if stop.is_set():
                return
            try:
                ok = await self.try_acquire()
            except Exception as exc:  # a Redis blip: keep trying until the TTL says otherwise
                if time.monotonic() - renewed < self.ttl:
                    log.warning("lease %s: renewal failed (%s); retrying", self.key, exc)
                    continue
                log.error("lease %s: not renewed for %.1fs: given up", self.key, self.ttl)
                self.lost.set()
                return
            if not ok:
                log.error("lease %s: lost to another owner", self.key)
                self.lost.set()
                return
            renewed = time.monotonic()

    async def release(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            self._stop_renewing.set()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        with contextlib.suppress(Exception):  # unreachable Redis: the TTL frees it anyway
            await self._scripts["release"](keys=[self.key], args=[self.owner])
