"""The shards spread over the worker processes alive (real Redis, several plans in one event
loop standing for several processes): a fair share each, a newcomer gets its share, a dead
one's shards move once its leases run out, and no shard waits while someone has room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from handoff.keys import Keys
from handoff.lease import Lease
from handoff.membership import ShardPlan, share
from handoff.scripts import Scripts
from tests.telegram_harness import wait_until

SHARDS = 8
TTL = 1.0


def test_shares_add_up_and_differ_by_one_at_most() -> None:
    members = ["c", "a", "b"]
    assert [share(members, me, SHARDS) for me in sorted(members)] == [3, 3, 2]
    assert share([], "a", SHARDS) == SHARDS


@asynccontextmanager
async def plan(redis: aioredis.Redis, keys: Keys, owner: str) -> AsyncIterator[ShardPlan]:
    """A worker's plan with stand-in consumers that give a shard back when over the share."""
    scripts = Scripts(redis)
    leases = {shard: Lease(redis, scripts, keys.shard_lease(shard), ttl=TTL, owner=owner)
              for shard in range(SHARDS)}
    made = ShardPlan(scripts, keys.workers(), leases, owner=owner, ttl=TTL)
    stop = asyncio.Event()

    async def consumer(shard: int) -> None:
        while not stop.is_set():
            await made.granted[shard].wait()
            made.granted[shard].clear()
            while not made.must_release(shard) and not leases[shard].lost.is_set():
                await asyncio.sleep(0.05)
            await leases[shard].release()
            made.give_up(shard)

    tasks = [asyncio.create_task(made.run(stop)),
             *(asyncio.create_task(consumer(shard)) for shard in range(SHARDS))]
    try:
        yield made
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lease in leases.values():
            await lease.release()


async def holders(redis: aioredis.Redis, keys: Keys) -> list[str | None]:
    return [await redis.get(keys.shard_lease(shard)) for shard in range(SHARDS)]


def spread(owners: list[str]) -> Callable[[list[str | None]], bool]:
    wanted = sorted(share(owners, me, SHARDS) for me in owners)
    return lambda held: sorted(held.count(owner) for owner in owners) == wanted


async def test_a_newcomer_gets_its_share_and_a_dead_ones_shards_move_at_its_expiry(
    redis: aioredis.Redis, keys: Keys
) -> None:
    async with plan(redis, keys, "a"), plan(redis, keys, "b"):
        await wait_until(lambda: holders(redis, keys), spread(["a", "b"]), 5, "4 and 4")
        async with plan(redis, keys, "c"):
            await wait_until(lambda: holders(redis, keys), spread(["a", "b", "c"]), 5,
                             "3, 3 and 2 once a third joins")
        await wait_until(lambda: holders(redis, keys), spread(["a", "b"]), 5,
                         "4 and 4 once it left")

    # A process that died holding three shards: its heartbeat and leases simply run out.
    seconds, micros = await redis.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    await redis.zadd(keys.workers(), {"dead": now_ms + int(TTL * 1000)})
    for shard in range(3):
        await redis.set(keys.shard_lease(shard), "dead", px=int(TTL * 1000))
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with plan(redis, keys, "a"), plan(redis, keys, "b"):
        await wait_until(lambda: holders(redis, keys),
                         lambda held: "dead" not in held and spread(["a", "b"])(held),
                         TTL * 3 + 2, "the dead one's shards taken by the two alive")
        moved = loop.time() - started
    assert moved < TTL + 1.0, f"the shards moved {moved:.1f}s after the leases ran out"
