"""The Redis side on a real server: ingest dedup, atomic commits, leases, outbox reclaim."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from handoff.conversations import ConversationStore, Handoff, Limits
from handoff.events import InboundEvent, OutboundMessage, Profile
from handoff.ingest import IngestConfig, Ingestor
from handoff.keys import Keys, shard_of
from handoff.lease import Lease
from handoff.outbox import GROUP as SENDERS
from handoff.outbox import OutboxReader
from handoff.scripts import Scripts
from handoff.streams import ensure_group

WORKERS = "workers"


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def scripts(redis: aioredis.Redis) -> Scripts:
    return Scripts(redis)


@pytest.fixture
def store(redis: aioredis.Redis, keys: Keys, scripts: Scripts) -> ConversationStore:
    return ConversationStore(redis, keys, scripts, Limits(transcript_max=5))


def event(conv: str = "tg:42", event_id: str | None = None, text: str = "привет") -> InboundEvent:
    return InboundEvent(
        event_id=event_id or uuid.uuid4().hex, conversation=conv, kind="text",
        profile=Profile(user_id="42", first_name="Иван"), text=text,
    )


async def stored_entry(redis: aioredis.Redis, keys: Keys, ingestor: Ingestor, ev: InboundEvent
                       ) -> tuple[str, str]:
    (entry,) = await ingestor.ingest([ev])
    assert entry is not None
    stream = keys.inbound_stream(shard_of(ev.conversation, ingestor.config.shards))
    await ensure_group(redis, stream, WORKERS)
    await redis.xreadgroup(WORKERS, "w", {stream: ">"})
    return stream, entry


async def test_ingest_drops_a_repeated_platform_event(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts
) -> None:
    ingestor = Ingestor(redis, keys, scripts, IngestConfig(shards=4))
    first = await ingestor.ingest([event(event_id="tg:1:100"), event(event_id="tg:1:101")])
    again = await ingestor.ingest([event(event_id="tg:1:100")])
    assert all(first) and again == [None]
    stream = keys.inbound_stream(shard_of("tg:42", 4))
    assert await redis.xlen(stream) == 2


async def test_ingest_survives_a_redis_that_forgot_its_scripts(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts
) -> None:
    ingestor = Ingestor(redis, keys, scripts, IngestConfig(shards=4))
    assert all(await ingestor.ingest([event(event_id="tg:1:200")]))
    await redis.script_flush()  # as after a restart without persistence
    stored = await ingestor.ingest([event(event_id="tg:1:201"), event(event_id="tg:1:200")])
    assert stored[0] is not None and stored[1] is None  # stored once, the repeat still dropped
    assert await redis.xlen(keys.inbound_stream(shard_of("tg:42", 4))) == 2


async def test_commit_is_atomic_and_idempotent(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts, store: ConversationStore
) -> None:
    ingestor = Ingestor(redis, keys, scripts, IngestConfig(shards=4))
    ev = event()
    stream, entry = await stored_entry(redis, keys, ingestor, ev)
    conv = await store.load("tg:42")
    reply = OutboundMessage(conversation="tg:42", text="Здравствуйте!")
    result = await store.commit(
        conv, shard_stream=stream, group=WORKERS, entry=entry, dialogue={"flow": None},
        profile=ev.profile, transcript=[{"dir": "in", "text": "привет"}], outbox=[reply],
    )
    assert (result.status, result.version, result.state) == ("ok", 1, "bot")
    # The same event committed again (a worker died after the commit, before noticing it).
    again = await store.commit(
        conv, shard_stream=stream, group=WORKERS, entry=entry, outbox=[reply],
    )
    assert again.status == "duplicate"
    assert await redis.xlen(keys.outbox("tg", "customer")) == 1
    assert (await redis.xpending(stream, WORKERS))["pending"] == 0
    loaded = await store.load("tg:42")
    assert loaded.version == 1 and loaded.profile == ev.profile


async def test_commit_refuses_a_stale_version(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts, store: ConversationStore
) -> None:
    ingestor = Ingestor(redis, keys, scripts, IngestConfig(shards=4))
    stream, entry = await stored_entry(redis, keys, ingestor, event())
    stale = await store.load("tg:42")
    await store.mark_unreachable("tg:42", "test")  # someone else changed the conversation
    result = await store.commit(stale, shard_stream=stream, group=WORKERS, entry=entry,
                                outbox=[OutboundMessage(conversation="tg:42", text="x")])
    assert result.status == "conflict"
    assert await redis.xlen(keys.outbox("tg", "customer")) == 0
    assert (await redis.xpending(stream, WORKERS))["pending"] == 1


async def test_handoff_queues_by_priority_and_tells_the_position(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts, store: ConversationStore
) -> None:
    ingestor = Ingestor(redis, keys, scripts, IngestConfig(shards=4))
    positions = {}
    for conv, priority in (("tg:1", "normal"), ("tg:2", "normal"), ("tg:3", "high")):
        stream, entry = await stored_entry(redis, keys, ingestor, event(conv))
        notice = OutboundMessage(conversation=conv, text="Вы {position}-й в очереди")
        result = await store.commit(
            await store.load(conv), shard_stream=stream, group=WORKERS, entry=entry,
            handoff=Handoff(reason="customer_request", priority=priority, notice=notice),
        )
        assert result.state == "queued"
        positions[conv] = result.queue_position
    assert positions == {"tg:1": 1, "tg:2": 2, "tg:3": 1}
    assert await redis.zrange(keys.queue(), 0, -1) == ["tg:3", "tg:1", "tg:2"]
    texts = [json.loads(f["m"])["text"] for _id, f in
             await redis.xrange(keys.outbox("tg", "customer"))]
    assert texts == ["Вы 1-й в очереди", "Вы 2-й в очереди", "Вы 1-й в очереди"]
    journal = await redis.xrange(keys.journal())
    assert [fields["action"] for _id, fields in journal] == ["handoff"] * 3
    assert (await store.load("tg:3")).state == "queued"


async def test_transcript_is_capped_and_older_entries_are_archived(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts, store: ConversationStore
) -> None:
    ingestor = Ingestor(redis, keys, scripts, IngestConfig(shards=4))
    for number in range(8):
        stream, entry = await stored_entry(redis, keys, ingestor, event())
        await store.commit(await store.load("tg:42"), shard_stream=stream, group=WORKERS,
                           entry=entry, transcript=[{"n": number}, {"n": number + 0.5}])
    assert [item["n"] for item in await store.transcript("tg:42")] == [5.5, 6, 6.5, 7, 7.5]
    everything = [item["n"] for item in await store.full_transcript("tg:42")]
    assert everything == [n / 2 for n in range(16)]  # nothing dropped, in order
    assert 0 < await redis.ttl(keys.transcript_archive("tg:42")) <= 400 * 86400


async def test_lease_has_one_holder_and_passes_on_after_expiry(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts
) -> None:
    first = Lease(redis, scripts, keys.lease("x"), ttl=0.3, owner="a")
    second = Lease(redis, scripts, keys.lease("x"), ttl=0.3, owner="b")
    assert await first.try_acquire()
    assert not await second.try_acquire()
    await asyncio.sleep(0.35)  # "a" died without releasing: its lease runs out
    assert await second.try_acquire()
    await second.release()
    assert await first.try_acquire()


async def test_the_next_sender_takes_over_what_a_dead_one_left_and_nothing_twice(
    redis: aioredis.Redis, keys: Keys
) -> None:
    dead = OutboxReader(redis, keys, "tg", "sender-of-an-older-version")
    await dead.start()
    message = OutboundMessage(conversation="tg:7", text="ответ")
    await redis.xadd(keys.outbox("tg", "customer"), {"m": message.to_json()})
    await redis.xadd(keys.outbox("tg", "customer"), {"m": "{not json"})
    taken = await dead.read(block_ms=10)
    assert [item.message.text for item in taken] == ["ответ"]  # the junk entry is acked away
    alive = OutboxReader(redis, keys, "tg")  # the lease holder, under the stable name
    (adopted,) = await alive.take_over()
    assert adopted.message.id == message.id
    assert await alive.take_over() == []  # in flight: not handed out a second time
    second = OutboxReader(redis, keys, "tg")  # the holder restarted: in flight is forgotten
    assert [item.message.id for item in await second.take_over()] == [message.id]
    await second.ack(adopted)
    assert (await redis.xpending(keys.outbox("tg", "customer"), SENDERS))["pending"] == 0
