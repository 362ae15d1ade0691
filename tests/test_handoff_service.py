"""Claim and transfer on a real Redis: each transition, each refusal, journal, notices."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from handoff.clock import FakeClock
from handoff.keys import Keys
from handoff.service import HandoffService
from tests.test_handoff_support import (
    ANN,
    BOB,
    CAT,
    CONV,
    START,
    conversation,
    enqueue,
    journal,
    notice,
    notices,
    queued_and_claimed,
)


async def test_claim_assigns_journals_samples_the_wait_and_tells_the_customer(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online", name="Ann")
    await enqueue(redis, keys, CONV, clock)
    clock.advance(42)
    result = await service.claim(CONV, ANN, notices=[notice("Оператор Ann на связи")])
    assert (result.ok, result.state, result.owner, result.version) == (True, "assigned", ANN, 2)
    conv = await conversation(redis, keys)
    assert (conv["state"], conv["owner"], float(conv["assigned_at"])) == ("assigned", ANN,
                                                                          START + 42)
    assert await redis.zcard(keys.queue()) == 0
    assert await redis.smembers(keys.operator_convs(ANN)) == {CONV}
    assert await redis.zscore(keys.waiting(), CONV) == START + 42  # the reply clock runs
    assert await redis.lrange(keys.wait_samples(), 0, -1) == ["42.0"]  # type: ignore[misc]
    (entry,) = await journal(redis, keys, "claim")
    assert {k: entry[k] for k in ("conv", "from", "to", "actor", "owner", "reason", "version")} \
        == {"conv": CONV, "from": "queued", "to": "assigned", "actor": ANN, "owner": ANN,
            "reason": "manual", "version": "2"}
    assert float(entry["at"]) == START + 42 and entry["waited"] == "42.0"
    assert [n["text"] for n in await notices(redis, keys)] == ["Оператор Ann на связи"]
    assert await service.load(ANN) == 1


async def test_second_claim_is_refused_with_the_owner_and_changes_nothing(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(BOB, "online")
    await queued_and_claimed(service, redis, keys, clock)
    before = await conversation(redis, keys)
    lost = await service.claim(CONV, BOB, notices=[notice("должно не уйти")])
    assert (lost.ok, lost.error, lost.owner, lost.state) == (False, "taken", ANN, "assigned")
    again = await service.claim(CONV, ANN)  # a double tap by the owner
    assert (again.error, again.owner) == ("taken", ANN)
    assert await conversation(redis, keys) == before
    assert await notices(redis, keys) == []
    assert len(await journal(redis, keys, "claim")) == 1
    assert await service.load(BOB) == 0


@pytest.mark.parametrize(
    ("setup", "error"),
    [("offline", "offline"), ("full", "capacity"), ("unknown", "unknown_operator"),
     ("bot", "wrong_state"), ("version", "version")],
)
async def test_claim_refusals(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock,
    setup: str, error: str,
) -> None:
    expected_version = -1
    await enqueue(redis, keys, CONV, clock)
    if setup == "offline":
        await service.set_status(ANN, "offline")
    elif setup == "full":
        await service.set_status(ANN, "online", capacity=1)
        await enqueue(redis, keys, "tg:7", clock)
        assert (await service.claim("tg:7", ANN)).ok
    elif setup == "bot":
        await service.set_status(ANN, "online")
        assert (await service.cancel(CONV)).ok
    elif setup == "version":
        await service.set_status(ANN, "online")
        expected_version = 7
    before = await conversation(redis, keys)
    result = await service.claim(CONV, ANN, notices=[notice("нет")],
                                 expected_version=expected_version)
    assert (result.ok, result.error) == (False, error)
    assert result.version == int(before["version"])
    assert await conversation(redis, keys) == before
    assert [n["text"] for n in await notices(redis, keys)] == []


async def test_paused_operator_claims_by_hand_but_gets_no_auto_assignment(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "paused")
    await enqueue(redis, keys, CONV, clock)
    assert (await service.claim(CONV, ANN, auto=True)).error == "offline"
    assert await service.auto_assign() == []
    assert (await service.claim(CONV, ANN)).ok


async def test_claim_with_the_current_version_succeeds(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(ANN, "online")
    await enqueue(redis, keys, CONV, clock)
    version = int((await conversation(redis, keys))["version"])
    assert (await service.claim(CONV, ANN, expected_version=version)).version == version + 1


async def test_transfer_to_an_operator_moves_ownership_and_load(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(BOB, "paused")  # paused still takes explicit transfers
    await queued_and_claimed(service, redis, keys, clock)
    clock.advance(60)
    result = await service.transfer(CONV, ANN, BOB, reason="billing",
                                    notices=[notice("Передаю коллеге")])
    assert (result.ok, result.state, result.owner) == (True, "assigned", BOB)
    assert (await service.load(ANN), await service.load(BOB)) == (0, 1)
    assert await redis.zscore(keys.waiting(), CONV) == START + 90  # new owner, fresh timer
    (entry,) = await journal(redis, keys, "transfer")
    assert (entry["owner"], entry["to_operator"], entry["actor"], entry["reason"]) == (
        ANN, BOB, ANN, "billing")
    assert [n["text"] for n in await notices(redis, keys)] == ["Передаю коллеге"]


@pytest.mark.parametrize(
    ("by", "to", "status", "error"),
    [(BOB, CAT, "online", "not_owner"), (ANN, CAT, "offline", "offline"),
     (ANN, "tg:9999", "online", "unknown_operator"), (ANN, ANN, "online", "same_operator"),
     (ANN, CAT, "full", "capacity")],
)
async def test_transfer_refusals(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock,
    by: str, to: str, status: str, error: str,
) -> None:
    await service.set_status(BOB, "online")
    await service.set_status(CAT, "online" if status == "full" else status, capacity=1)
    await queued_and_claimed(service, redis, keys, clock)
    if status == "full":
        await enqueue(redis, keys, "tg:7", clock)
        assert (await service.claim("tg:7", CAT)).ok
    before = await conversation(redis, keys)
    result = await service.transfer(CONV, by, to, notices=[notice("нет")])
    assert (result.ok, result.error, result.owner) == (False, error, ANN)
    assert await conversation(redis, keys) == before
    assert await notices(redis, keys) == []
    assert await service.load(ANN) == 1


async def test_forced_transfer_and_transfer_back_to_the_queue_keeps_the_place(
    service: HandoffService, redis: aioredis.Redis, keys: Keys, clock: FakeClock
) -> None:
    await service.set_status(BOB, "online")
    await enqueue(redis, keys, "tg:1", clock, priority="high")
    clock.advance(1)
    await queued_and_claimed(service, redis, keys, clock)  # CONV: normal, queued second
    clock.advance(1)
    await enqueue(redis, keys, "tg:2", clock, priority="high")
    moved = await service.transfer(CONV, "supervisor", BOB, force=True)
    assert (moved.ok, moved.owner) == (True, BOB)
    back = await service.transfer(CONV, BOB, None, reason="needs a specialist")
    assert (back.ok, back.state, back.owner) == (True, "queued", "")
    assert await redis.zrange(keys.queue(), 0, -1) == ["tg:1", "tg:2", CONV]
    await service.transfer("tg:1", "x", None)  # not assigned: refused, the queue unchanged
    conv = await conversation(redis, keys)
    assert "owner" not in conv and "customer_waiting_since" not in conv
    assert float(conv["queued_at"]) == START + 1 and conv["handoff_priority"] == "normal"
    assert await redis.zscore(keys.waiting(), CONV) is None
    assert await service.load(BOB) == 0
    assert [e["to"] for e in await journal(redis, keys, "transfer")] == ["assigned", "queued"]
