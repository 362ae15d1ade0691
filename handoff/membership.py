"""Spreading the inbound shards over the worker processes that are alive.

Every worker process beats in one sorted set (`members.lua`, Redis's clock) every second or so;
from the live members each computes its share of the shards: sorted by name, the first
`shards % n` members take one more than `shards // n`. A process holding more than its share
gives back its highest-numbered shards (after the entry in hand: order per conversation holds,
the next holder re-reads what was left pending); one holding less takes free shards. Leases
still decide who holds a shard: the plan only says who should try, so a stale view costs a
moment of imbalance, never two holders.

A process that joins gets its share within a heartbeat plus the time the others need to finish
the entry in hand; a dead one drops out of the set after a TTL, when its shard leases run out
too, so its shards move within the TTL plus a heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from handoff.scripts import Scripts

log = logging.getLogger(__name__)


def share(members: list[str], me: str, shards: int) -> int:
    """How many shards `me` should hold among `members` (sorted the same way by everyone)."""
    ordered = sorted(set(members) | {me})
    base, extra = divmod(shards, len(ordered))
    return base + (1 if ordered.index(me) < extra else 0)


class ShardPlan:
    """This process's share of the shards, and which of them it holds now."""

    def __init__(
        self, redis: Redis, scripts: Scripts, key: str, *, owner: str, shards: int, ttl: float,
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self.key = key
        self.owner = owner
        self.shards = shards
        self.ttl = ttl
        self.beat_every = min(ttl / 3, 1.0)
        self.members: list[str] = [owner]
        self.target = 0  # nothing until the first beat says how many of us there are
        self.held: set[int] = set()
        self.changed = asyncio.Event()

    async def beat(self, leave: bool = False) -> None:
        members = await self._scripts["members"](
            keys=[self.key], args=[self.owner, int(self.ttl * 1000), "leave" if leave else "beat"])
        self.members = sorted(str(member) for member in members)
        target = 0 if leave else share(self.members, self.owner, self.shards)
        if target != self.target:
            log.info("worker %s: %d of %d shards (%d workers alive)", self.owner, target,
                     self.shards, len(self.members))
            self.target = target
        self.changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until `stop`, then leave so the others take over at once."""
        try:
            while not stop.is_set():
                try:
                    await self.beat()
                except Exception as exc:  # Redis away: the leases stop us if it lasts
                    log.warning("worker %s: heartbeat failed (%s)", self.owner, exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.beat_every)
        finally:
            with contextlib.suppress(Exception):
                await self.beat(leave=True)

    def reserve(self, shard: int) -> bool:
        """Count `shard` as held if there is room for it (before trying its lease, so that
        shard tasks racing for room never overshoot the share)."""
        if shard in self.held or len(self.held) >= self.target:
            return False
        self.held.add(shard)
        return True

    def give_up(self, shard: int) -> None:
        self.held.discard(shard)
        self.changed.set()

    def must_release(self, shard: int) -> bool:
        """Over the share: the highest-numbered shards go first."""
        excess = len(self.held) - self.target
        return excess > 0 and shard in sorted(self.held)[-excess:]

    async def wait_change(self, stop: asyncio.Event, timeout: float) -> None:
        self.changed.clear()
        waiters = [asyncio.ensure_future(self.changed.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
