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
from bots.vk.wall import MISSING_ADMIN, MISSING_ADMIN_BAN
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
    bot.vk.wall.posts[POST] = "Новая коллекция кружек уже в продаже!"
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
            # the post's text, fetched with the admin's token (the community's cannot)
            assert "📝 Пост: «Новая коллекция кружек уже в продаже!»" in text
            (fetched,) = bot.vk.calls_of("wall.getById")
            assert fetched["access_token"] == bot.vk.admin_token
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
            assert len(bot.vk.calls_of("wall.getById")) == 1  # the post's text, once a day


async def test_without_an_admin_token_the_card_and_the_ban_button_say_the_right_is_missing(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            _comment, thread, card = await trolled(bot)
            assert MISSING_ADMIN in card["text"]
            assert "📝 Пост" not in card["text"]  # wall.getById needs the admin's token
            assert not bot.vk.calls_of("wall.getById")
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


async def test_a_board_topics_comment_answered_and_deleted(
    settings: Settings, brain: Brain
) -> None:
    """A board topic's comments are a thread like a post's (`vk-wall:topic-77_5`): the card
    links the topic; the answer is board.createComment, a user token only in the schema
    (VK_ADMIN_TOKEN, `from_group=1`), and /delete board.deleteComment with the community token."""
    topic_conv = "vk-wall:topic-77_5"
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK,
                                  vk_admin_token="vk-admin-user-token") as bot:
            bot.vk.add_user(TROLL, "Тролль", "Троллев")
            await bot.deliver(bot.vk.board_post_new(TROLL, 5, "когда будет скидка?"))
            (comment,) = [c.id for c in bot.vk.comments_on(5, topic=True)]
            await wait_until(lambda: tg.topics_of(DESK), bool, 5, "the thread's topic")
            (thread,) = tg.topics_of(DESK)
            cards = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread) if "Взять" in buttons(m)],
                bool, 5, "the card")
            assert "https://vk.com/topic-77_5" in cards[-1]["text"]
            assert "когда будет скидка?" in cards[-1]["text"]
            assert MISSING_ADMIN_BAN not in cards[-1]["text"]
            assert (await bot.runtime.store.load(topic_conv)).state == "queued"
            assert not bot.vk.calls_of("board.createComment")

            say(tg, thread, "Скидки — в пятницу, следите за новостями!")
            (answer,) = await wait_until(lambda: bot.vk.calls_of("board.createComment"), bool,
                                         5, "the public answer")
            assert (answer["group_id"], answer["topic_id"], answer["from_group"]) == (
                "77", "5", "1")
            assert answer["message"] == "Скидки — в пятницу, следите за новостями!"
            assert answer["access_token"] == bot.vk.admin_token and answer["guid"]
            (ours,) = [c for c in bot.vk.comments_on(5, topic=True) if c.from_id == -77]
            await bot.deliver(bot.vk.board_post_new(-77, 5, ours.text))  # ours: not a customer

            await bot.deliver(bot.vk.board_post_edit(comment, "когда скидка??? ответьте"))
            await topic_says(tg, thread, "когда скидка??? ответьте")
            say(tg, thread, "/delete")
            await topic_says(tg, thread, f"Комментарий {comment} удалён")
            (deleted,) = bot.vk.calls_of("board.deleteComment")
            assert (deleted["group_id"], deleted["topic_id"], deleted["comment_id"]) == (
                "77", "5", str(comment))
            assert deleted["access_token"] == bot.vk.token  # the community's token
            assert bot.vk.wall.comments[comment].deleted
            raw = await bot.runtime.redis.xrange(bot.runtime.keys.journal())
            actions = {f.get("action"): f for _, f in raw if f.get("conv") == topic_conv}
            assert actions["wall_reply"]["reason"] == "ok"
            assert actions["wall_delete"]["actor"] == f"tg:{OPERATOR}"
            await bot.deliver(bot.vk.board_post_delete(comment, deleter_id=1))
            await topic_says(tg, thread, "[комментарий удалён]")
            assert not bot.vk.calls_of("wall.createComment")


async def test_without_an_admin_token_a_board_answer_is_refused_and_delete_still_works(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            await bot.deliver(bot.vk.board_post_new(TROLL, 5, "спам спам"))
            (comment,) = [c.id for c in bot.vk.comments_on(5, topic=True)]
            await wait_until(lambda: tg.topics_of(DESK), bool, 5, "the thread's topic")
            (thread,) = tg.topics_of(DESK)
            cards = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread) if "Взять" in buttons(m)],
                bool, 5, "the card")
            assert MISSING_ADMIN_BAN in cards[-1]["text"]
            assert MISSING_ADMIN not in cards[-1]["text"]
            say(tg, thread, "Добрый день!")
            note = await topic_says(tg, thread, "Публичный ответ не опубликован")
            assert "VK error 27" in note and not bot.vk.calls_of("board.createComment")
            say(tg, thread, "/delete")
            await topic_says(tg, thread, f"Комментарий {comment} удалён")
            (deleted,) = bot.vk.calls_of("board.deleteComment")
            assert deleted["access_token"] == bot.vk.token


async def test_an_admins_ban_in_vk_is_journaled_and_told_in_the_authors_topic(
    settings: Settings, brain: Brain
) -> None:
    """`user_block` / `user_unblock` (a ban made in VK itself): journaled with its fields, and
    the blocked author's open wall thread gets a line in its topic."""
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, brain, telegram=tg, operator_chat_id=DESK) as bot:
            _comment, thread, _card = await trolled(bot)
            until = int(time.time()) + 7 * 86400
            block = bot.vk.user_block(TROLL, 501, unblock_date=until, reason=1,
                                      comment="спам в комментариях")
            await bot.deliver(block)
            await bot.deliver(block)  # VK delivers again what was not acknowledged in time
            note = await topic_says(tg, thread, "заблокирован администратором")
            assert f"https://vk.com/id{TROLL}" in note and "https://vk.com/id501" in note
            assert "до " in note and "спам в комментариях" in note
            redis, keys = bot.runtime.redis, bot.runtime.keys
            entries = await wait_until(
                lambda: _journaled(redis, keys.journal(), "vk_block"), bool, 5, "vk_block")
            assert {k: entries[-1][k] for k in ("admin_id", "user_id", "unblock_date",
                                                "reason", "comment")} == {
                "admin_id": "501", "user_id": str(TROLL), "unblock_date": str(until),
                "reason": "1", "comment": "спам в комментариях"}
            await bot.deliver(bot.vk.user_unblock(TROLL, 501))
            await topic_says(tg, thread, "разблокирован администратором")
            # someone without a thread in the desk: journaled only
            await bot.deliver(bot.vk.user_block(4242, 501))
            found = await wait_until(lambda: _journaled(redis, keys.journal(), "vk_block"),
                                     lambda e: len(e) == 2, 5, "the second vk_block")
            assert found[-1]["user_id"] == "4242" and found[-1]["unblock_date"] == "0"
            assert len([m for m in tg.messages_to(DESK, thread)
                        if "заблокирован администратором" in m.get("text", "")]) == 1


async def _journaled(redis: Any, key: str, action: str) -> list[dict[str, str]]:
    raw = await redis.xrange(key)
    return [{str(k): str(v) for k, v in f.items()} for _, f in raw if f.get("action") == action]
