"""Customer ⇄ operator through the Telegram desk: topics, cards, Take, relay both ways, close.

Real aiogram, real Redis, the fake Bot API enforcing Telegram's per-chat and per-group limits.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until

DESK = -1001000000001
CUSTOMER = 6001
OPERATOR_A = 9101
OPERATOR_B = 9102


def buttons(message: dict[str, Any]) -> dict[str, str]:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in keyboard for b in row}


async def handed_off(bot: BotUnderTest) -> tuple[int, dict[str, Any]]:
    """Ask for a person; return the topic's thread id and its card once it arrived."""
    await bot.say(CUSTOMER, "позовите оператора", first_name="Анна", username="anna")
    await wait_until(lambda: bot.fake.topics_of(DESK), bool, 5, "the customer's topic")
    (thread,) = bot.fake.topics_of(DESK)
    cards = await wait_until(
        lambda: [m for m in bot.fake.messages_to(DESK, thread) if "Взять" in buttons(m)],
        bool, 5, "the card",
    )
    return thread, cards[0]


async def press(bot: BotUnderTest, operator: int, card: dict[str, Any], title: str,
                name: str = "Оператор") -> dict[str, Any]:
    return bot.fake.push_update(bot.fake.callback_update(
        operator, buttons(card)[title], message_id=card["message_id"], chat_id=DESK,
        first_name=name,
    ))


def desk_bot(settings: Settings, brain: Brain, fake: FakeTelegram) -> Any:
    return running_bot(settings, brain, fake=fake, operator_chat_id=DESK)


async def test_full_conversation_with_an_operator(settings: Settings, brain: Brain) -> None:
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, card = await handed_off(bot)
            topic = bot.fake.topics_of(DESK)[thread]
            assert "Анна" in topic["name"] and "@anna" in topic["name"] and "tg" in topic["name"]
            assert "позовите оператора" in card["text"] and "customer_request" in card["text"]
            notice = await wait_until(lambda: bot.texts_to(CUSTOMER),
                                      lambda got: any("в очереди" in t for t in got), 5,
                                      "the queue notice")
            assert "1-й в очереди" in notice[-1]
            told = len(notice)

            await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            joined = await bot.wait_texts(CUSTOMER, told + 1)
            assert "Ольга" in joined[-1]
            await wait_until(lambda: bot.fake.messages_to(DESK, thread)[0].get("text", ""),
                             lambda text: "ведёт Ольга" in text, 5, "the card showing the owner")

            # operator -> customer, text and a photo
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "Здравствуйте! Чем помочь?", thread_id=thread,
                first_name="Ольга"))
            bot.fake.push_update(bot.fake.group_media_update(
                DESK, OPERATOR_A, "photo", thread_id=thread, caption="Вот схема"))
            got = await wait_until(lambda: bot.fake.messages_to(CUSTOMER),
                                   lambda m: len(m) >= told + 3, 5,
                                   "the operator's messages at the customer")
            assert got[told + 1]["text"] == "Здравствуйте! Чем помочь?"
            assert "photo" in got[told + 2] and got[told + 2].get("caption") == "Вот схема"

            # an internal note never reaches the customer
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "// клиент VIP", thread_id=thread))

            # customer -> topic, text and a photo; the bot stays silent while assigned
            before = len(bot.fake.messages_to(DESK, thread))
            await bot.say(CUSTOMER, "где мой заказ")
            bot.fake.push_update(bot.fake.media_update(CUSTOMER, "photo", caption="чек"))
            in_topic = await wait_until(lambda: bot.fake.messages_to(DESK, thread),
                                        lambda m: len(m) >= before + 2, 5, "copies in the topic")
            assert in_topic[before]["text"] == "где мой заказ" and "photo" in in_topic[before + 1]
            await asyncio.sleep(0.2)
            assert len(bot.fake.messages_to(CUSTOMER)) == told + 3  # no bot answer, no note

            # close: the customer gets the rating keyboard and rates
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "/close решено", thread_id=thread))
            rating = await wait_until(lambda: bot.fake.messages_to(CUSTOMER),
                                      lambda m: len(m) >= told + 4, 5, "the rating request")
            assert set(buttons(rating[-1])) == {"1", "2", "3", "4", "5"}
            bot.fake.push_update(bot.fake.callback_update(
                CUSTOMER, buttons(rating[-1])["5"], message_id=rating[-1]["message_id"]))
            await wait_until(lambda: bot.runtime.redis.hgetall(
                bot.runtime.keys.ratings(f"tg:{OPERATOR_A}")), lambda r: r.get("5") == "1", 5,
                "the stored rating")
            conv = await bot.conversation(CUSTOMER)
            assert conv.state == "bot"
            (thanks,) = await bot.exchange(CUSTOMER, "Ольга всё быстро решила")  # the comment
            assert "Спасибо" in thanks
            history = await bot.runtime.redis.lrange(
                bot.runtime.keys.history(f"tg:{CUSTOMER}"), -1, -1)
            assert json.loads(history[0])["comment"] == "Ольга всё быстро решила"
            (reply,) = await bot.exchange(CUSTOMER, "спасибо")  # the bot is back
            assert reply
        assert fake.limit_violations == []


async def test_two_operators_tap_take_at_once(settings: Settings, brain: Brain) -> None:
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            _thread, card = await handed_off(bot)
            first = await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            second = await press(bot, OPERATOR_B, card, "Взять", name="Пётр")
            answers = await bot.fake.wait_for("answerCallbackQuery", count=2)
            by_query = {call.params["callback_query_id"]: call.params for call in answers}
            loser = by_query[second["callback_query"]["id"]]
            assert "уже ведёт Ольга" in loser.get("text", "")
            assert not by_query[first["callback_query"]["id"]].get("text")
            conv = await bot.conversation(CUSTOMER)
            assert conv.state == "assigned" and conv.owner == f"tg:{OPERATOR_A}"


async def test_a_deleted_topic_is_recreated(settings: Settings, brain: Brain) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, _card = await handed_off(bot)
            await fake.execute("deleteForumTopic", {"chat_id": DESK, "message_thread_id": thread})
            await bot.say(CUSTOMER, "ау, есть кто?")
            topics = await wait_until(lambda: bot.fake.topics_of(DESK),
                                      lambda t: any(k != thread for k in t), 5, "a new topic")
            new_thread = next(k for k in topics if k != thread)
            texts = await wait_until(
                lambda: [m.get("text", "") for m in bot.fake.messages_to(DESK, new_thread)],
                lambda got: "ау, есть кто?" in got, 5, "the message in the new topic")
            assert texts


async def test_blocked_customer_is_reported_in_the_topic(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, card = await handed_off(bot)
            told = len(await bot.wait_texts(CUSTOMER, 1))
            await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            await bot.wait_texts(CUSTOMER, told + 1)
            fake.block_user(CUSTOMER)
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "Вы здесь?", thread_id=thread))
            reports = await wait_until(
                lambda: [m.get("text", "") for m in bot.fake.messages_to(DESK, thread)],
                lambda got: any("Не доставлено" in t for t in got), 5, "the delivery report")
            assert any("blocked" in t for t in reports)


async def test_non_forum_desk_falls_back_to_reply_threads(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=False)
        async with desk_bot(settings, brain, fake) as bot:
            await bot.say(CUSTOMER, "позовите оператора", first_name="Анна")
            card = (await wait_until(
                lambda: [m for m in bot.fake.messages_to(DESK) if "Взять" in buttons(m)],
                bool, 5, "the card in the chat"))[0]
            told = len(await bot.wait_texts(CUSTOMER, 1))
            await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            await bot.wait_texts(CUSTOMER, told + 1)
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "Отвечаю в ответе на карточку", first_name="Ольга",
                reply_to_message_id=card["message_id"]))
            got = await bot.wait_texts(CUSTOMER, told + 2)
            assert got[-1] == "Отвечаю в ответе на карточку"


async def test_a_customers_album_lands_in_the_topic_as_one_album(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, _card = await handed_off(bot)
            before = len(fake.messages_to(DESK, thread))
            for caption in ("коробка", None, None):
                fake.push_update(fake.media_update(CUSTOMER, "photo", caption=caption,
                                                   media_group_id="album-1"))
            copies = await wait_until(lambda: fake.messages_to(DESK, thread),
                                      lambda got: len(got) >= before + 3, 5, "the album")
            assert all("photo" in m for m in copies[before:before + 3])
            assert len(fake.calls_of("copyMessages")) == 1
            assert not [c for c in fake.calls_of("copyMessage") if c.params["chat_id"] == DESK]


async def test_an_operators_album_reaches_the_customer_as_one_album(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, card = await handed_off(bot)
            await press(bot, OPERATOR_A, card, "Взять")
            await wait_until(lambda: bot.conversation(CUSTOMER), lambda c: c.state == "assigned",
                             5, "the claim")
            for caption in ("чек", None, None):
                fake.push_update(fake.group_media_update(
                    DESK, OPERATOR_A, "photo", thread_id=thread, caption=caption,
                    media_group_id="op-album"))
            album = await wait_until(
                lambda: [m for m in fake.messages_to(CUSTOMER) if "photo" in m],
                lambda found: len(found) >= 3, 5, "the album")
            assert len(album) == 3 and album[0].get("caption") == "чек"
            assert len({m.get("media_group_id") for m in album} - {None}) == 1
            to_customer = [c for c in fake.calls_of("copyMessages")
                           if c.params["chat_id"] == CUSTOMER]
            assert len(to_customer) == 1
            assert not [c for c in fake.calls_of("copyMessage") if c.params["chat_id"] == CUSTOMER]


async def test_a_second_handoff_posts_a_new_card_in_the_same_topic(
        settings: Settings, brain: Brain) -> None:
    """Operators are notified of a new post, not of an edit: a customer who comes back after a
    closed conversation gets a new card (with Take), not the old card edited far up."""
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, card = await handed_off(bot)
            await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            await wait_until(lambda: bot.fake.messages_to(DESK, thread)[0].get("text", ""),
                             lambda text: "ведёт Ольга" in text, 5, "the card showing the owner")
            bot.fake.push_update(bot.fake.group_message_update(
                DESK, OPERATOR_A, "/close", thread_id=thread))
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.state == "bot", 5, "the close")
            first_card = bot.fake.messages_to(DESK, thread)[0]

            await bot.say(CUSTOMER, "позовите оператора снова")
            cards = await wait_until(
                lambda: [m for m in bot.fake.messages_to(DESK, thread) if "Взять" in buttons(m)],
                lambda found: any(m["message_id"] != first_card["message_id"] for m in found),
                5, "a new card in the topic")
            assert bot.fake.topics_of(DESK).keys() == {thread}  # the same topic, reopened
            new = cards[-1]
            assert "позовите оператора снова" in new["text"]
            old = bot.fake.messages_to(DESK, thread)[0]
            assert "Взять" not in buttons(old)  # nothing left to take on the old card


async def test_a_handoff_cancelled_before_its_card_went_out_leaves_no_trace_in_the_desk(
        settings: Settings, brain: Brain) -> None:
    """Under the group's limit a card can wait minutes; when the customer cancels meanwhile,
    the desk must not spend its budget on a topic and a card for a closed conversation."""
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        no_sender = frozenset({"ingress", "worker"})
        async with running_bot(settings, brain, fake=fake, roles=no_sender,
                               operator_chat_id=DESK) as bot:
            await bot.say(CUSTOMER, "позовите оператора")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.state == "queued", 5, "the handoff")
            await bot.say(CUSTOMER, "/cancel")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.state == "bot", 5, "the cancel")
        async with running_bot(settings, brain, fake=fake, roles=frozenset({"sender"}),
                               operator_chat_id=DESK) as bot:
            # the customer still hears both answers, in order
            texts = await wait_until(lambda: [m.get("text", "") for m in
                                              bot.fake.messages_to(CUSTOMER)],
                                     lambda got: len(got) >= 2, 5, "the customer's answers")
            assert "в очереди" in texts[0]
            await asyncio.sleep(0.5)  # the sender had its chance at the desk items
            assert fake.calls_of("createForumTopic") == []
            assert [m for m in bot.fake.messages_to(DESK) if "Взять" in buttons(m)] == []


async def test_a_refused_button_press_changes_nothing_and_registers_no_one(
    settings: Settings, brain: Brain
) -> None:
    """Forged or foreign callback data in the desk: answered "no longer works", and the
    presser does not become an operator (before, any press created an operator record)."""
    stranger = 6660666
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            _thread, card = await handed_off(bot)
            forged = {**card, "reply_markup": {"inline_keyboard": [[
                {"text": "Взять", "callback_data": "take:tg:1|forged-signature"}]]}}
            await press(bot, stranger, forged, "Взять", name="Чужой")
            (answer,) = await bot.fake.wait_for("answerCallbackQuery")
            assert "больше не работает" in str(answer.params.get("text", ""))
            assert await bot.runtime.handoff.operator(f"tg:{stranger}") is None
            assert (await bot.conversation(CUSTOMER)).state == "queued"
