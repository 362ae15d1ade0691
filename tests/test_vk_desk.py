"""A VK customer in the Telegram operator desk: the card, relay both ways with photos, and
delivery failures reported in the topic. Real vk_api and aiogram against their fakes."""

from __future__ import annotations

import asyncio
from typing import Any

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import wait_until
from tests.vk_harness import VkBot, running_vk_bot

DESK = -1001000000077
USER = 7201
OPERATOR = 9301


async def topic_of_customer(bot: VkBot) -> tuple[int, dict[str, Any]]:
    """Ask for a person from VK; the topic's thread and its card once they are there."""
    assert bot.telegram is not None
    tg = bot.telegram
    await bot.say(USER, "позовите оператора")
    await wait_until(lambda: tg.topics_of(DESK), bool, 5, "the customer's topic")
    (thread,) = tg.topics_of(DESK)
    cards = await wait_until(
        lambda: [m for m in tg.messages_to(DESK, thread) if m.get("reply_markup")],
        bool, 5, "the card")
    return thread, cards[0]


async def in_topic(tg: FakeTelegram, thread: int, predicate: Any, what: str) -> dict[str, Any]:
    found = await wait_until(lambda: [m for m in tg.messages_to(DESK, thread) if predicate(m)],
                             bool, 5, what)
    return dict(found[-1])


async def test_vk_customer_and_telegram_operator_relay_with_a_photo_each_way(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            bot.vk.add_user(USER, "Ольга", "Петрова", city="Казань")
            thread, card = await topic_of_customer(bot)
            assert "ВКонтакте" in card["text"] and f"https://vk.com/id{USER}" in card["text"]
            assert "Казань" in card["text"] and "Ольга Петрова" in card["text"]
            assert "Ольга" in tg.topics_of(DESK)[thread]["name"]

            # The operator answers in the topic (which takes the conversation).
            tg.push_update(tg.group_message_update(DESK, OPERATOR, "Здравствуйте, я Олег",
                                                   thread_id=thread))
            await wait_until(lambda: [m.text for m in bot.vk.sent_to(USER)],
                             lambda texts: "Здравствуйте, я Олег" in texts, 5, "the reply")

            # The customer's photo reaches the topic, fetched from its VK URL.
            url = bot.vk.serve_file("receipt.jpg", b"\xff\xd8 a receipt")
            await bot.say(USER, "вот чек", attachments=[bot.vk.photo(url)])
            photo = await in_topic(tg, thread, lambda m: "photo" in m, "the customer's photo")
            assert photo["caption"] == "вот чек"

            # The operator's photo is downloaded from Telegram and uploaded to VK.
            update = tg.push_update(tg.group_media_update(DESK, OPERATOR, "photo",
                                                          thread_id=thread, caption="смотрите"))
            sent = await wait_until(lambda: [m for m in bot.vk.sent_to(USER) if m.attachment],
                                    bool, 5, "the operator's photo in VK")
            assert sent[0].text == "смотрите" and sent[0].attachment.startswith("photo-77_")
            (upload,) = bot.vk.state.uploads
            assert len(upload.data) == update["message"]["photo"][-1]["file_size"]
            assert upload.attachment == sent[0].attachment


async def test_a_vk_customers_edit_reaches_the_topic_and_the_transcript(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            thread, _card = await topic_of_customer(bot)
            await bot.deliver(bot.vk.message_edit(USER, 4242, "позовите оператора, пожалуйста"))
            await in_topic(tg, thread, lambda m: "✏️ Клиент исправил сообщение: позовите "
                           "оператора, пожалуйста" in m.get("text", ""), "the edit")
            entries = await bot.runtime.store.transcript(f"vk:{USER}", last=50)
            assert {"edit_of": 4242, "text": "позовите оператора, пожалуйста"}.items() <= \
                entries[-1].items()
            # the community's own edits (out: 1) are not a customer's
            own = bot.vk.message_edit(USER, 4243, "наш текст")
            own["object"]["out"] = 1
            await bot.deliver(own)
            await asyncio.sleep(0.3)
            texts = [e["text"] for e in await bot.runtime.store.transcript(f"vk:{USER}", 50)]
            assert "наш текст" not in texts


async def test_901_and_a_customer_who_left_are_reported_in_the_topic(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            bot.vk.add_user(USER, "Ольга")
            thread, _card = await topic_of_customer(bot)
            bot.vk.deny(USER)
            tg.push_update(tg.group_message_update(DESK, OPERATOR, "Вы тут?", thread_id=thread))
            report = await in_topic(tg, thread, lambda m: "Не доставлено" in m.get("text", ""),
                                    "the 901 report")
            assert "901" in report["text"]
            conv = await bot.conversation(USER)
            assert "901" in conv.unreachable

            await bot.deliver(bot.vk.message_deny(USER))  # "user left": denied our messages
            await in_topic(tg, thread, lambda m: "запретил" in m.get("text", ""),
                           "the customer-left note")
