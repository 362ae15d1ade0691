"""A VK customer ⇄ the bot, end to end: real vk_api against the fake VK API, real Redis."""

from __future__ import annotations

import json

from bots.settings import Settings
from bots.turns import Brain
from tests.vk_harness import running_vk_bot

USER = 7001


async def test_a_vk_customers_full_conversation_with_the_bot(
    settings: Settings, brain: Brain
) -> None:
    async with running_vk_bot(settings, brain) as bot:
        bot.vk.add_user(USER, "Ольга", "Петрова", city="Казань")
        await bot.say(USER, "привет")
        (greeting,) = await bot.wait_texts(USER, 1)
        assert "Ольга" in greeting
        keyboard = bot.vk.sent_to(USER)[0].keyboard
        assert keyboard is not None and keyboard["inline"]
        buttons = [b["action"] for row in keyboard["buttons"] for b in row]
        order = next(b for b in buttons if b["label"] == "Где мой заказ")
        assert order["type"] == "callback"

        # A callback button: the press is answered, its flow asks for the order number.
        await bot.deliver(bot.vk.message_event(USER, json.loads(order["payload"])))
        texts = await bot.wait_texts(USER, 2)
        assert "номер заказа" in texts[1]
        assert len(bot.vk.state.answers) == 1

        await bot.say(USER, "1234567")
        texts = await bot.wait_texts(USER, 3)
        assert "Заказ №1234567" in texts[2]
        conv = await bot.conversation(USER)
        assert conv.state == "bot" and conv.dialogue["slots"]["order_number"] == "1234567"
        assert conv.profile.city == "Казань" and conv.profile.last_name == "Петрова"
        # users.get ran once, on first contact; every send had its own random_id
        assert len(bot.vk.calls_of("users.get")) == 1
        random_ids = [m.random_id for m in bot.vk.sent_to(USER)]
        assert len(set(random_ids)) == len(random_ids)
