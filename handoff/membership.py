"""Spreading the inbound shards over the worker processes that are alive.

Every worker process beats in one sorted set (`members.lua`, Redis's clock) every second or so;
from the live members each computes its share of the shards: sorted by name, the first
`shards % n` members take one more than `shards // n`. A process holding more than its share
gives back its highest-numbered shards (after the entry in hand: order per conversation holds,
the next holder re-reads what was left pending); one holding less takes free shards. Leases
still decide who holds a shard: the plan only says who should try, so a stale view costs a
moment of imbalance, never two holders. One loop per process takes the shards (the heartbeat's),
trying the free ones just as their previous holder's lease runs out.

A process that joins gets its share within a heartbeat plus the time the others need to finish
the entry in hand; a dead one drops out of the set after a TTL, when its shard leases run out
too, so its shards move within the TTL plus a heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from handoff.lease import Lease
from handoff.scripts import Scripts

log = logging.getLogger(__name__)


def share(members: list[str], me: str, shards: int) -> int:
    """How many shards `me` should hold among `members` (sorted the same way by everyone)."""
    ordered = sorted(set(members) | {me})
    base, extra = divmod(shards, len(ordered))
    return base + (1 if ordered.index(me) < extra else 0)


class ShardPlan:
    """This process's share of the shards: which it holds, and the one loop that takes more.

    Taking is done here, by one loop, rather than by each shard's task: tasks racing for room
    in the share starved some shards for tens of seconds while others took every turn.
    """

    def __init__(
        self, scripts: Scripts, key: str, leases: dict[int, Lease], *, owner: str, ttl: float,
    ) -> None:
        self._scripts = scripts
        self.key = key
        self.leases = leases
        self.owner = owner
        self.shards = len(leases)
        self.ttl = ttl
        self.beat_every = min(ttl / 3, 1.0)
        self.members: list[str] = [owner]
        self.target = 0  # nothing until the first beat says how many of us there are
        self.held: set[int] = set()
        self.granted = {shard: asyncio.Event() for shard in leases}
        self.changed = asyncio.Event()
        self._start = 0

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
        """Beat and take free shards up to the share until `stop`, then leave so the others
        take over at once."""
        try:
            next_beat = 0.0
            while not stop.is_set():
                wait = self.beat_every
                try:
                    if time.monotonic() >= next_beat:
                        await self.beat()
                        next_beat = time.monotonic() + self.beat_every
                    wait = min(await self.claim(), next_beat - time.monotonic())
                except Exception as exc:  # Redis away: the leases stop the consumers if it lasts
                    log.warning("worker %s: heartbeat failed (%s)", self.owner, exc)
                await self.wait_change(stop, max(wait, 0.01))
        finally:
            with contextlib.suppress(Exception):
                await self.beat(leave=True)

    async def claim(self) -> float:
        """Take free shards while under the share; the seconds until it is worth looking
        again (a holder's lease running out, or the next beat)."""
        soonest = self.beat_every
        others = [shard for shard in range(self.shards) if shard not in self.held]
        self._start = (self._start + 1) % self.shards  # no shard always last in line
        others.sort(key=lambda shard: (shard - self._start) % self.shards)
        for shard in others:
            if len(self.held) >= self.target:
                break
            left = await self.leases[shard].attempt()
            if left == 0.0:
                self.leases[shard].hold()
                self.held.add(shard)
                self.granted[shard].set()
            else:  # just past its holder's expiry: a dead holder's shard moves at once
                soonest = min(soonest, left + 0.005)
        return soonest

    def give_up(self, shard: int) -> None:
        """The shard's task let go of it (its lease is released)."""
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
