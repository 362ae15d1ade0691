"""One customer on Telegram and VK: linking with a one-time code, one desk topic with both
channels and the earlier history, replies to the network written from last, unlinking."""

from __future__ import annotations

import re

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.links import Links
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import wait_until
from tests.vk_harness import running_vk_bot

DESK = -1001000000078
TG_USER = 5401
VK_USER = 7401
OPERATOR = 9401


def test_only_a_message_that_is_a_code_counts_as_one() -> None:
    assert Links.parse_code(" ab2c-9xyz ") == "AB2C-9XYZ"
    assert Links.parse_code("1234567") is None  # an order number
    assert Links.parse_code("мой код AB2C-9XYZ") is None


async def test_link_relay_to_the_last_network_and_unlink(settings: Settings, brain: Brain) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            bot.vk.add_user(VK_USER, "Ольга", city="Казань")

            def tg_texts() -> list[str]:
                return [m.get("text", "") for m in tg.messages_to(TG_USER)]

            tg.push_update(tg.text_update(TG_USER, "где мой заказ", first_name="Ольга"))
            await wait_until(tg_texts, bool, 5, "the bot's answer in Telegram")
            tg.push_update(tg.text_update(TG_USER, "/link", first_name="Ольга"))
            offer = await wait_until(tg_texts, lambda t: "Код" in t[-1], 5, "the link code")
            code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", offer[-1])
            assert code is not None

            # A wrong code links nothing; the right one, typed in VK, links the two.
            await bot.say(VK_USER, "ZZZZ-ZZZZ")
            await bot.say(VK_USER, code[0].lower())
            texts = await bot.wait_texts(VK_USER, 2)
            assert "не подошёл" in texts[0] and "связаны" in texts[1]
            assert (await bot.runtime.store.load(f"vk:{VK_USER}")).id == f"tg:{TG_USER}"

            # Handed off from VK: one topic, a card naming both networks and the earlier chat.
            await bot.say(VK_USER, "позовите оператора")
            await wait_until(lambda: tg.topics_of(DESK), bool, 5, "the topic")
            (thread,) = tg.topics_of(DESK)
            card = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread) if m.get("reply_markup")],
                bool, 5, "the card")
            assert f"vk.com/id{VK_USER}" in card[0]["text"]
            assert "Telegram" in card[0]["text"]
            history = await bot.runtime.store.transcript(f"tg:{TG_USER}")
            assert any(entry.get("text") == "где мой заказ" for entry in history)  # before
            assert "из: ВКонтакте" in card[0]["text"]

            tg.push_update(tg.group_message_update(DESK, OPERATOR, "Слушаю вас",
                                                   thread_id=thread))
            await wait_until(lambda: [m.text for m in bot.vk.sent_to(VK_USER)],
                             lambda t: "Слушаю вас" in t, 5, "the reply in VK")
            assert "Слушаю вас" not in tg_texts()
            # so did the claim's own notice (a transition's, not a turn's)
            assert any("подключился оператор" in m.text for m in bot.vk.sent_to(VK_USER))
            assert not any("подключился" in text for text in tg_texts())

            # The customer moves to Telegram: the next reply follows them there.
            tg.push_update(tg.text_update(TG_USER, "я теперь тут", first_name="Ольга"))
            await wait_until(lambda: tg.messages_to(DESK, thread),
                             lambda ms: any(m.get("text") == "я теперь тут" for m in ms), 5,
                             "the customer's Telegram message in the same topic")
            tg.push_update(tg.group_message_update(DESK, OPERATOR, "Вижу", thread_id=thread))
            await wait_until(tg_texts, lambda t: "Вижу" in t, 5, "the reply in Telegram")
            assert "Вижу" not in [m.text for m in bot.vk.sent_to(VK_USER)]
            assert len(tg.topics_of(DESK)) == 1

            # Undone from VK: told there, and the VK account is a conversation of its own.
            await bot.say(VK_USER, "/unlink")
            await wait_until(lambda: [m.text for m in bot.vk.sent_to(VK_USER)],
                             lambda t: "отменена" in t[-1], 5, "the unlink answer")
            assert (await bot.runtime.store.load(f"vk:{VK_USER}")).id == f"vk:{VK_USER}"
            home = await bot.runtime.store.load(f"tg:{TG_USER}")
            assert home.linked == "" and home.route == "" and home.state == "assigned"
