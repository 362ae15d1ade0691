"""Shifts and the SLA ladder end to end: the running bot, the fake Bot API, a fake clock.

A night in Vladivostok and Moscow with two shifts; an escalation ladder from the owner to the
supervisors and back; `/shift` at the desk."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bots.runtime import Tuning
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.audit import JournalQuery, read_journal
from handoff.clock import FakeClock
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_commands import FAST, desk_says, posted, topic_texts
from tests.test_desk_e2e import CUSTOMER, DESK, handed_off
from tests.test_desk_timers import clocked_desk, mentioned, taken_by_olga
from tests.web_harness import answers

OLGA, PETR = 9101, 9102  # Ольга works from Vladivostok, Пётр from Moscow
SUPERVISOR, SUPERVISOR_AWAY = 9900, 9901
SHIFTS = (f"{OLGA} = Asia/Vladivostok mon-fri 09:00-18:00 | "
          f"{PETR} = Europe/Moscow mon-fri 09:00-18:00")


def moscow(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds of 2026-12-<day> <hour>:<minute> in Moscow (7 December is a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()


def notes(bot: BotUnderTest, thread: int | None, needle: str) -> list[dict[str, Any]]:
    return [m for m in bot.fake.messages_to(DESK)
            if m.get("message_thread_id") == thread and needle in m.get("text", "")]


async def test_a_night_in_vladivostok_and_moscow_with_two_shifts(
    settings: Settings, brain: Brain
) -> None:
    clock = FakeClock(moscow(7, 2, 0))  # Monday 02:00 in Moscow, 09:00 in Vladivostok
    async with clocked_desk(settings, brain, clock, auto_assign=True, timezone="Europe/Moscow",
                            desk_shifts=SHIFTS, offline_grace_minutes=2) as bot:
        handoff = bot.runtime.handoff
        await handoff.set_status(f"tg:{OLGA}", "offline", name="Ольга")
        await handoff.set_status(f"tg:{PETR}", "online", name="Пётр")  # forgot /offline
        scheduler = bot.runtime.scheduler()
        await scheduler.once()
        await posted(bot, None, "Смена Ольга началась: онлайн")
        await posted(bot, None, "Смена Пётр закончилась: офлайн")

        # At night the customer goes to Vladivostok, and only Ольга is called.
        thread, _card = await handed_off(bot)
        await scheduler.once()
        (assigned,) = await wait_until(lambda: notes(bot, thread, "назначен"), bool, 5,
                                       "the assignment")
        assert "Ольга" in assigned["text"] and mentioned(assigned) == {OLGA}
        assert (await bot.conversation(CUSTOMER)).owner == f"tg:{OLGA}"

        clock.advance(moscow(7, 9, 0) - clock.now())  # Moscow's morning
        await scheduler.once()
        await posted(bot, None, "Смена Пётр началась: онлайн")

        clock.advance(moscow(7, 11, 0) - clock.now())  # 18:00 in Vladivostok
        await scheduler.once()
        end = await posted(bot, None, "Смена Ольга закончилась")
        assert "Разговоры (1) вернутся в очередь через 2 мин" in end
        assert (await bot.conversation(CUSTOMER)).owner == f"tg:{OLGA}"  # grace to finish

        clock.advance(3 * 60)
        await scheduler.once()  # back to the queue, then to Пётр, who is on shift
        handed = await wait_until(lambda: notes(bot, thread, "назначен"),
                                  lambda got: len(got) == 2, 5, "the second assignment")
        assert "Пётр" in handed[1]["text"] and mentioned(handed[1]) == {PETR}
        assert (await bot.conversation(CUSTOMER)).owner == f"tg:{PETR}"
        everyone = [mentioned(m) for m in bot.fake.messages_to(DESK)]
        assert all(OLGA not in people for people in everyone[everyone.index({PETR}):])


async def test_an_escalation_ladder(settings: Settings, brain: Brain) -> None:
    clock = FakeClock()
    # Many posts in one topic within a minute: the desk's budget runs on a faster clock.
    async with clocked_desk(settings, brain, clock, sla_reply_minutes=10, sla_ladder_minutes=10,
                            desk_supervisors=f"{SUPERVISOR},{SUPERVISOR_AWAY}",
                            tuning=FAST) as bot:
        await bot.runtime.handoff.set_status(f"tg:{SUPERVISOR_AWAY}", "offline", name="Ира")
        thread, told = await taken_by_olga(bot)
        await bot.say(CUSTOMER, "так что с заказом?")
        await wait_until(lambda: topic_texts(bot, thread),
                         lambda got: "так что с заказом?" in got, 5, "the copy")
        scheduler = bot.runtime.scheduler()
        for _step in range(6):  # an hour in ten-minute steps: three levels, each once
            clock.advance(10 * 60)
            await scheduler.once()
        ladder = await wait_until(lambda: notes(bot, thread, "Клиент ждёт ответа"),
                                  lambda got: len(got) >= 3, 20, "three levels")
        assert [mentioned(m) for m in ladder] == [{OLGA}, {SUPERVISOR}, {OLGA, SUPERVISOR}]
        assert "10 мин" in ladder[0]["text"] and "руководителям" in ladder[1]["text"]
        assert "🚨" in ladder[2]["text"]

        # Ольга answers; the customer writes again: the ladder starts over from her.
        await desk_says(bot, OLGA, "Уже смотрю", thread=thread)
        assert (await bot.wait_texts(CUSTOMER, told + 1))[-1] == "Уже смотрю"
        await bot.say(CUSTOMER, "жду")
        await wait_until(lambda: topic_texts(bot, thread), lambda got: "жду" in got, 5, "copy")
        clock.advance(10 * 60)
        await scheduler.once()
        again = await wait_until(lambda: notes(bot, thread, "Клиент ждёт ответа"),
                                 lambda got: len(got) == 4, 20, "the ladder again")
        assert mentioned(again[3]) == {OLGA}


async def test_operators_set_their_shift_at_the_desk(settings: Settings, brain: Brain) -> None:
    clock = FakeClock(moscow(7, 2, 0))
    async with clocked_desk(settings, brain, clock, desk_supervisors=str(SUPERVISOR),
                            timezone="Europe/Moscow") as bot:
        await desk_says(bot, OLGA, "/shift Asia/Vladivostok mon-fri 09:00-18:00")
        told = await posted(bot, None, "🕘 Ольга:")
        assert "сейчас смена, до 18:00 (Asia/Vladivostok)" in told
        await desk_says(bot, OLGA, "/shift")
        await wait_until(lambda: [t for t in topic_texts(bot, None) if "🕘 Ольга" in t],
                         lambda got: len(got) == 2, 5, "the shift shown")

        await desk_says(bot, OLGA, f"/shift {PETR} mon-fri 09:00-18:00")
        await posted(bot, None, "/shift — только для руководителей")
        await desk_says(bot, SUPERVISOR, f"/shift {PETR} mon-fri 09:00-18:00", name="Вера")
        later = await posted(bot, None, "mon-fri 09:00-18:00 — вне смены")
        assert "начало сегодня в 09:00 (Europe/Moscow)" in later
        await desk_says(bot, PETR, "/shift Mars/Olympus mon 09:00-10:00", name="Пётр")
        await posted(bot, None, "Не понял смену: unknown time zone 'Mars/Olympus'")
        await desk_says(bot, PETR, "/online", name="Пётр")
        overtime = await posted(bot, None, "Пётр: онлайн.")
        assert "сверхурочно" in overtime
        shifts = bot.runtime.handoff.shifts
        assert await shifts.of(f"tg:{PETR}") == "mon-fri 09:00-18:00"
        assert await shifts.of(f"tg:{OLGA}") == "Asia/Vladivostok mon-fri 09:00-18:00"


async def test_each_desk_tells_its_customers_its_own_hours(
    settings: Settings, brain: Brain
) -> None:
    sales, care = -1001000000001, -1001000000002
    clock = FakeClock(moscow(7, 12, 0))  # Monday noon in Moscow, 19:00 in Vladivostok
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(sales, "Продажи", is_forum=True)
        fake.add_group(care, "Забота", is_forum=True)
        async with running_bot(
            settings, brain, fake=fake, tuning=Tuning(clock=clock, desk_tick=3600),
            operator_chat_ids=f"sales={sales}, care={care}",
            desk_routes="language:en -> care; channel:tg -> sales",
            timezone="Europe/Moscow", business_hours="mon-fri 09:00-18:00",
            desk_hours="care = Asia/Vladivostok mon-fri 09:00-18:00",
        ) as bot:
            await bot.say(8601, "позовите оператора", first_name="Анна")
            await bot.say(8602, "позовите оператора", first_name="John", language_code="en")
            anna = await bot.wait_texts(8601, 1)
            john = await bot.wait_texts(8602, 1)
            assert "Обычно отвечаем примерно через" in anna[-1]  # sales is open
            assert "Мы ответим завтра в 09:00" in john[-1]  # care, in Vladivostok, is not
            stored = await wait_until(
                lambda: bot.runtime.redis.hget(bot.runtime.keys.conversation("tg:8602"), "desk"),
                bool, 10, "the routing")
            assert stored == str(care)  # where the notice said it would go


async def test_supervisors_set_shifts_through_the_api(settings: Settings, brain: Brain) -> None:
    token = "shift-api-token-0123456789"
    clock = FakeClock(moscow(7, 2, 0))
    async with running_bot(settings, brain, api_token=token, timezone="Europe/Moscow",
                           tuning=Tuning(clock=clock, desk_tick=3600)) as bot:
        base = f"http://127.0.0.1:{bot.runtime.settings.http_port}/api/v1/operators"
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            await wait_until(lambda: answers(http, base), bool, 10, "the API")
            async with http.put(f"{base}/tg:{OLGA}/shift",
                                json={"shift": "Asia/Vladivostok mon-fri 09:00-18:00",
                                      "by": "tg:1"}) as done:
                olga = await done.json()
            async with http.put(f"{base}/tg:{PETR}/shift",
                                json={"shift": "mon-fri 25:00-26:00"}) as bad:
                refusal = (bad.status, await bad.json())
            async with http.get(base) as listed:
                team = (await listed.json())["operators"]
        assert (olga["shift"], olga["on_shift"]) == ("Asia/Vladivostok mon-fri 09:00-18:00", True)
        assert refusal[0] == 400 and "bad time '25:00'" in refusal[1]["error"]
        assert [(o["id"], o["on_shift"]) for o in team] == [(f"tg:{OLGA}", True)]
        journal = await read_journal(bot.runtime.redis, bot.runtime.keys,
                                     JournalQuery(action="shift"))
        assert [(e.actor, e.owner) for e in journal] == [("tg:1", f"tg:{OLGA}")]
