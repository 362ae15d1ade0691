"""The desk's clockwork on a fake clock: SLA escalation and reminders, queue-position updates,
off-hours answers, and a desk group that migrated to a supergroup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from bots.runtime import Tuning
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.clock import FakeClock
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_e2e import CUSTOMER, DESK, OPERATOR_A, buttons, handed_off, press

SUPERVISOR = 9900


def topic_texts(bot: BotUnderTest, thread: int) -> list[str]:
    return [m.get("text", "") for m in bot.fake.messages_to(DESK, thread)]


def mentioned(message: dict[str, Any]) -> set[int]:
    return {e["user"]["id"] for e in message.get("entities", []) if e["type"] == "text_mention"}


@contextlib.asynccontextmanager
async def clocked_desk(settings: Settings, brain: Brain, clock: FakeClock, *,
                       tuning: Tuning | None = None, **overrides: Any
                       ) -> AsyncIterator[BotUnderTest]:
    """The bot with a forum desk, its handoff timers on `clock` (the scheduler runs when the
    test calls `once()`); `tuning`: other knobs (a faster desk clock for busy topics)."""
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               tuning=replace(tuning or Tuning(), clock=clock, desk_tick=3600),
                               **overrides) as bot:
            yield bot


async def taken_by_olga(bot: BotUnderTest) -> tuple[int, int]:
    """Hand the customer off and let Ольга press Take; (thread, messages the customer got)."""
    thread, card = await handed_off(bot)
    told = len(await bot.wait_texts(CUSTOMER, 1))
    await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
    await bot.wait_texts(CUSTOMER, told + 1)
    return thread, told + 1


async def test_an_auto_assigned_operator_is_mentioned_in_the_topic(
    settings: Settings, brain: Brain
) -> None:
    clock = FakeClock()
    async with clocked_desk(settings, brain, clock, auto_assign=True) as bot:
        await bot.runtime.handoff.set_status(f"tg:{OPERATOR_A}", "online", name="Ольга")
        thread, _card = await handed_off(bot)
        await bot.runtime.scheduler().once()
        note = await wait_until(
            lambda: [m for m in bot.fake.messages_to(DESK, thread)
                     if "назначен" in m.get("text", "")], bool, 5, "the assignment note")
        assert "Ольга" in note[0]["text"] and OPERATOR_A in mentioned(note[0])
        assert (await bot.conversation(CUSTOMER)).owner == f"tg:{OPERATOR_A}"


async def test_no_escalation_note_runs_ahead_of_a_card_not_shown_yet(
    settings: Settings, brain: Brain
) -> None:
    clock = FakeClock()
    async with clocked_desk(settings, brain, clock, desk_supervisors=str(SUPERVISOR),
                            sla_unclaimed_minutes=5) as bot:
        bot.fake.delay("sendMessage", 2.0)  # the group's budget is short: the card waits
        await bot.say(CUSTOMER, "позовите оператора")
        await wait_until(lambda: bot.conversation(CUSTOMER),
                         lambda conv: conv.state == "queued", 5, "queued")
        scheduler = bot.runtime.scheduler()
        await scheduler.once()
        clock.advance(6 * 60)
        await scheduler.once()
        bot.fake.delay("sendMessage", 0)
        card = await wait_until(
            lambda: [m for m in bot.fake.messages_to(DESK) if "Взять" in buttons(m)],
            lambda got: bool(got) and "приоритет: высокий" in got[-1].get("text", ""), 10,
            "the card, at the raised priority")
        assert card
        await asyncio.sleep(0.3)
        assert not [m for m in bot.fake.messages_to(DESK) if "ждёт оператора" in m.get("text", "")]


async def test_unclaimed_conversation_escalates_once_with_supervisors_mentioned(
    settings: Settings, brain: Brain
) -> None:
    clock = FakeClock()
    async with clocked_desk(settings, brain, clock, desk_supervisors=str(SUPERVISOR),
                            sla_unclaimed_minutes=5) as bot:
        thread, _card = await handed_off(bot)
        scheduler = bot.runtime.scheduler()
        await scheduler.once()
        clock.advance(4 * 60)
        await scheduler.once()
        await asyncio.sleep(0.1)
        assert not any("ждёт оператора" in t for t in topic_texts(bot, thread))
        clock.advance(2 * 60)
        await scheduler.once()
        await scheduler.once()  # fires once only
        alerts = await wait_until(
            lambda: [m for m in bot.fake.messages_to(DESK, thread)
                     if "ждёт оператора" in m.get("text", "")], bool, 5, "the escalation")
        await asyncio.sleep(0.1)
        assert len([t for t in topic_texts(bot, thread) if "ждёт оператора" in t]) == 1
        assert SUPERVISOR in mentioned(alerts[0])
        card = await wait_until(lambda: bot.fake.messages_to(DESK, thread)[0].get("text", ""),
                                lambda text: "приоритет: высокий" in text, 5,
                                "the card at the new priority")
        assert card


async def test_an_operator_is_reminded_when_the_customer_waits_for_a_reply(
    settings: Settings, brain: Brain
) -> None:
    clock = FakeClock()
    async with clocked_desk(settings, brain, clock, sla_reply_minutes=10) as bot:
        thread, _told = await taken_by_olga(bot)
        await bot.say(CUSTOMER, "так что с заказом?")
        await wait_until(lambda: topic_texts(bot, thread),
                         lambda got: "так что с заказом?" in got, 5, "the copy")
        clock.advance(11 * 60)
        await bot.runtime.scheduler().once()
        reminder = (await wait_until(
            lambda: [m for m in bot.fake.messages_to(DESK, thread)
                     if "ждёт ответа" in m.get("text", "")], bool, 5, "the reminder"))[0]
        assert OPERATOR_A in mentioned(reminder)


async def test_waiting_customers_hear_only_meaningful_position_changes(
    settings: Settings, brain: Brain
) -> None:
    customers = [6101, 6102, 6103, 6104]
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               tuning=Tuning(desk_tick=3600)) as bot:
            service = bot.runtime.handoff
            for number, customer in enumerate(customers, 1):
                # One after another: the place each is told is the place they keep (workers
                # on other shards could otherwise commit them in another order).
                await bot.say(customer, "позовите оператора", first_name=f"К{customer}")
                queue = await wait_until(lambda: service.queue(),
                                         lambda q, n=number: len(q) == n, 5, f"#{number} queued")
            first, second, third, fourth = (item.conv for item in queue)
            last = int(fourth.split(":")[1])
            await wait_until(lambda: bot.texts_to(last),
                             lambda got: any("4-й в очереди" in t for t in got), 5, "#4")
            scheduler = bot.runtime.scheduler()
            await scheduler.once()  # remembers what everyone was told
            await service.set_status("tg:1", "online", name="Ольга")
            before = len(bot.texts_to(last))
            await service.claim(first, "tg:1")
            await scheduler.once()  # 4 -> 3: not worth a message
            await asyncio.sleep(0.1)
            assert len(bot.texts_to(last)) == before
            await service.claim(second, "tg:1")
            await service.claim(third, "tg:1")
            await scheduler.once()  # 4 -> 1: the front of the queue
            await scheduler.once()
            got = await bot.wait_texts(last, before + 1)
            assert "1-й в очереди" in got[-1]
            await asyncio.sleep(0.1)
            assert len(bot.texts_to(last)) == before + 1


SECOND = 6202


async def test_off_hours_the_customer_is_told_when_the_team_answers(
    settings: Settings, brain: Brain
) -> None:
    late = datetime(2026, 11, 23, 20, 30, tzinfo=timezone.utc).timestamp()  # 23:30 in Moscow
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               business_hours="mon-sun 09:00-21:00", timezone="Europe/Moscow",
                               tuning=Tuning(clock=FakeClock(late), desk_tick=3600)) as bot:
            await bot.say(CUSTOMER, "позовите оператора")
            texts = await wait_until(lambda: bot.texts_to(CUSTOMER),
                                     lambda got: any("в очереди" in t for t in got), 5,
                                     "the handoff notice")
            assert "не работают" in texts[-1] and "завтра в 09:00" in texts[-1]
            assert (await bot.conversation(CUSTOMER)).state == "queued"
            # a second customer moves to the front: told the same promise, not "N min"
            await bot.say(SECOND, "позовите оператора", first_name="Борис")
            await wait_until(lambda: bot.texts_to(SECOND),
                             lambda got: any("в очереди" in t for t in got), 5, "#2")
            scheduler = bot.runtime.scheduler()
            await scheduler.once()  # remembers what everyone was told
            told = len(bot.texts_to(SECOND))
            await bot.exchange(CUSTOMER, "/cancel")
            await scheduler.once()
            moved = await bot.wait_texts(SECOND, told + 1)
            assert "1-й в очереди" in moved[-1] and "завтра в 09:00" in moved[-1]
            assert "мин" not in moved[-1]


NEW_DESK = DESK - 1  # the supergroup the desk group migrates to


@contextlib.asynccontextmanager
async def desk_and_supergroup() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        fake.add_group(NEW_DESK, "Поддержка", is_forum=True)
        yield fake


async def test_the_desk_follows_a_group_upgraded_to_a_supergroup(
    settings: Settings, brain: Brain
) -> None:
    new_desk = NEW_DESK
    async with desk_and_supergroup() as fake:
        fake.migrate_group(DESK, new_desk)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK) as bot:
            await bot.say(CUSTOMER, "позовите оператора")
            cards = await wait_until(
                lambda: [m for m in fake.messages_to(new_desk) if "Взять" in buttons(m)],
                bool, 5, "the card in the new supergroup")
            assert cards
            assert await bot.runtime.redis.hget(bot.runtime.keys.desk_state(), "chat") == str(
                new_desk)
            # Operators in the new supergroup are heard at once, not after a restart.
            fake.push_update(fake.callback_update(
                OPERATOR_A, buttons(cards[0])["Взять"], message_id=cards[0]["message_id"],
                chat_id=new_desk, first_name="Ольга"))
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.state == "assigned", 5, "taken in the new group")


async def test_the_ingress_follows_a_migration_telegram_reports(
    settings: Settings, brain: Brain
) -> None:
    new_desk = NEW_DESK
    async with desk_and_supergroup() as fake, \
            running_bot(settings, brain, fake=fake, operator_chat_id=DESK) as bot:
        await bot.exchange(CUSTOMER, "привет")
        moved = fake.group_message_update(new_desk, OPERATOR_A, "", first_name="Ольга")
        moved["message"].pop("text", None)
        moved["message"]["migrate_from_chat_id"] = DESK
        fake.push_update(moved)
        await wait_until(
            lambda: bot.runtime.redis.hget(bot.runtime.keys.desk_state(), "chat"),
            lambda chat: chat == str(new_desk), 5, "the migration recorded")
        fake.push_update(fake.group_message_update(new_desk, OPERATOR_A, "/online",
                                                   first_name="Ольга"))
        await wait_until(lambda: bot.runtime.handoff.operator(f"tg:{OPERATOR_A}"),
                         lambda op: op is not None and op.status == "online", 5,
                         "an operator heard in the new group")


async def test_an_offline_operators_conversation_returns_to_the_queue_with_notices(
    settings: Settings, brain: Brain
) -> None:
    clock = FakeClock()
    async with clocked_desk(settings, brain, clock, offline_grace_minutes=5) as bot:
        thread, told = await taken_by_olga(bot)
        bot.fake.push_update(bot.fake.group_message_update(
            DESK, OPERATOR_A, "/offline", first_name="Ольга"))
        await wait_until(lambda: bot.runtime.handoff.operator(f"tg:{OPERATOR_A}"),
                         lambda op: op is not None and op.status == "offline", 5,
                         "the operator offline")
        scheduler = bot.runtime.scheduler()
        clock.advance(4 * 60)
        await scheduler.once()  # within the grace period: still hers
        assert (await bot.conversation(CUSTOMER)).state == "assigned"
        clock.advance(2 * 60)
        await scheduler.once()
        assert (await bot.conversation(CUSTOMER)).state == "queued"

        texts = await bot.wait_texts(CUSTOMER, told + 1)
        assert "Оператор отключился" in texts[-1]
        note = await wait_until(
            lambda: [t for t in topic_texts(bot, thread) if t.startswith("🔁")], bool, 5,
            "the note in the topic")
        assert "Ольга" in note[0] and "5 мин" in note[0]
        await wait_until(lambda: buttons(bot.fake.messages_to(DESK, thread)[0]),
                         lambda keys: "Взять" in keys, 5, "the card open to take again")
