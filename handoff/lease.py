"""Leases in Redis: one holder at a time for a shard or a poller, kept alive by a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from redis.asyncio import Redis

from handoff.scripts import Scripts

log = logging.getLogger(__name__)


def owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """`await lease.acquire()` waits until the lease is ours; `lost` is set if a renewal fails."""

    def __init__(self, redis: Redis, scripts: Scripts, key: str, *, ttl: float, owner: str) -> None:
        self._redis = redis
        self._scripts = scripts
        self.key = key
        self.ttl = ttl
        self.owner = owner
        self.lost = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None

    async def try_acquire(self) -> bool:
        got = await self._scripts["lease"](keys=[self.key], args=[self.owner, int(self.ttl * 1000)])
        return bool(got)

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for the lease (polling at a third of the TTL); False if `stop` was set first."""
        while not stop.is_set():
            if await self.try_acquire():
                self.lost.clear()
                self._heartbeat = asyncio.create_task(self._renew(), name=f"lease {self.key}")
                return True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.ttl / 3)
        return False

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                ok = await self.try_acquire()
            except Exception:  # a Redis blip: keep trying until the TTL says otherwise
                log.warning("lease %s: renewal failed", self.key, exc_info=True)
                continue
            if not ok:
                log.error("lease %s: lost to another owner", self.key)
                self.lost.set()
                return

    async def release(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        with contextlib.suppress(Exception):
            await self._scripts["release"](keys=[self.key], args=[self.owner])
