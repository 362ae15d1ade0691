"""Automation rules through the running bot and the fake Bot API: message rules committed
with the customer's turn (tags, priority, the desk a conversation goes to, visible on the
conversation and in the desk card), and a timed rule that closes a silent conversation on the
fake clock."""

from __future__ import annotations

import asyncio
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from bots.rules.loader import Known, load_rules
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.clock import FakeClock
from handoff.conversations import utc_day
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_e2e import CUSTOMER, DESK, OPERATOR_A, buttons
from tests.test_desk_timers import clocked_desk, taken_by_olga

CARE = -1001000000002
CONV = f"tg:{CUSTOMER}"


def with_rules(brain: Brain, tmp_path: Path, text: str, desks: dict[str, int] | None = None
               ) -> Brain:
    path = tmp_path / "rules.yml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    known = Known(intents=brain.nlu.known_intents(), templates={"hello": "Здравствуйте!"},
                  desks=desks or {})
    return replace(brain, rules=load_rules(path, known))


async def journal(bot: BotUnderTest, action: str) -> list[dict[str, Any]]:
    entries = await bot.runtime.redis.xrange(bot.runtime.keys.journal())
    return [fields for _id, fields in entries if fields.get("action") == action
            and fields.get("conv") == CONV]


async def counts(bot: BotUnderTest) -> dict[str, str]:
    day = utc_day(bot.runtime.handoff.clock.now())
    found: dict[str, str] = await bot.runtime.redis.hgetall(bot.runtime.keys.rules_day(day))
    return found


def card_text(bot: BotUnderTest, chat: int = DESK) -> str:
    cards = [m for m in bot.fake.messages_to(chat) if "Взять" in buttons(m)]
    return str(cards[-1].get("text", "")) if cards else ""


async def test_message_rules_are_committed_with_the_turn_and_shown_on_the_card(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    ruled = with_rules(brain, tmp_path, f"""
        vip: [{CONV}]
        rules:
          - name: vip_first
            when: {{vip: true}}
            do: {{priority: high, tags: [vip]}}
          - name: complaints
            when: {{keywords: [безобразие]}}
            do: {{priority: urgent, tags: [complaint]}}
        """)
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, ruled, fake=fake, operator_chat_id=DESK) as bot:
            await bot.say(CUSTOMER, "позовите оператора", first_name="Анна")
            conv = await wait_until(lambda: bot.conversation(CUSTOMER),
                                    lambda c: c.state == "queued", 5, "queued")
            assert conv.priority == "high" and "vip" in conv.tags
            card = await wait_until(lambda: card_text(bot), bool, 5, "the card")
            assert "приоритет: высокий" in card and "#vip" in card
            # queued: a rule on the customer's next message changes the waiting handoff
            await bot.say(CUSTOMER, "это безобразие, сколько ждать")
            conv = await wait_until(lambda: bot.conversation(CUSTOMER),
                                    lambda c: c.priority == "urgent", 5, "urgent")
            assert {"vip", "complaint"} <= conv.tags
            await wait_until(lambda: card_text(bot), lambda t: "#complaint" in t, 5,
                             "the card with the new tag")
            queue = await bot.runtime.handoff.queue()
            assert queue[0].conv == CONV and queue[0].priority == "urgent"
            fired = await journal(bot, "rule")
            assert [e["actor"] for e in fired] == [
                "rule:vip_first", "rule:vip_first", "rule:complaints"]
            assert fired[-1]["reason"] == "tags complaint; priority urgent"
            assert await counts(bot) == {"vip_first": "2", "complaints": "1"}


async def test_a_rule_routes_the_conversation_to_a_desk_and_sends_a_template(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    ruled = with_rules(brain, tmp_path, """
        rules:
          - name: humans_to_care
            when: {intent: request_human}
            do: {route: care, template: hello}
        """, desks={"main": DESK, "care": CARE})
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        fake.add_group(CARE, "Забота", is_forum=True)
        async with running_bot(settings, ruled, fake=fake,
                               operator_chat_ids=f"main={DESK}, care={CARE}") as bot:
            await bot.say(CUSTOMER, "позовите оператора", first_name="Анна")
            await wait_until(lambda: card_text(bot, CARE), bool, 5, "the card in care")
            fields = await bot.runtime.redis.hgetall(bot.runtime.keys.conversation(CONV))
            assert fields["desk"] == str(CARE)
            assert not card_text(bot, DESK)
            texts = await wait_until(lambda: bot.texts_to(CUSTOMER),
                                     lambda got: "Здравствуйте!" in got, 5, "the template")
            assert texts


SILENT_RULES = """
    rules:
      - name: close_silent
        when: {silent_minutes: 30}
        do:
          close: {notice: Закрываем обращение — вы не ответили 30 минут.}
    """


async def operator_says(bot: BotUnderTest, thread: int, text: str, told: int) -> int:
    bot.fake.push_update(bot.fake.group_message_update(
        DESK, OPERATOR_A, text, thread_id=thread, first_name="Ольга"))
    await bot.wait_texts(CUSTOMER, told + 1)
    return told + 1


async def test_a_rule_auto_closes_a_silent_conversation(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    clock = FakeClock()
    async with clocked_desk(settings, with_rules(brain, tmp_path, SILENT_RULES), clock) as bot:
        thread, told = await taken_by_olga(bot)
        told = await operator_says(bot, thread, "Ваш заказ уже в пути.", told)
        scheduler = bot.runtime.scheduler()
        clock.advance(20 * 60)
        await scheduler.once()
        assert (await bot.conversation(CUSTOMER)).state == "assigned"
        # the customer writes before the 30 minutes: the silence starts again
        await bot.say(CUSTOMER, "а курьер позвонит?")
        await wait_until(lambda: bot.runtime.redis.hget(bot.runtime.keys.conversation(CONV),
                                                        "customer_waiting_since"),
                         bool, 5, "the customer waiting for a reply")
        clock.advance(40 * 60)  # waiting for the operator is not the customer's silence
        await scheduler.once()
        assert (await bot.conversation(CUSTOMER)).state == "assigned"
        told = await operator_says(bot, thread, "Да, за час до приезда.", told)
        clock.advance(29 * 60)
        await scheduler.once()
        assert (await bot.conversation(CUSTOMER)).state == "assigned"
        assert not await journal(bot, "rule")
        clock.advance(60)
        await scheduler.once()
        await scheduler.once()  # fires once
        assert (await bot.conversation(CUSTOMER)).state == "bot"
        got = await wait_until(lambda: bot.fake.messages_to(CUSTOMER),
                               lambda m: len(m) >= told + 2, 5, "the notice and the rating")
        assert "вы не ответили 30 минут" in got[told]["text"]
        assert set(buttons(got[told + 1])) == {"1", "2", "3", "4", "5"}
        (fired,) = await journal(bot, "rule")
        assert fired["actor"] == "rule:close_silent" and fired["reason"] == "close with a notice"
        (closed,) = await journal(bot, "close")
        assert closed["actor"] == "rule:close_silent"
        assert await counts(bot) == {"close_silent": "1"}
        await wait_until(lambda: [m for m in bot.fake.messages_to(DESK, thread)
                                  if "close_silent" in m.get("text", "")], bool, 5,
                         "the note in the topic")
        await asyncio.sleep(0.1)
        assert len(bot.fake.messages_to(CUSTOMER)) == told + 2


async def test_a_customer_who_wrote_since_the_round_read_it_is_not_closed(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    """The close is refused when the conversation changed after the round read it."""
    clock = FakeClock()
    async with clocked_desk(settings, with_rules(brain, tmp_path, SILENT_RULES), clock) as bot:
        thread, told = await taken_by_olga(bot)
        told = await operator_says(bot, thread, "Ваш заказ уже в пути.", told)
        clock.advance(31 * 60)
        timers = bot.runtime.scheduler().rules
        assert timers is not None
        ruleset = bot.runtime.brain.rules
        rule, version, silent = await timers._due(ruleset, CONV)
        assert rule is not None
        await bot.say(CUSTOMER, "я тут!")
        await wait_until(lambda: bot.conversation(CUSTOMER),
                         lambda c: c.version > version, 5, "the customer's message committed")
        assert not await timers._fire(CONV, rule, version, silent)
        assert (await bot.conversation(CUSTOMER)).state == "assigned"
        assert not await journal(bot, "rule")


async def test_a_message_rule_returns_a_waiting_customer_to_the_bot(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    ruled = with_rules(brain, tmp_path, """
        rules:
          - name: back_to_bot
            when: {keywords: [передумал]}
            do: {return_to_bot: true, tags: [changed_mind]}
        """)
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, ruled, fake=fake, operator_chat_id=DESK) as bot:
            await bot.say(CUSTOMER, "позовите оператора", first_name="Анна")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda c: c.state == "queued", 5, "queued")
            told = len(await bot.wait_texts(CUSTOMER, 1))
            await bot.say(CUSTOMER, "я передумал, сам разберусь")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda c: c.state == "bot", 5, "back with the bot")
            assert not await bot.runtime.handoff.queue()
            await bot.wait_texts(CUSTOMER, told + 1)
            (returned,) = await journal(bot, "return_to_bot")
            assert returned["actor"] == "rule:back_to_bot"
            (fired,) = await journal(bot, "rule")
            assert fired["actor"] == "rule:back_to_bot"
            assert await counts(bot) == {"back_to_bot": "1"}
            # the bot answers the next message again
            await bot.say(CUSTOMER, "где мой заказ")
            answer = await bot.wait_texts(CUSTOMER, told + 2)
            assert "заказ" in answer[-1].lower()


async def test_a_rule_hides_a_wall_comment_with_profanity(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    from tests.test_vk_wall_desk import CONV as WALL_CONV
    from tests.test_vk_wall_desk import DESK as WALL_DESK
    from tests.test_vk_wall_desk import OPERATOR, POST, TROLL, journal, say, topic_says, trolled
    from tests.vk_harness import running_vk_bot

    ruled = with_rules(brain, tmp_path, """
        rules:
          - name: profanity
            when: {channel: vk-wall, keywords: [жулики, мусор]}
            do: {hide_comment: true, tags: [profanity]}
        """)
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(WALL_DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, ruled, telegram=tg, operator_chat_id=WALL_DESK,
                                  vk_admin_token="vk-admin-user-token") as bot:
            comment, thread, _card = await trolled(bot, "вы все жулики")
            await topic_says(tg, thread, f"Комментарий {comment} удалён")
            (deleted,) = bot.vk.calls_of("wall.deleteComment")
            assert deleted["comment_id"] == str(comment)
            assert bot.vk.wall.comments[comment].deleted
            conv = await bot.runtime.store.load(WALL_CONV)
            assert conv.state == "queued" and "profanity" in conv.tags  # operators still see it
            entries = [fields for _id, fields in
                       await bot.runtime.redis.xrange(bot.runtime.keys.journal())
                       if fields.get("conv") == WALL_CONV]
            assert {(e["action"], e["actor"]) for e in entries} >= {
                ("rule", "rule:profanity"), ("wall_delete", "rule:profanity")}
            # a clean comment is left alone
            await bot.deliver(bot.vk.wall_reply_new(7302, POST, "а когда доставка?"))
            await topic_says(tg, thread, "а когда доставка?")
            assert len(bot.vk.calls_of("wall.deleteComment")) == 1
            # and an operator bans the troll the rule caught, for a week: named by their
            # comment, since someone else wrote in the thread after them
            say(tg, thread, "/take")
            say(tg, thread, f"/ban #{comment} 7 оскорбления")
            await topic_says(tg, thread, "заблокирован в сообществе")
            (ban,) = bot.vk.wall.bans
            assert (ban.owner_id, ban.reason) == (TROLL, 2)
            assert (await journal(bot, "wall_ban"))["actor"] == f"tg:{OPERATOR}"


async def test_a_rule_answers_a_wall_comment_in_public_and_the_rest_go_to_the_desk(
        settings: Settings, brain: Brain, tmp_path: Path) -> None:
    """Only a rule that says so answers a comment in public: its template replies to the
    triggering comment as the community (journaled `rule` and `wall_reply` by rule:<name>), and
    the thread does not go to the desk; a comment without the keyword is left to the operators."""
    from tests.test_vk_wall_desk import CONV as WALL_CONV
    from tests.test_vk_wall_desk import DESK as WALL_DESK
    from tests.test_vk_wall_desk import POST, TROLL, topic_says
    from tests.vk_harness import running_vk_bot

    path = tmp_path / "rules.yml"
    path.write_text(textwrap.dedent("""
        rules:
          - name: delivery
            when: {channel: vk-wall, keywords: [доставка]}
            do: {template: delivery}
        """).lstrip(), encoding="utf-8")
    answer = "Доставка — 2–3 дня, подробности в личных сообщениях сообщества."
    known = Known(intents=brain.nlu.known_intents(), templates={"delivery": answer}, desks={})
    ruled = replace(brain, rules=load_rules(path, known))
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(WALL_DESK, "Поддержка", is_forum=True)
        async with running_vk_bot(settings, ruled, telegram=tg,
                                  operator_chat_id=WALL_DESK) as bot:
            bot.vk.add_user(TROLL, "Иван", "Петров")
            await bot.deliver(bot.vk.wall_reply_new(TROLL, POST, "а сколько идёт доставка?"))
            (comment,) = [c.id for c in bot.vk.comments_on(POST)]
            (public,) = await wait_until(lambda: bot.vk.calls_of("wall.createComment"), bool, 5,
                                         "the rule's public answer")
            assert public["message"] == answer and public["reply_to_comment"] == str(comment)
            assert public["from_group"] == "77" and public["access_token"] == bot.vk.token
            redis, keys = bot.runtime.redis, bot.runtime.keys

            async def entries() -> set[tuple[str, str]]:
                raw = await redis.xrange(keys.journal())
                return {(f["action"], f["actor"]) for _id, f in raw
                        if f.get("conv") == WALL_CONV}

            await wait_until(entries, lambda e: ("wall_reply", "rule:delivery") in e, 5,
                             "the wall sender's journal")
            assert ("rule", "rule:delivery") in await entries()
            conv = await bot.runtime.store.load(WALL_CONV)
            assert conv.state == "bot"
            assert not tg.topics_of(WALL_DESK) and not bot.vk.state.sent

            # a comment without the keyword: to the desk, nothing said in public
            await bot.deliver(bot.vk.wall_reply_new(TROLL, POST, "а оплата картой есть?"))
            await wait_until(lambda: tg.topics_of(WALL_DESK), bool, 5, "the thread's topic")
            (thread,) = tg.topics_of(WALL_DESK)
            await topic_says(tg, thread, "а оплата картой есть?")
            assert (await bot.runtime.store.load(WALL_CONV)).state == "queued"
            assert len(bot.vk.calls_of("wall.createComment")) == 1
