"""Operators: status, capacity, auto-assignment and requeueing after the offline grace period."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.service import HandoffService
from tests.test_handoff_support import START, enqueue, journal, make_service, notices

ANN, BOB, CAT, DAN, EVE = "tg:1001", "tg:1002", "tg:1003", "tg:1004", "tg:1005"


@pytest.fixture
def service(redis: aioredis.Redis, keys: Keys, clock: FakeClock) -> HandoffService:
    return make_service(redis, keys, clock, offline_grace_seconds=120, default_capacity=4)


async def test_status_name_and_capacity(service: HandoffService, clock: FakeClock) -> None:
    ann = await service.set_status(ANN, "online", name="Ann", username="ann_support")
    assert (ann.status, ann.capacity, ann.load, ann.name, ann.status_since) == (
        "online", 4, 0, "Ann", START)
    clock.advance(60)
    again = await service.set_status(ANN, "online", capacity=7)
    assert (again.status_since, again.capacity, again.name) == (START, 7, "Ann")  # kept
    clock.advance(60)
    paused = await service.set_status(ANN, "paused")
    assert (paused.status, paused.status_since, paused.capacity) == ("paused", START + 120, 7)
    await service.set_status(BOB, "offline")
    assert [(o.id, o.status) for o in await service.operators()] == [
        (ANN, "paused"), (BOB, "offline")]
    assert await service.operator("tg:404") is None
    for bad in ({"status": "away"}, {"status": "online", "capacity": 0},
                {"status": "online", "capacity": 51}):
        with pytest.raises(ValueError):
            await service.set_status(CAT, **bad)  # type: ignore[arg-type]


async def test_auto_assign_to_the_least_loaded_online_operator(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online", capacity=5)
    await service.set_status(BOB, "online", capacity=2)
    await service.set_status(CAT, "online", capacity=5)
    await service.set_status(DAN, "paused")
    await service.set_status(EVE, "offline")
    for n, op in enumerate([ANN, ANN, CAT]):  # loads: Ann 2, Bob 0, Cat 1
        await enqueue(redis, keys, f"tg:{n}", clock)
        assert (await service.claim(f"tg:{n}", op)).ok
    for n in range(10, 15):
        await enqueue(redis, keys, f"tg:{n}", clock)
        clock.advance(1)

    def hello(conv: str, op: str) -> list[OutboundMessage]:
        return [OutboundMessage(conversation=conv, text=f"{op} на связи")]

    done = await service.auto_assign(notices=hello, limit=4)
    assert [(t.conv, t.owner) for t in done] == [
        ("tg:10", BOB),  # load 0
        ("tg:11", CAT),  # Bob and Cat at 1: Cat's share 1/5 beats Bob's 1/2
        ("tg:12", BOB),  # all at 1 or 2... Bob 1/2 vs Ann 2/5, Cat 2/5: Bob has the least
        ("tg:13", ANN),  # Bob is full; Ann and Cat tie at 2/5: by id
    ]
    assert [n["text"] for n in await notices(redis, keys)] == [
        f"{op} на связи" for op in (BOB, CAT, BOB, ANN)]
    assert [e["reason"] for e in await journal(redis, keys, "claim")][-4:] == ["auto"] * 4
    assert await redis.zrange(keys.queue(), 0, -1) == ["tg:14"]
    assert (await service.load(BOB), await service.load(DAN)) == (2, 0)


async def test_auto_assign_stops_when_everyone_is_full(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online", capacity=1)
    for n in range(3):
        await enqueue(redis, keys, f"tg:{n}", clock)
    assert [t.conv for t in await service.auto_assign()] == ["tg:0"]
    assert await service.auto_assign() == []
    await service.set_status(ANN, "offline")
    assert await service.auto_assign() == []


async def test_offline_operators_conversations_return_after_the_grace_period(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await service.set_status(BOB, "online")
    await enqueue(redis, keys, "tg:1", clock, priority="high")
    clock.advance(10)
    await enqueue(redis, keys, "tg:2", clock)
    await enqueue(redis, keys, "tg:3", clock)
    for conv, op in (("tg:1", ANN), ("tg:2", ANN), ("tg:3", BOB)):
        assert (await service.claim(conv, op)).ok
    clock.advance(5)
    await enqueue(redis, keys, "tg:4", clock)  # queued after tg:1 and tg:2 were
    await service.set_status(ANN, "offline")
    await service.set_status(BOB, "paused")  # paused keeps their conversations
    clock.advance(119)
    assert await service.requeue_offline() == []

    def sorry(conv: str) -> list[OutboundMessage]:
        return [OutboundMessage(conversation=conv, text="Оператор отключился, вы снова в очереди")]

    clock.advance(1)
    done = await service.requeue_offline(notices=sorry)
    assert sorted((t.conv, t.state) for t in done) == [("tg:1", "queued"), ("tg:2", "queued")]
    # Priority and original queued_at kept: tg:1 (high) first, tg:2 ahead of the later tg:4.
    assert await redis.zrange(keys.queue(), 0, -1) == ["tg:1", "tg:2", "tg:4"]
    assert (await service.load(ANN), await service.load(BOB)) == (0, 1)
    conv = await redis.hgetall(keys.conversation("tg:1"))  # type: ignore[misc]
    assert conv["state"] == "queued" and "owner" not in conv
    assert (conv["handoff_priority"], float(conv["queued_at"])) == ("high", START)
    assert await redis.zscore(keys.waiting(), "tg:1") is None
    assert sorted(e["conv"] for e in await journal(redis, keys, "requeue")) == ["tg:1", "tg:2"]
    assert len(await notices(redis, keys)) == 2
    assert await service.requeue_offline() == []


async def test_an_operator_back_within_the_grace_period_keeps_everything(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    assert (await service.claim("tg:1", ANN)).ok
    await service.set_status(ANN, "offline")
    clock.advance(60)
    await service.set_status(ANN, "online")
    clock.advance(3600)
    assert await service.requeue_offline() == []
    assert await service.requeue_offline(grace=0) == []
    await service.set_status(ANN, "offline")
    assert [t.conv for t in await service.requeue_offline(grace=0)] == ["tg:1"]
