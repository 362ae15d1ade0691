"""The delivery core's contract, run against every channel adapter (Telegram, VK) over its fake
platform with real clients: order per peer, retries of what is transient, a journal entry for
what is refused, the peer marked unreachable, and one sender per token under its lease (a
standby takes over at once when the holder goes, and nothing is delivered twice)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from bots.callbacks import CallbackSigner
from bots.delivery.lanes import LaneSender
from bots.delivery.policy import RetryPolicy
from bots.telegram.sender import SendLimits, TelegramSender
from bots.telegram.session import telegram_bot
from bots.vk.client import VkClient
from bots.vk.outgoing import Uploads
from bots.vk.sender import VkLimits, VkSender
from fakes.telegram import FakeTelegram
from fakes.vk import FakeVk
from handoff.conversations import ConversationStore, Limits
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.lease import Lease
from handoff.outbox import OutboxReader
from handoff.scripts import Scripts
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import wait_until

PEER = 7401
FAST = RetryPolicy(backoff_base=0.01)


@dataclass
class Channel:
    """One adapter over its fake: how to fail it and what the peer received."""

    name: str
    conv: str
    new_sender: Callable[[Lease | None], LaneSender]
    received: Callable[[], list[str]]
    fail_transient: Callable[[int], None]
    fail_permanent: Callable[[], None]
    block: Callable[[], None]
    redis: aioredis.Redis
    keys: Keys
    store: ConversationStore

    async def send(self, text: str) -> OutboundMessage:
        message = OutboundMessage(self.conv, text=text)
        channel = "tg" if self.name == "telegram" else "vk"
        await self.redis.xadd(self.keys.outbox(channel, "customer"), {"m": message.to_json()})
        return message

    def lease(self, owner: str) -> Lease:
        return Lease(self.redis, Scripts(self.redis), self.keys.lease(f"sender:{self.name}"),
                     ttl=3.0, owner=owner)


@contextlib.asynccontextmanager
async def telegram(redis: aioredis.Redis, keys: Keys) -> AsyncIterator[Channel]:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        bot = telegram_bot(FAKE_TOKEN, fake.url)
        store = ConversationStore(redis, keys, Scripts(redis), Limits())
        signer = CallbackSigner(b"k" * 32, redis, keys)
        try:
            yield Channel(
                "telegram", f"tg:{PEER}",
                lambda lease: TelegramSender(bot, OutboxReader(redis, keys, "tg"), store, signer,
                                             SendLimits(overall_rate=1000, per_chat_rate=1000,
                                                        retry=FAST), lease=lease),
                lambda: [m.get("text", "") for m in fake.messages_to(PEER)],
                lambda times: fake.fail_next("sendMessage", error_code=502,
                                             description="Bad Gateway", times=times),
                lambda: fake.fail_next("sendMessage", error_code=400,
                                       description="Bad Request: message text is empty"),
                lambda: fake.block_user(PEER), redis, keys, store)
        finally:
            await bot.session.close()


@contextlib.asynccontextmanager
async def vk(redis: aioredis.Redis, keys: Keys) -> AsyncIterator[Channel]:
    async with FakeVk() as fake:
        client = VkClient(fake.token, fake.group_id, fake.url)
        store = ConversationStore(redis, keys, Scripts(redis), Limits())
        signer = CallbackSigner(b"k" * 32, redis, keys)

        async def no_sleep(_seconds: float) -> None:
            await asyncio.sleep(0)

        try:
            yield Channel(
                "vk", f"vk:{PEER}",
                lambda lease: VkSender(client, OutboxReader(redis, keys, "vk"), store, signer,
                                       redis, keys, Uploads(client, None),
                                       VkLimits(requests_per_second=1000, retry=FAST),
                                       lease=lease, sleep=no_sleep),
                lambda: [sent.text for sent in fake.sent_to(PEER)],
                lambda times: fake.fail_next("messages.send", 10, times=times),
                lambda: fake.fail_next("messages.send", 100),
                lambda: fake.deny(PEER), redis, keys, store)
        finally:
            client.close()


CHANNELS: dict[str, Callable[[aioredis.Redis, Keys], contextlib.AbstractAsyncContextManager[
    Channel]]] = {"telegram": telegram, "vk": vk}


@pytest.fixture(params=sorted(CHANNELS))
async def channel(request: pytest.FixtureRequest, redis: aioredis.Redis,
                  keys: Keys) -> AsyncIterator[Channel]:
    async with CHANNELS[request.param](redis, keys) as made:
        yield made


@contextlib.asynccontextmanager
async def running(sender: LaneSender) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The sender's run loop; yields a function that stops it."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))

    async def halt() -> None:
        stop.set()
        await asyncio.wait_for(task, 10)

    try:
        yield halt
    finally:
        if not task.done():
            await halt()


async def journal(channel: Channel) -> list[dict[str, str]]:
    return [fields for _id, fields in await channel.redis.xrange(channel.keys.journal())]


async def test_messages_to_one_peer_keep_their_order(channel: Channel) -> None:
    async with running(channel.new_sender(None)):
        for number in range(8):
            await channel.send(f"сообщение {number}")
        got = await wait_until(channel.received, lambda got: len(got) == 8, 10, "8 messages")
    assert got == [f"сообщение {number}" for number in range(8)]


async def test_transient_failures_are_retried_and_delivered_once(channel: Channel) -> None:
    channel.fail_transient(2)
    async with running(channel.new_sender(None)):
        await channel.send("после сбоя")
        await wait_until(channel.received, bool, 10, "the message")
        await asyncio.sleep(0.2)
    assert channel.received() == ["после сбоя"]


async def test_a_refused_message_is_journaled_and_the_next_one_goes(channel: Channel) -> None:
    channel.fail_permanent()
    async with running(channel.new_sender(None)):
        refused = await channel.send("не уйдёт")
        await channel.send("а это уйдёт")
        await wait_until(channel.received, bool, 10, "the next message")
    failures = [e for e in await journal(channel) if e["action"] == "delivery_failed"]
    assert [(e["message"], e["reason"].startswith("rejected: ")) for e in failures] == [
        (refused.id, True)]
    assert channel.received() == ["а это уйдёт"]


async def test_a_peer_that_blocked_us_is_marked_unreachable(channel: Channel) -> None:
    channel.block()
    async with running(channel.new_sender(None)):
        await channel.send("привет")
        conv = await wait_until(lambda: channel.store.load(channel.conv),
                                lambda conv: bool(conv.unreachable), 10, "marked unreachable")
    assert conv.unreachable and channel.received() == []


async def test_one_sender_per_token_and_a_standby_takes_over_at_once(channel: Channel) -> None:
    first, standby = channel.new_sender(channel.lease("a")), channel.new_sender(channel.lease("b"))
    lease_key = channel.keys.lease(f"sender:{channel.name}")
    async with running(first) as stop_first:
        await wait_until(lambda: channel.redis.get(lease_key), lambda got: got == "a", 5,
                         "the first sender's lease")
        async with running(standby):
            for number in range(5):
                await channel.send(f"первый {number}")
            await wait_until(channel.received, lambda got: len(got) == 5, 10, "5 messages")
            await asyncio.sleep(0.5)
            assert await channel.redis.get(lease_key) == "a"  # the standby only waits
            await stop_first()
            for number in range(5):
                await channel.send(f"второй {number}")
            await wait_until(channel.received, lambda got: len(got) == 10, 5, "the standby's 5")
            assert await channel.redis.get(lease_key) == "b"
            await asyncio.sleep(0.2)
    assert channel.received() == [f"первый {n}" for n in range(5)] + \
        [f"второй {n}" for n in range(5)]


async def test_a_sender_that_stalled_past_its_lease_sends_nothing_more(channel: Channel
                                                                       ) -> None:
    """Fencing: a holder frozen longer than its renewals (a GC pause, a starved CPU) wakes up
    to find another process took the lease; what it had queued is the new holder's to send."""
    lease = channel.lease("a")
    async with running(channel.new_sender(lease)):
        await channel.send("до паузы")
        await wait_until(channel.received, bool, 10, "the first message")
        assert lease._heartbeat is not None
        lease._heartbeat.cancel()  # frozen: no renewals ...
        lease._renewed -= lease.ttl  # ... for longer than the lease lasts
        await channel.redis.set(channel.keys.lease(f"sender:{channel.name}"), "b")
        await channel.send("после паузы")
        await wait_until(lambda: lease.lost.is_set(), bool, 5, "the lease found lost")
        await asyncio.sleep(0.3)
    assert channel.received() == ["до паузы"]
    pending = await channel.redis.xpending(
        channel.keys.outbox("tg" if channel.name == "telegram" else "vk", "customer"), "senders")
    assert pending["pending"] == 1  # left for the holder that took over
