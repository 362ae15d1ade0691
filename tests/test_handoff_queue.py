"""Queue order, positions and the wait estimate (with and without samples, in and out of hours)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.hours import BusinessHours
from handoff.keys import Keys
from handoff.service import HandoffService
from tests.test_handoff_support import START, enqueue, make_service


@pytest.fixture
def service(redis: aioredis.Redis, keys: Keys, clock: FakeClock) -> HandoffService:
    return make_service(redis, keys, clock, default_wait_seconds=120)


async def test_priority_first_then_oldest_first(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    for conv, priority in [("tg:1", "low"), ("tg:2", "normal"), ("tg:3", "urgent"),
                           ("tg:4", "high"), ("tg:5", "normal"), ("tg:6", "urgent")]:
        await enqueue(redis, keys, conv, clock, priority=priority, tags=("vip",) * (
            priority == "urgent"))
        clock.advance(10)
    items = await service.queue()
    assert [(i.conv, i.priority, i.position) for i in items] == [
        ("tg:3", "urgent", 1), ("tg:6", "urgent", 2), ("tg:4", "high", 3),
        ("tg:2", "normal", 4), ("tg:5", "normal", 5), ("tg:1", "low", 6)]
    assert (items[0].tags, items[0].reason, items[0].queued_at) == (
        ("vip",), "customer_request", START + 20)
    assert items[3].tags == ()
    assert [i.conv for i in await service.queue(limit=2)] == ["tg:3", "tg:6"]
    assert await service.queue_length() == 6
    assert (await service.position("tg:5")).position == 5
    assert (await service.position("tg:99")).position == 0


async def test_estimate_without_samples_uses_the_default(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    for n in range(3):
        await enqueue(redis, keys, f"tg:{n}", clock)
    assert await service.wait_estimate() is None
    status = await service.position("tg:2")
    assert (status.position, status.estimate_seconds, status.open_now, status.opens_at) == (
        3, 360.0, True, None)  # nobody free: three rounds of the default 120 s
    await service.set_status("tg:1001", "online")
    await service.set_status("tg:1002", "online")
    assert (await service.position("tg:2")).estimate_seconds == 240.0  # ceil(3 / 2) rounds


async def test_estimate_from_recent_waits(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status("tg:1001", "online")
    for n, wait in enumerate((30, 90, 60)):  # three claims measured by the claim script
        await enqueue(redis, keys, f"tg:{n}", clock)
        clock.advance(wait)
        assert (await service.claim(f"tg:{n}", "tg:1001")).ok
    assert await redis.lrange(keys.wait_samples(), 0, -1) == [  # type: ignore[misc]
        "60.0", "90.0", "30.0"]
    for n in range(10, 15):
        await enqueue(redis, keys, f"tg:{n}", clock)
    assert await service.wait_estimate() == 60.0  # the median
    assert (await service.position("tg:14")).estimate_seconds == 300.0  # 5th, one free operator
    await service.set_status("tg:1002", "online")
    await service.set_status("tg:1003", "online")
    assert (await service.position("tg:14")).estimate_seconds == 120.0  # ceil(5 / 3) = 2 rounds
    assert (await service.position("tg:10")).estimate_seconds == 60.0


async def test_wait_samples_are_capped(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    service = make_service(redis, keys, clock, wait_samples_max=3)
    await service.set_status("tg:1001", "online", capacity=10)
    for n in range(5):
        await enqueue(redis, keys, f"tg:{n}", clock)
        clock.advance(n + 1)
        await service.claim(f"tg:{n}", "tg:1001")
    assert await redis.lrange(keys.wait_samples(), 0, -1) == [  # type: ignore[misc]
        "5.0", "4.0", "3.0"]


async def test_outside_business_hours_the_customer_hears_when_we_open(
    redis: aioredis.Redis, keys: Keys
) -> None:
    hours = BusinessHours.parse("mon-fri 09:00-18:00", "Europe/Moscow")
    friday_night = datetime(2026, 9, 25, 20, 0, tzinfo=timezone.utc)  # 23:00 in Moscow
    clock = FakeClock(friday_night.timestamp())
    service = make_service(redis, keys, clock, hours=hours, default_wait_seconds=120)
    await enqueue(redis, keys, "tg:1", clock)
    status = await service.position("tg:1")
    monday = datetime(2026, 9, 28, 6, 0, tzinfo=timezone.utc)  # 09:00 in Moscow
    assert (status.position, status.open_now, status.opens_at) == (1, False, monday)
    assert status.estimate_seconds == monday.timestamp() - clock.now() + 120
    clock.set(monday)
    status = await service.position("tg:1")
    assert (status.open_now, status.opens_at, status.estimate_seconds) == (True, None, 120.0)


async def test_estimate_for_a_new_handoff_counts_who_is_ahead_of_its_priority(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    for n, priority in enumerate(("urgent", "high", "normal", "normal", "low")):
        await enqueue(redis, keys, f"tg:{n}", clock, priority=priority)
    # default 120 s per round, nobody free: a new "high" lands 3rd, "normal" 5th, "urgent" 2nd
    assert await service.estimate_for("high") == 360.0
    assert await service.estimate_for("normal") == 600.0
    assert await service.estimate_for("urgent") == 240.0
    assert await service.estimate_for("low") == 720.0
    assert await service.estimate_for("normal", position=1) == 120.0
