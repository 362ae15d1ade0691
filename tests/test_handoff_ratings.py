"""Ratings after close: per conversation and operator, replaced on re-rate, comments later."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.keys import Keys
from handoff.service import HandoffService
from tests.test_handoff_support import enqueue, journal

ANN, BOB = "tg:1001", "tg:1002"


async def handled(service: HandoffService, redis: aioredis.Redis, keys: Keys,
                  clock: FakeClock, conv: str, op: str, reply_after: float = 0) -> None:
    await service.set_status(op, "online")
    await enqueue(redis, keys, conv, clock)
    assert (await service.claim(conv, op)).ok
    if reply_after:
        clock.advance(reply_after)
        assert (await service.reply(conv, op, "Здравствуйте")).ok
    assert (await service.close(conv, op)).ok


async def last_history(redis: aioredis.Redis, keys: Keys, conv: str) -> dict[str, object]:
    return json.loads(await redis.lindex(keys.history(conv), -1))  # type: ignore[no-any-return,misc,arg-type]


async def test_rating_is_stored_on_the_handoff_and_the_operator(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await handled(service, redis, keys, clock, "tg:1", ANN, reply_after=30)
    result = await service.rate("tg:1", 4)
    assert (result.ok, result.owner) == (True, ANN)
    assert (await last_history(redis, keys, "tg:1"))["rating"] == 4
    assert await redis.hgetall(keys.ratings(ANN)) == {  # type: ignore[misc]
        "count": "1", "sum": "4", "4": "1"}
    again = await service.rate("tg:1", 2)  # changed their mind: replaces, not adds
    assert again.ok
    assert await redis.hgetall(keys.ratings(ANN)) == {  # type: ignore[misc]
        "count": "1", "sum": "2", "4": "0", "2": "1"}
    assert (await service.comment("tg:1", "  долго ждал  ")).ok
    entry = await last_history(redis, keys, "tg:1")
    assert (entry["rating"], entry["comment"], entry["owner"]) == (2, "долго ждал", ANN)
    ratings = await journal(redis, keys, "rating")
    assert [(e["score"], e["comment"], e["owner"]) for e in ratings] == [
        ("4", "", ANN), ("2", "", ANN), ("", "долго ждал", ANN)]

    await handled(service, redis, keys, clock, "tg:2", ANN, reply_after=10)
    await service.rate("tg:2", 5, "спасибо!")
    stats = await service.operator_stats(ANN)
    assert (stats.handled, stats.ratings, stats.average_rating) == (2, 2, 3.5)
    assert stats.distribution == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1}
    assert (stats.first_responses, stats.average_first_response_seconds) == (2, 20.0)
    empty = await service.operator_stats(BOB)
    assert (empty.handled, empty.average_rating, empty.average_first_response_seconds) == (
        0, None, None)


async def test_the_rating_belongs_to_the_closed_handoff_even_during_a_new_one(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await handled(service, redis, keys, clock, "tg:1", ANN)
    await service.set_status(BOB, "online")
    await enqueue(redis, keys, "tg:1", clock)
    assert (await service.claim("tg:1", BOB)).ok
    assert (await service.rate("tg:1", 5)).owner == ANN
    assert await redis.hget(keys.ratings(ANN), "5") == "1"  # type: ignore[misc]
    assert await redis.exists(keys.ratings(BOB)) == 0


async def test_nothing_to_rate(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    assert (await service.rate("tg:1", 5)).error == "wrong_state"  # never handed off
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, "tg:1", clock)
    assert (await service.claim("tg:1", ANN)).ok
    assert (await service.return_to_bot("tg:1", ANN)).ok
    refused = await service.rate("tg:1", 5)  # back to the bot is not a close
    assert (refused.ok, refused.error, refused.detail) == (False, "wrong_state", "nothing to rate")
    await enqueue(redis, keys, "tg:2", clock)
    assert (await service.close("tg:2", ANN, "spam")).ok  # closed from the queue: no operator
    assert (await service.rate("tg:2", 1)).error == "wrong_state"
    assert await redis.exists(keys.ratings(ANN)) == 0
    assert await journal(redis, keys, "rating") == []
    with pytest.raises(ValueError, match=r"1\.\.5"):
        await service.rate("tg:1", 6)
    with pytest.raises(ValueError, match="empty"):
        await service.comment("tg:1", " ")
