"""Seeded hostile input through the two long polls (Telegram getUpdates, VK Long Poll), and a
customer who floods: the pollers keep going, every well-formed customer message is answered,
what is malformed is skipped and stores nothing, and a flood is stored but not answered message
by message (bots/pace.py). The seeds are fixed: a failure reproduces."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import pytest

from bots.pace import PaceConfig
from bots.runtime import Tuning
from bots.settings import Settings
from bots.turns import Brain
from tests.hostile import hostile_text, keyspace, mangle, settled_keyspace
from tests.telegram_harness import running_bot, wait_until
from tests.vk_harness import running_vk_bot

# Updates Telegram's own schema rules out: skipped by the poller, stored nowhere.
BROKEN_UPDATES: list[dict[str, Any]] = [
    {"message": {"message_id": 1, "date": 0, "text": "no chat"}},
    {"message": {"message_id": 1, "date": 0, "text": "x",
                 "chat": {"id": "seven", "type": "private"}}},
    {"message": "not an object"},
    {"callback_query": {"id": "1", "data": "x"}},
    {"edited_message": [1, 2, 3]},
    {"message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"},
                 "from": {"id": 5, "is_bot": False, "first_name": "A"},
                 "text": "x", "entities": [{"type": "bold", "offset": "z", "length": 1}]}},
]


async def test_telegram_polling_survives_hostile_updates(settings: Settings, brain: Brain
                                                         ) -> None:
    rng = random.Random(6122026)
    async with running_bot(settings, brain) as bot:
        await bot.exchange(6000, "привет")  # the poller is running
        before = await settled_keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        for number, update in enumerate(BROKEN_UPDATES):
            update["update_id"] = 50_000 + number
            bot.fake.push_update(update)
        await wait_until(lambda: _offset_past(bot.fake, 50_000 + len(BROKEN_UPDATES) - 1), bool,
                         5.0, "the poller past the broken updates")
        after = await keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        assert after == before  # refused: nothing stored

        customers = []
        for number in range(45):
            chat = 6100 + number
            update = bot.fake.text_update(chat, hostile_text(rng))
            if number % 3 == 2:
                bot.fake.push_update(mangle(rng, update))  # maybe broken, maybe not
            else:
                bot.fake.push_update(update)
                customers.append(chat)
        for chat in customers:
            await wait_until(lambda chat=chat: bot.fake.messages_to(chat), bool, 20,
                             f"an answer to chat {chat}")
        assert await bot.runtime.redis.xlen(bot.runtime.keys.dead_letters()) == 0
        await bot.exchange(6000, "спасибо")  # and the poller is still running


async def test_a_bad_gateway_page_instead_of_json_is_waited_out(
    settings: Settings, brain: Brain, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(settings, brain) as bot:
        await bot.exchange(6050, "привет")
        bot.fake.gateway_error_next("getUpdates", times=2)
        bot.fake.push_update(bot.fake.text_update(6050, "спасибо"))
        await bot.wait_texts(6050, 2, timeout=10)
    assert "getUpdates failed (JSONDecodeError" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no role restart


def _offset_past(fake: Any, update_id: int) -> bool:
    """The bot asked getUpdates for an offset past `update_id`: it has moved past it."""
    return any(int(call.params.get("offset", 0)) > update_id
               for call in fake.calls_of("getUpdates"))


BROKEN_VK_EVENTS: list[dict[str, Any]] = [
    {"type": "message_new", "object": {"message": {"text": "no sender", "peer_id": 5}},
     "group_id": 77},
    {"type": "message_new", "object": {"message": {"from_id": "five", "peer_id": 5,
                                                   "text": "x", "id": 1, "date": 0}},
     "group_id": 77},
    {"type": "message_new", "object": "junk", "group_id": 77},
    {"type": "message_event", "object": {"user_id": 5}, "group_id": 77},
    {"type": "message_new", "object": {"message": {"from_id": 5, "peer_id": 5, "text": "x",
                                                   "id": 1, "date": 0}}, "group_id": 78},
    ["not", "an", "event"],  # type: ignore[list-item]
]


async def test_vk_long_poll_survives_hostile_events(settings: Settings, brain: Brain) -> None:
    rng = random.Random(20266121)
    async with running_vk_bot(settings, brain) as bot:
        await bot.say(6500, "привет")
        await bot.wait_sent(6500, 1)
        before = await settled_keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        for event in BROKEN_VK_EVENTS:
            bot.vk.push(event)
        await bot.say(6500, "спасибо")  # behind the broken ones: the poll moved past them
        await bot.wait_sent(6500, 2)
        after = await keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
        # only the good message's traces (the customers' index: its last-message time)
        assert all("vk:6500" in key or "{in:" in key or ":stats:" in key or ":out:" in key
                   or key == bot.runtime.keys.customers() for key in changed), changed
        assert sum(":seen:" in key for key in changed) == 1, changed

        customers = []
        for number in range(45):
            user = 6600 + number
            event = bot.vk.message_new(user, hostile_text(rng))
            if number % 3 == 2:
                bot.vk.push(mangle(rng, event))
            else:
                bot.vk.push(event)
                customers.append(user)
        for user in customers:
            await bot.wait_sent(user, 1, timeout=20)
        assert await bot.runtime.redis.xlen(bot.runtime.keys.dead_letters()) == 0


async def test_a_flooding_customer_is_stored_not_answered_and_others_are_not_slowed(
    settings: Settings, brain: Brain
) -> None:
    flooder, ordinary = 6801, 6802
    tuning = Tuning(customer_pace=PaceConfig(rate=0.2, burst=10))
    async with running_bot(settings, brain, tuning=tuning) as bot:
        for number in range(60):
            bot.fake.push_update(bot.fake.text_update(flooder, f"до скольки вы работаете {number}"))
        started = time.monotonic()
        await bot.say(ordinary, "где мой заказ")
        await bot.wait_texts(ordinary, 1, timeout=5)
        assert time.monotonic() - started < 3  # not behind the flood's answers
        transcript = await wait_until(
            lambda: bot.runtime.store.transcript(f"tg:{flooder}", 200),
            lambda got: sum(e["dir"] == "in" for e in got) >= 60, 10, "all 60 stored")
        assert [e["text"] for e in transcript if e["dir"] == "in"] == [
            f"до скольки вы работаете {number}" for number in range(60)]  # nothing lost, in order
        out = [e["text"] for e in transcript if e["dir"] == "out"]
        notices = [text for text in out if "пишете очень часто" in text]
        assert len(notices) == 1  # told once, not fifty times, not fifty times
        assert len(out) <= 10 * 2 + 1 + 1  # ten answers (a flow may say two things) + notice
