"""Ending a handoff (close, return to bot, cancel, ban/unban) and operator replies."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.conversations import ConversationStore, Handoff, Limits
from handoff.keys import Keys
from handoff.scripts import Scripts
from handoff.service import HandoffService
from tests.test_handoff_support import (
    ANN,
    BOB,
    CONV,
    START,
    conversation,
    enqueue,
    journal,
    make_service,
    notice,
    notices,
    queued_and_claimed,
)


async def test_close_resets_to_the_bot_with_history_and_the_rating_prompt(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await queued_and_claimed(service, redis, keys, clock)
    await redis.hset(keys.conversation(CONV), "dialogue", '{"flow": "refund"}')  # type: ignore[misc]
    clock.advance(20)
    assert (await service.reply(CONV, ANN, "Здравствуйте!")).ok
    clock.advance(100)
    result = await service.close(CONV, ANN, "solved", notices=[notice("Оцените нас")])
    assert (result.ok, result.state, result.owner) == (True, "bot", "")
    conv = await conversation(redis, keys)
    for gone in ("owner", "dialogue", "escalated", "reminded", "customer_waiting_since",
                 "queued_at", "assigned_at", "first_response_at"):
        assert gone not in conv
    assert (conv["state"], conv["closed"], conv["handoffs"]) == ("bot", "1", "1")
    assert await service.load(ANN) == 0
    assert await redis.zscore(keys.waiting(), CONV) is None
    (raw,) = await redis.lrange(keys.history(CONV), 0, -1)  # type: ignore[misc]
    history = json.loads(raw)
    assert history["owner"] == ANN and history["outcome"] == "close"
    assert (history["opened"], history["claimed"], history["closed"]) == (
        START, START + 30, START + 150)
    assert history["first_response"] == START + 50 and history["rating"] is None
    assert (history["reason"], history["closed_by"], history["close_reason"]) == (
        "customer_request", ANN, "solved")
    stats = await redis.hgetall(keys.operator_stats(ANN))  # type: ignore[misc]
    assert stats == {"handled": "1", "first_responses": "1", "first_response_seconds": "20"}
    assert [n["text"] for n in await notices(redis, keys)][-1] == "Оцените нас"
    (entry,) = await journal(redis, keys, "close")
    assert (entry["from"], entry["to"], entry["owner"], entry["reason"]) == (
        "assigned", "bot", ANN, "solved")


async def test_close_refusals(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(BOB, "online")
    await queued_and_claimed(service, redis, keys, clock)
    before = await conversation(redis, keys)
    assert (await service.close(CONV, BOB, notices=[notice("x")])).error == "not_owner"
    assert (await service.close(CONV, ANN, expected_version=1)).error == "version"
    assert (await service.return_to_bot(CONV, BOB)).error == "not_owner"
    assert (await service.cancel(CONV)).error == "wrong_state"  # /cancel only while queued
    assert await conversation(redis, keys) == before
    assert await notices(redis, keys) == []
    assert (await service.close(CONV, "supervisor", force=True)).ok
    assert (await service.close(CONV, ANN)).error == "wrong_state"  # already with the bot


async def test_return_to_bot_and_cancel_leave_history_but_count_no_close(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await queued_and_claimed(service, redis, keys, clock)
    assert (await service.return_to_bot(CONV, ANN)).ok
    await enqueue(redis, keys, CONV, clock)
    cancelled = await service.cancel(CONV, notices=[notice("Возвращаю вас к боту")])
    assert (cancelled.ok, cancelled.state) == (True, "bot")
    assert "closed" not in await conversation(redis, keys)
    assert await redis.zcard(keys.queue()) == 0
    outcomes = [json.loads(raw)["outcome"] for raw in
                await redis.lrange(keys.history(CONV), 0, -1)]  # type: ignore[misc]
    assert outcomes == ["return_to_bot", "cancel"]
    assert "handled" not in await redis.hgetall(keys.operator_stats(ANN))  # type: ignore[misc]
    assert [e["actor"] for e in await journal(redis, keys, "cancel")] == ["customer"]


async def test_a_queued_conversation_is_closed_by_anyone(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await enqueue(redis, keys, CONV, clock)
    result = await service.close(CONV, BOB, "spam")
    assert (result.ok, result.state) == (True, "bot")
    assert json.loads(await redis.lindex(keys.history(CONV), -1))["owner"] == ""  # type: ignore[misc,arg-type]


async def test_ban_from_any_state_and_unban(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await queued_and_claimed(service, redis, keys, clock)
    assert (await service.ban(CONV, BOB)).error == "not_owner"
    banned = await service.ban(CONV, ANN, "abuse", notices=[notice("Вы заблокированы")])
    assert (banned.ok, banned.state) == (True, "bot")
    conv = await conversation(redis, keys)
    assert conv["banned"] == "1" and "owner" not in conv
    assert await service.load(ANN) == 0
    assert (await service.ban("tg:5", ANN, "spam")).ok  # never handed off: no history
    assert await redis.llen(keys.history("tg:5")) == 0  # type: ignore[misc]
    assert (await service.unban(CONV, ANN)).ok
    assert "banned" not in await conversation(redis, keys)
    refused = await service.unban(CONV, ANN, notices=[notice("x")])
    assert (refused.error, refused.detail) == ("wrong_state", "not banned")
    assert [e["action"] for e in await journal(redis, keys) if e["action"] != "handoff"] == [
        "claim", "ban", "ban", "unban"]
    assert [n["text"] for n in await notices(redis, keys)] == ["Вы заблокированы"]


async def test_reply_reaches_outbox_and_transcript_and_stops_the_wait(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(BOB, "online")
    await queued_and_claimed(service, redis, keys, clock)
    clock.advance(5)
    first = await service.reply(CONV, ANN, "Добрый день")
    assert first.ok and first.message_id
    clock.advance(5)
    await service.reply(CONV, ANN, "Чем помочь?")
    (sent, _second) = await notices(redis, keys)
    assert (sent["id"], sent["text"], sent["operator"]) == (first.message_id, "Добрый день",
                                                             ANN)
    transcript = [json.loads(e) for e in
                  await redis.lrange(keys.transcript(CONV), 0, -1)]  # type: ignore[misc]
    assert transcript[0] == {"at": START + 35, "dir": "out", "text": "Добрый день",
                             "operator": ANN}
    conv = await conversation(redis, keys)
    assert float(conv["first_response_at"]) == START + 35  # the first reply, not the last
    assert "customer_waiting_since" not in conv
    assert await redis.zscore(keys.waiting(), CONV) is None
    refused = await service.reply(CONV, BOB, "я тоже тут")
    assert (refused.ok, refused.error, refused.message_id) == (False, "not_owner", "")
    assert len(await notices(redis, keys)) == 2
    assert len(await journal(redis, keys, "reply")) == 2
    with pytest.raises(ValueError, match="empty"):
        await service.reply(CONV, ANN, "  ")


async def test_reply_transcript_is_capped(
    redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    service = make_service(redis, keys, clock, transcript_max=3)
    await queued_and_claimed(service, redis, keys, clock)
    for number in range(5):
        await service.reply(CONV, ANN, f"#{number}")
    texts = [json.loads(e)["text"] for e in
             await redis.lrange(keys.transcript(CONV), 0, -1)]  # type: ignore[misc]
    assert texts == ["#2", "#3", "#4"]


async def test_a_conversation_queued_by_the_worker_commit_is_claimed_and_closed(
    service: HandoffService, redis: aioredis.Redis, keys: Keys
) -> None:
    store = ConversationStore(redis, keys, Scripts(redis), Limits())
    result = await store.commit(
        await store.load(CONV), shard_stream=keys.inbound_stream(0), group="", entry="",
        handoff=Handoff(reason="low_confidence", priority="high", tags=("refund",)),
    )
    assert result.state == "queued"
    await service.set_status(ANN, "online")
    claimed = await service.claim(CONV, ANN)
    assert (claimed.ok, claimed.version) == (True, result.version + 1)
    assert (await service.close(CONV, ANN)).ok
    history = json.loads(await redis.lindex(keys.history(CONV), -1))  # type: ignore[misc,arg-type]
    assert (history["reason"], history["priority"], history["tags"]) == (
        "low_confidence", "high", "refund")


async def test_conversation_ids_must_name_their_channel(service: HandoffService) -> None:
    with pytest.raises(ValueError, match="channel:peer"):
        await service.claim("42", ANN)
