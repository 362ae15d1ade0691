"""The VK sender on its own: real vk_api against the fake VK API, real Redis, no bot around it.

Back-off sleeps are recorded instead of slept, so retries cost no wall-clock time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from bots.callbacks import CallbackSigner
from bots.vk.client import VkClient
from bots.vk.outgoing import TEXT_LIMIT, Uploads, split_text
from bots.vk.sender import VkLimits, VkSender
from fakes.vk import FakeVk
from handoff.conversations import ConversationStore, Limits
from handoff.events import CopyOf, OutboundMessage, OutButton
from handoff.keys import Keys
from handoff.outbox import OutboxReader
from handoff.scripts import Scripts
from tests.telegram_harness import wait_until

PEER = 7301
CONV = f"vk:{PEER}"


@dataclass
class Rig:
    vk: FakeVk
    sender: VkSender
    redis: aioredis.Redis
    keys: Keys
    store: ConversationStore
    slept: list[float]

    async def send(self, message: OutboundMessage) -> None:
        await self.redis.xadd(self.keys.outbox("vk", "customer"), {"m": message.to_json()})

    async def journal(self) -> list[dict[str, str]]:
        return [fields for _id, fields in await self.redis.xrange(self.keys.journal())]


@pytest.fixture
async def rig(redis: aioredis.Redis, keys: Keys) -> AsyncIterator[Rig]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with FakeVk() as vk:
        client = VkClient(vk.token, vk.group_id, vk.url)
        scripts = Scripts(redis)
        store = ConversationStore(redis, keys, scripts, Limits())
        sender = VkSender(
            client, OutboxReader(redis, keys, "vk", "test"), store,
            CallbackSigner(b"k" * 32, redis, keys), redis, keys, Uploads(client, None),
            VkLimits(requests_per_second=1000), sleep=sleep)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        try:
            yield Rig(vk, sender, redis, keys, store, slept)
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            client.close()


async def test_a_retry_after_error_6_sends_exactly_one_message(rig: Rig) -> None:
    rig.vk.fail_next("messages.send", 6, times=2)
    await rig.send(OutboundMessage(CONV, text="ваш заказ в пути"))
    (sent,) = await wait_until(lambda: rig.vk.sent_to(PEER), bool, 5, "the message")
    attempts = rig.vk.calls_of("messages.send")
    assert len(attempts) == 3 and {a["random_id"] for a in attempts} == {str(sent.random_id)}
    assert rig.slept == [0.5, 1.0]  # back-off doubles


async def test_a_send_that_did_reach_vk_is_not_delivered_twice(rig: Rig) -> None:
    message = OutboundMessage(CONV, text="один раз")
    await rig.send(message)
    await wait_until(lambda: rig.vk.sent_to(PEER), bool, 5, "the message")
    await rig.send(message)  # e.g. re-read after a crash before the ack
    await wait_until(lambda: rig.vk.calls_of("messages.send"), lambda c: len(c) == 2, 5,
                     "the second attempt")
    assert len(rig.vk.sent_to(PEER)) == 1


async def test_flood_control_waits_longer_then_other_errors_are_journaled(rig: Rig) -> None:
    rig.vk.fail_next("messages.send", 9)
    await rig.send(OutboundMessage(CONV, text="после паузы"))
    await wait_until(lambda: rig.vk.sent_to(PEER), bool, 5, "the message after flood control")
    assert rig.slept == [5.0]

    rig.vk.fail_next("messages.send", 100)
    broken = OutboundMessage(CONV, text="не уйдёт")
    await rig.send(broken)
    await rig.send(OutboundMessage(CONV, text="а это уйдёт"))
    await wait_until(lambda: rig.vk.sent_to(PEER), lambda s: len(s) == 2, 5, "the next message")
    failures = [e for e in await rig.journal() if e["action"] == "delivery_failed"]
    assert [(e["message"], e["reason"][:22]) for e in failures] == [
        (broken.id, "rejected: VK error 100")]


async def test_901_marks_the_customer_unreachable(rig: Rig) -> None:
    rig.vk.deny(PEER)
    await rig.send(OutboundMessage(CONV, text="привет"))
    await wait_until(lambda: rig.store.load(CONV), lambda c: "901" in c.unreachable, 5,
                     "the customer marked unreachable")
    assert rig.vk.sent_to(PEER) == []


async def test_long_texts_are_split_and_the_keyboard_goes_last(rig: Rig) -> None:
    paragraph = "Слово " * 999 + "\n\n"
    text = paragraph * 3  # about 18000 characters
    buttons = ((OutButton("Оператор", payload="intent:request_human"),),)
    await rig.send(OutboundMessage(CONV, text=text, buttons=buttons))
    sent = await wait_until(lambda: rig.vk.sent_to(PEER), lambda s: len(s) >= 2, 5, "2 parts")
    await rig.sender.drain(timeout=5)
    sent = rig.vk.sent_to(PEER)
    assert all(len(part.text) <= TEXT_LIMIT for part in sent)
    assert " ".join(part.text for part in sent).split() == text.split()
    assert [part.keyboard is not None for part in sent] == [False] * (len(sent) - 1) + [True]
    (button,) = sent[-1].keyboard["buttons"][0]  # type: ignore[index]
    assert button["action"]["type"] == "callback"
    assert json.loads(button["action"]["payload"])["b"].startswith("intent:request_human|")


async def test_apps_without_callback_buttons_get_text_buttons(rig: Rig) -> None:
    await rig.redis.sadd(rig.keys.text_buttons("vk"), CONV)
    buttons = ((OutButton("Доставка", payload="flow:delivery_menu"),
                OutButton("Сайт", url="https://example.com")),)
    await rig.send(OutboundMessage(CONV, text="выберите", buttons=buttons))
    (sent,) = await wait_until(lambda: rig.vk.sent_to(PEER), bool, 5, "the message")
    assert sent.keyboard is not None
    assert [b["action"]["type"] for b in sent.keyboard["buttons"][0]] == ["text", "open_link"]


async def test_button_answers_and_edits(rig: Rig) -> None:
    await rig.send(OutboundMessage(CONV, kind="callback_answer", callback_id="ev1", text="Готово"))
    await wait_until(lambda: rig.vk.state.answers, bool, 5, "the event answer")
    (answer,) = rig.vk.state.answers
    assert answer["event_id"] == "ev1" and json.loads(answer["event_data"])["text"] == "Готово"

    await rig.send(OutboundMessage(CONV, kind="copy", text="черновик",
                                   copy=CopyOf(-100, 55)))
    (sent,) = await wait_until(lambda: rig.vk.sent_to(PEER), bool, 5, "the relayed message")
    await rig.send(OutboundMessage(CONV, kind="edit", text="исправлено",
                                   edit_of=55))
    (edit,) = await wait_until(lambda: rig.vk.state.edits, bool, 5, "the edit")
    assert edit["message_id"] == str(sent.id) and edit["message"] == "исправлено"


def test_split_text_cuts_at_words() -> None:
    assert split_text("короткий") == ["короткий"]
    parts = split_text("ab cd ef", limit=5)
    assert parts == ["ab cd", "ef"]
    assert split_text("x" * 12, limit=5) == ["xxxxx", "xxxxx", "xx"]
