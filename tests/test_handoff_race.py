"""Claims racing each other over a pool of connections: one winner, capacity never exceeded."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.keys import Keys
from handoff.scripted import Transition
from tests.test_handoff_support import START, enqueue, journal, make_keys, make_service

CONVERSATIONS = 250
OPERATORS = 100
CAPACITY = 3
CLAIMS = 1000


@pytest.fixture
async def pooled(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client whose pool lets 50 claims be on the wire at once (the rest wait for a slot)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=50, decode_responses=True
    )
    client = aioredis.Redis(connection_pool=pool)
    yield client
    await client.aclose()
    await pool.aclose()


async def test_a_thousand_concurrent_claims(pooled: aioredis.Redis) -> None:
    keys, clock = make_keys(), FakeClock(START)
    service = make_service(pooled, keys, clock)
    convs = [f"vk:{n}" for n in range(CONVERSATIONS)]
    ops = [f"tg:{9000 + n}" for n in range(OPERATORS)]
    for conv in convs:
        await enqueue(pooled, keys, conv, clock)
    for op in ops:
        await service.set_status(op, "online", capacity=CAPACITY)
    rng = random.Random(4)
    attempts = [(convs[n % CONVERSATIONS], rng.choice(ops)) for n in range(CLAIMS)]
    rng.shuffle(attempts)

    results = await asyncio.gather(*(service.claim(conv, op) for conv, op in attempts))

    winners: dict[str, list[str]] = defaultdict(list)
    refusals: dict[str, Counter[str]] = defaultdict(Counter)
    for (conv, op), result in zip(attempts, results, strict=True):
        if result.ok:
            winners[conv].append(op)
        else:
            refusals[conv][result.error] += 1
    loads = Counter(op for won in winners.values() for op in won)
    for op in ops:
        members = await pooled.smembers(keys.operator_convs(op))
        assert len(members) == loads[op] <= CAPACITY
        assert members == {conv for conv, won in winners.items() if won == [op]}
    for conv in convs:
        state, owner = await pooled.hmget(keys.conversation(conv), "state", "owner")  # type: ignore[misc]
        if winners[conv]:
            assert len(winners[conv]) == 1, conv
            assert (state, owner) == ("assigned", winners[conv][0])
            assert set(refusals[conv]) <= {"taken", "capacity"}
        else:  # every claimant was full: it waits for the next free operator
            assert state == "queued" and owner is None
            assert set(refusals[conv]) == {"capacity"}
    for (conv, op), result in zip(attempts, results, strict=True):
        if result.error == "taken":
            assert result.owner == winners[conv][0]
        if result.error == "capacity":
            assert loads[op] == CAPACITY  # only a full operator is ever refused for capacity
    assert sum(map(len, winners.values())) == len(await journal(pooled, keys, "claim"))
    assert await pooled.zcard(keys.queue()) == CONVERSATIONS - len(
        [c for c in convs if winners[c]])
    assert len([c for c in convs if winners[c]]) > CONVERSATIONS * 0.8  # the race was real


async def test_two_operators_tap_take_in_the_same_instant(
    pooled: aioredis.Redis,
) -> None:
    keys, clock = make_keys(), FakeClock(START)
    service = make_service(pooled, keys, clock)
    await enqueue(pooled, keys, "tg:42", clock)
    for op in ("tg:1", "tg:2"):
        await service.set_status(op, "online")
    first, second = await asyncio.gather(service.claim("tg:42", "tg:1"),
                                         service.claim("tg:42", "tg:2"))
    won, lost = (first, second) if first.ok else (second, first)
    assert won.ok and not lost.ok
    assert (lost.error, lost.owner) == ("taken", won.owner)
    assert await pooled.hget(keys.conversation("tg:42"), "owner") == won.owner  # type: ignore[misc]


async def test_the_last_slot_goes_to_exactly_one_conversation(pooled: aioredis.Redis) -> None:
    keys, clock = make_keys(), FakeClock(START)
    service = make_service(pooled, keys, clock)
    await service.set_status("tg:1", "online", capacity=1)
    convs = [f"tg:{100 + n}" for n in range(20)]
    for conv in convs:
        await enqueue(pooled, keys, conv, clock)
    results: list[Transition] = await asyncio.gather(
        *(service.claim(conv, "tg:1") for conv in convs))
    assert sorted(r.error for r in results) == [""] + ["capacity"] * 19
    assert await service.load("tg:1") == 1


async def test_auto_assign_racing_manual_claims(pooled: aioredis.Redis) -> None:
    keys: Keys = make_keys()
    clock = FakeClock(START)
    service = make_service(pooled, keys, clock)
    for op in ("tg:1", "tg:2", "tg:3"):
        await service.set_status(op, "online", capacity=4)
    convs = [f"tg:{100 + n}" for n in range(30)]
    for conv in convs:
        await enqueue(pooled, keys, conv, clock)
    manual = [service.claim(conv, "tg:3") for conv in convs[::3]]
    auto, *_ = await asyncio.gather(service.auto_assign(), *manual)
    loads = [await service.load(op) for op in ("tg:1", "tg:2", "tg:3")]
    assert loads[:2] == [4, 4] and loads[2] == 4  # everyone full, nobody above
    assert {r.owner for r in auto} <= {"tg:1", "tg:2", "tg:3"}
    assert await pooled.zcard(keys.queue()) == 30 - 12
