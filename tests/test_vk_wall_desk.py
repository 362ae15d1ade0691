"""VK wall comments in the Telegram desk, end to end (real vk_api and aiogram against their
fakes): a troll's comment becomes a topic with the post and the author, the operator answers
in public, moves the author to private messages, deletes the comment and bans the author —
each through the right token, each journaled with the operator; without VK_ADMIN_TOKEN the
card says the right is missing and the ban button answers so."""

from __future__ import annotations

import time
from typing import Any

from bots.desk.wall import DM_TEXT
from bots.settings import Settings
from bots.turns import Brain
from bots.vk.wall import MISSING_ADMIN
from bots.vk.wall_sender import DM_PUBLIC_REPLY
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import wait_until
from tests.vk_harness import VkBot, running_vk_bot

DESK = -1001000000077
TROLL = 7301
OPERATOR = 9401
POST = 12
CONV = f"vk-wall:-77_{POST}"


def buttons(message: dict[str, Any]) -> dict[str, str]:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in keyboard for b in row}


async def trolled(bot: VkBot, text: str = "вы все жулики, товар — мусор"
                  ) -> tuple[int, int, dict[str, Any]]:
    """A troll's comment on the post; its id, the topic's thread and the card."""
    assert bot.telegram is not None
    tg = bot.telegram
    bot.vk.add_user(TROLL, "Тролль", "Троллев")
    await bot.deliver(bot.vk.wall_reply_new(TROLL, POST, text))
    (comment,) = [c.id for c in bot.vk.comments_on(POST)]
    await wait_until(lambda: tg.topics_of(DESK), bool, 5, "the thread's topic")
    (thread,) = tg.topics_of(DESK)
    cards = await wait_until(
        lambda: [m for m in tg.messages_to(DESK, thread) if "Взять" in buttons(m)],
        bool, 5, "the card")
    return comment, thread, cards[-1]


async def topic_says(tg: FakeTelegram, thread: int, part: str) -> str:
    found = await wait_until(
        lambda: [m["text"] for m in tg.messages_to(DESK, thread) if part in m.get("text", "")],
        bool, 5, f"«{part}» in the topic")
    return str(found[-1])


def say(tg: FakeTelegram, thread: int, text: str) -> None:
    tg.push_update(tg.group_message_update(DESK, OPERATOR, text, thread_id=thread))


def press(tg: FakeTelegram, card: dict[str, Any], title: str) -> None:
    tg.push_update(tg.callback_update(OPERATOR, buttons(card)[title],
                                      message_id=card["message_id"], chat_id=DESK))


async def journal(bot: VkBot, action: str) -> dict[str, str]:
    redis, keys = bot.runtime.redis, bot.runtime.keys

    async def entries() -> list[dict[str, str]]:
        raw = await redis.xrange(keys.journal())
        return [{str(k): str(v) for k, v in fields.items()} for _, fields in raw
                if fields.get("action") == action and fields.get("conv") == CONV]

    found = await wait_until(entries, bool, 5, f"a {action} journal entry")
    return found[-1]


async def test_a_trolls_comment_answered_in_public_then_deleted_and_the_author_banned(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK,
                                  vk_admin_token="vk-admin-user-token") as bot:
            comment, thread, card = await trolled(bot)
            text = card["text"]
            assert f"https://vk.com/wall-77_{POST}" in text
            assert f"https://vk.com/id{TROLL}" in text and "Тролль Троллев" in text
            assert "wall comment" in text and "вы все жулики" in text
            assert MISSING_ADMIN not in text and "В личку" in buttons(card)
            conv = await bot.runtime.store.load(CONV)
            assert conv.state == "queued"
            # the bot said nothing in public, nor in private
            assert not bot.vk.calls_of("wall.createComment") and not bot.vk.state.sent

            # The operator's text in the topic takes the thread and is the public answer.
            say(tg, thread, "Здравствуйте! Напишите номер заказа, разберёмся.")
            answers = await wait_until(lambda: bot.vk.calls_of("wall.createComment"), bool, 5,
                                       "the public answer")
            assert answers[0]["message"] == "Здравствуйте! Напишите номер заказа, разберёмся."
            assert answers[0]["from_group"] == "77" and answers[0]["owner_id"] == "-77"
            assert answers[0]["reply_to_comment"] == str(comment)
            assert answers[0]["access_token"] == bot.vk.token  # the community's token
            reply = await journal(bot, "wall_reply")
            assert reply["actor"] == f"tg:{OPERATOR}" and reply["reason"] == "ok"
            # our answer comes back as an event: not a customer's comment
            (ours,) = [c for c in bot.vk.comments_on(POST) if c.from_id == -77]
            await bot.deliver(bot.vk.wall_reply_new(-77, POST, ours.text))

            # The troll goes on: relayed to the topic; the operator deletes it and bans.
            await bot.deliver(bot.vk.wall_reply_new(TROLL, POST, "мусор и жулики!!!"))
            await topic_says(tg, thread, "мусор и жулики!!!")
            second = max(c.id for c in bot.vk.comments_on(POST))
            say(tg, thread, "/delete")
            await topic_says(tg, thread, f"Комментарий {second} удалён")
            (deleted,) = bot.vk.calls_of("wall.deleteComment")
            assert deleted["access_token"] == bot.vk.admin_token
            assert deleted["comment_id"] == str(second) and bot.vk.wall.comments[second].deleted
            assert (await journal(bot, "wall_delete"))["actor"] == f"tg:{OPERATOR}"

            say(tg, thread, "/ban 30 спам и оскорбления")
            note = await topic_says(tg, thread, "заблокирован в сообществе")
            assert "на 30 дн." in note
            (ban,) = bot.vk.wall.bans
            assert (ban.owner_id, ban.reason, ban.comment) == (TROLL, 1, "спам и оскорбления")
            assert abs(ban.end_date - (time.time() + 30 * 86400)) < 120
            (call,) = bot.vk.calls_of("groups.ban")
            assert call["access_token"] == bot.vk.admin_token
            banned = await journal(bot, "wall_ban")
            assert (banned["actor"], banned["user"], banned["days"]) == (
                f"tg:{OPERATOR}", str(TROLL), "30")
            # only the operator's one answer was ever posted in public
            assert len(bot.vk.calls_of("wall.createComment")) == 1


async def test_without_an_admin_token_the_card_and_the_ban_button_say_the_right_is_missing(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            _comment, thread, card = await trolled(bot)
            assert MISSING_ADMIN in card["text"]
            press(tg, card, "Взять")
            cards = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread)
                         if "Бан автора" in buttons(m) and "Взять" not in buttons(m)],
                bool, 5, "the card of a taken thread")
            press(tg, cards[-1], "Бан автора")
            answers = await wait_until(
                lambda: [c.params for c in tg.calls_of("answerCallbackQuery")
                         if c.params.get("text")], bool, 5, "the ban button's answer")
            assert answers[-1]["text"] == MISSING_ADMIN and answers[-1].get("show_alert")
            say(tg, thread, "/hide")
            await topic_says(tg, thread, "Нет прав администратора")
            assert not bot.vk.calls_of("groups.ban") and not bot.vk.calls_of("wall.deleteComment")


async def test_moving_the_author_to_private_messages_and_a_901(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            comment, thread, card = await trolled(bot, "где мой заказ 1234??")
            press(tg, card, "Взять")
            cards = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread)
                         if "В личку" in buttons(m) and "Взять" not in buttons(m)],
                bool, 5, "the card of a taken thread")
            press(tg, cards[-1], "В личку")  # one tap: the prepared text
            (dm,) = await bot.wait_sent(TROLL, 1)
            assert dm.text == DM_TEXT
            public = await wait_until(lambda: bot.vk.calls_of("wall.createComment"), bool, 5,
                                      "the public note")
            assert public[0]["message"] == DM_PUBLIC_REPLY
            assert public[0]["reply_to_comment"] == str(comment)
            await topic_says(tg, thread, "Написали автору в личные сообщения")
            entry = await journal(bot, "wall_dm")
            assert (entry["actor"], entry["reason"]) == (f"tg:{OPERATOR}", "ok")

            # The author does not accept the community's messages: the topic says 901.
            bot.vk.deny(TROLL)
            say(tg, thread, "/dm Напишите нам, пожалуйста, номер телефона")
            note = await topic_says(tg, thread, "Не удалось написать автору")
            assert "901" in note
            assert len(bot.vk.calls_of("wall.createComment")) == 1  # no second public note
            assert "901" in (await journal(bot, "wall_dm"))["reason"]


async def test_callback_api_comments_edits_and_deletions_reach_the_topic(
    settings: Settings, brain: Brain
) -> None:
    """The Callback API ingress takes wall events too; a comment its author deleted is not the
    one the public answer replies to."""
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK,
                                  mode="callback") as bot:
            first, thread, _card = await trolled(bot, "первый комментарий")
            await bot.deliver(bot.vk.wall_reply_new(TROLL, POST, "второй комментарий"))
            await topic_says(tg, thread, "второй комментарий")
            second = max(c.id for c in bot.vk.comments_on(POST))
            await bot.deliver(bot.vk.wall_reply_edit(first, "первый, исправленный"))
            await topic_says(tg, thread, "первый, исправленный")
            await bot.deliver(bot.vk.wall_reply_delete(second, deleter_id=TROLL))
            await topic_says(tg, thread, "[комментарий удалён]")
            say(tg, thread, "Добрый день!")
            (answer,) = await wait_until(lambda: bot.vk.calls_of("wall.createComment"), bool, 5,
                                         "the public answer")
            assert answer["reply_to_comment"] == str(first)
            # a repeated delivery of an event is dropped by the dedup, as for messages
            event = bot.vk.wall_reply_new(TROLL, POST, "третий")
            await bot.deliver(event)
            await bot.deliver(event)
            await topic_says(tg, thread, "третий")
            entries = await bot.runtime.store.transcript(CONV, last=50)
            assert sum(1 for e in entries if e.get("text") == "третий") == 1
