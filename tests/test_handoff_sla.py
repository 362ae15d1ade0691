"""SLA timers on the fake clock: escalation of unclaimed conversations, reply reminders."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.hours import BusinessHours
from handoff.keys import Keys
from handoff.queue import SCORE_BAND
from handoff.service import HandoffService
from tests.test_handoff_support import START, enqueue, journal, make_service

ANN = "tg:1001"


@pytest.fixture
def service(redis: aioredis.Redis, keys: Keys, clock: FakeClock) -> HandoffService:
    return make_service(redis, keys, clock, unclaimed_minutes=5, reply_minutes=10)


async def test_unclaimed_conversation_escalates_once_keeping_its_age(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await enqueue(redis, keys, "tg:1", clock)  # normal, oldest
    clock.advance(60)
    await enqueue(redis, keys, "tg:2", clock, priority="high")
    await enqueue(redis, keys, "tg:3", clock, priority="urgent")
    clock.advance(4 * 60 - 1)
    assert await service.sla_due() == []  # tg:1 has waited 4:59
    clock.advance(1)
    (event,) = await service.sla_due()
    assert (event.kind, event.conv, event.priority, event.since) == (
        "escalate", "tg:1", "high", START)
    assert await service.sla_due() == []  # fired once
    # Now high, and older than tg:2: ahead of it; urgent still first.
    assert await redis.zrange(keys.queue(), 0, -1) == ["tg:3", "tg:1", "tg:2"]
    assert await redis.zscore(keys.queue(), "tg:1") == SCORE_BAND + START * 1000
    conv = await redis.hgetall(keys.conversation("tg:1"))  # type: ignore[misc]
    assert (conv["handoff_priority"], conv["escalated"]) == ("high", "1")
    assert float(conv["queued_at"]) == START
    (entry,) = await journal(redis, keys, "escalate")
    assert (entry["conv"], entry["from_priority"], entry["priority"], entry["actor"]) == (
        "tg:1", "normal", "high", "sla")
    assert int(entry["version"]) == event.version == int(conv["version"])
    items = await service.queue()
    assert [(i.conv, i.escalated) for i in items] == [
        ("tg:3", False), ("tg:1", True), ("tg:2", False)]
    clock.advance(60)
    events = await service.sla_due()
    assert [(e.conv, e.priority) for e in events] == [("tg:3", "urgent"), ("tg:2", "urgent")]
    assert await service.sla_due() == []


async def test_claimed_conversations_do_not_escalate(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    clock.advance(4 * 60)
    assert (await service.claim("tg:1", ANN)).ok
    clock.advance(2 * 60)
    assert [e.kind for e in await service.sla_due()] == []


async def test_reply_reminder_fires_once_per_wait(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    clock.advance(30)
    assert (await service.claim("tg:1", ANN)).ok  # the customer now waits for a first reply
    clock.advance(10 * 60 - 1)
    assert await service.sla_due() == []
    clock.advance(1)
    (event,) = await service.sla_due()
    assert (event.kind, event.conv, event.owner, event.since) == (
        "remind", "tg:1", ANN, START + 30)
    assert await service.sla_due() == []
    (entry,) = await journal(redis, keys, "remind")
    assert (entry["owner"], entry["actor"]) == (ANN, "sla")
    assert await redis.hget(keys.conversation("tg:1"), "reminded") == "1"  # type: ignore[misc]

    assert (await service.reply("tg:1", ANN, "Извините, уже смотрю")).ok  # clears the wait
    clock.advance(3600)
    assert await service.sla_due() == []
    # The customer writes again (what commit_turn does with customer_waiting): a new wait.
    await redis.zadd(keys.waiting(), {"tg:1": clock.now()}, nx=True)
    await redis.hset(keys.conversation("tg:1"), "customer_waiting_since",  # type: ignore[misc]
                     repr(clock.now()))
    clock.advance(10 * 60)
    assert [(e.kind, e.since) for e in await service.sla_due()] == [
        ("remind", START + 30 + 600 + 3600)]


async def test_escalation_and_reminder_together_and_after_close(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    await enqueue(redis, keys, "tg:2", clock)
    assert (await service.claim("tg:2", ANN)).ok
    clock.advance(11 * 60)
    events = await service.sla_due()
    assert sorted((e.kind, e.conv) for e in events) == [("escalate", "tg:1"), ("remind", "tg:2")]
    assert (await service.close("tg:2", ANN)).ok
    assert (await service.close("tg:1", ANN)).ok
    clock.advance(3600)
    assert await service.sla_due() == []


# --- business hours: the night and holidays do not count --------------------------------------
def moscow(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds of 2026-09-<day> <hour>:<minute> in Moscow (UTC+3, no DST)."""
    return datetime(2026, 9, day, hour, minute, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()


async def test_a_chat_queued_at_night_escalates_five_minutes_after_opening(
    redis: aioredis.Redis, keys: Keys
) -> None:
    clock = FakeClock(moscow(21, 23, 30))  # Monday 23:30, closed since 21:00
    hours = BusinessHours.parse("mon-fri 09:00-21:00", "Europe/Moscow", holidays="2026-09-22")
    service = make_service(redis, keys, clock, unclaimed_minutes=5, reply_minutes=10,
                           hours=hours)
    await enqueue(redis, keys, "tg:1", clock)
    clock.advance(moscow(21, 23, 40) - clock.now())
    assert await service.sla_due() == []  # not at 23:35: nobody is there
    clock.advance(moscow(23, 9, 4) - clock.now())  # Tuesday is a holiday: Wednesday 09:04
    assert await service.sla_due() == []
    clock.advance(moscow(23, 9, 5) - clock.now())
    (event,) = await service.sla_due()
    assert (event.kind, event.conv) == ("escalate", "tg:1")


async def test_a_reply_reminder_waits_for_business_hours_too(
    redis: aioredis.Redis, keys: Keys
) -> None:
    clock = FakeClock(moscow(21, 20, 55))  # Monday, five minutes before closing
    hours = BusinessHours.parse("mon-fri 09:00-21:00", "Europe/Moscow")
    service = make_service(redis, keys, clock, reply_minutes=10, hours=hours)
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    assert (await service.claim("tg:1", ANN)).ok  # the customer now waits for Ann's reply
    clock.advance(moscow(22, 9, 4) - clock.now())  # 5 + 4 minutes of business hours
    assert await service.sla_due() == []
    clock.advance(moscow(22, 9, 5) - clock.now())
    (event,) = await service.sla_due()
    assert (event.kind, event.owner) == ("remind", ANN)


def test_open_seconds_count_only_business_hours() -> None:
    hours = BusinessHours.parse("mon-fri 09:00-21:00", "Europe/Moscow", holidays="2026-09-22")
    assert hours.open_seconds(moscow(21, 20, 0), moscow(21, 22, 0)) == 3600
    assert hours.open_seconds(moscow(21, 20, 0), moscow(23, 10, 0)) == 2 * 3600  # holiday
    assert hours.open_seconds(moscow(25, 20, 0), moscow(28, 9, 30)) == 3600 + 1800  # weekend
    assert hours.open_seconds(moscow(23, 10, 0), moscow(23, 9, 0)) == 0
