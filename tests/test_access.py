"""Access at the desk, end to end through the fake Bot API: a member removed from the desk group
loses access at once (their conversations back in the queue, a note in each topic, the journal
says who and when); only listed operators act; supervisors /grant and /revoke."""

from __future__ import annotations

from typing import Any

from bots.settings import Settings
from bots.turns import Brain
from handoff.audit import JournalQuery, read_journal
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_commands import (
    CUSTOMER,
    DESK,
    FAST,
    IRA,
    OLGA,
    PETR,
    customer_texts,
    desk_says,
    limited,
    posted,
    settled,
    started,
    taken,
    topic_texts,
)

VERA = 9104


def desk_bot(settings: Settings, brain: Brain, fake: Any, **extra: Any) -> Any:
    return running_bot(settings, brain, fake=fake, tuning=FAST, operator_chat_id=DESK, **extra)


async def revokes(bot: BotUnderTest) -> list[Any]:
    query = JournalQuery(action="revoke")
    return await read_journal(bot.runtime.redis, bot.runtime.keys, query)


async def test_a_member_removed_from_the_desk_group_loses_access_at_once(
    settings: Settings, brain: Brain
) -> None:
    async with limited() as fake:
        await started(fake)
        async with desk_bot(settings, brain, fake) as bot:
            thread, told = await taken(bot)  # Ольга has the customer
            fake.push_update(fake.chat_member_update(DESK, OLGA, "kicked", first_name="Ольга",
                                                     by=PETR))
            await posted(bot, thread, "🔒 Ольга: доступ отозван (удалён из группы стола)")
            await posted(bot, None, "Возвращено в очередь: 1")
            assert (await bot.conversation(CUSTOMER)).state == "queued"
            back = await customer_texts(bot, told + 1)
            assert "Оператор отключился" in back[-1]
            (entry,) = await revokes(bot)
            assert (entry.owner, entry.actor, entry.reason) == (
                f"tg:{OLGA}", "telegram", "удалён из группы стола")
            operator = await bot.runtime.handoff.operator(f"tg:{OLGA}")
            assert operator is not None and operator.status == "offline"

            # Her messages do nothing now: told once, then ignored.
            await desk_says(bot, OLGA, "/take", thread)
            await posted(bot, thread, "⛔ Ольга, у вас нет доступа к этому столу")
            await desk_says(bot, OLGA, "Алло?", thread)
            await settled(bot)
            assert sum("⛔" in t for t in topic_texts(bot, thread)) == 1
            assert (await bot.conversation(CUSTOMER)).state == "queued"
            assert len(bot.texts_to(CUSTOMER)) == told + 1
            # A colleague takes it.
            await desk_says(bot, PETR, "/take", thread, name="Пётр")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.owner == f"tg:{PETR}", 5, "Пётр has it")
            # Someone who simply leaves is revoked too; a member who joins is not an event.
            fake.push_update(fake.chat_member_update(DESK, IRA, "left", first_name="Ира"))
            await posted(bot, None, "вышел из группы стола")
        assert fake.limit_violations == []


async def test_only_listed_operators_act_and_supervisors_grant_and_revoke(
    settings: Settings, brain: Brain
) -> None:
    async with limited() as fake:
        await started(fake)
        async with desk_bot(settings, brain, fake, desk_operators=str(OLGA),
                            desk_supervisors=str(PETR)) as bot:
            thread, _told = await taken(bot)  # Ольга is listed
            await desk_says(bot, IRA, "/take", thread, name="Ира")
            await posted(bot, thread, "⛔ Ира, у вас нет доступа к этому столу")
            await desk_says(bot, IRA, "/grant 9103 operator", name="Ира")  # not a supervisor
            await settled(bot)
            assert not any("✅" in t for t in topic_texts(bot, None))
            await desk_says(bot, OLGA, "/grant 9103 operator")  # an operator, not a supervisor
            await posted(bot, None, "/grant — только для руководителей.")

            await desk_says(bot, PETR, f"/grant {IRA} operator", name="Пётр")
            await posted(bot, None, "роль operator выдана")
            await desk_says(bot, PETR, f"/revoke tg:{OLGA} ушла в отпуск", name="Пётр")
            await posted(bot, thread, "🔒 Ольга: доступ отозван (ушла в отпуск)")
            await desk_says(bot, IRA, "/take", thread, name="Ира")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.owner == f"tg:{IRA}", 5, "Ира has it")
            (entry,) = await revokes(bot)
            assert (entry.owner, entry.actor, entry.reason) == (
                f"tg:{OLGA}", f"tg:{PETR}", "ушла в отпуск")
            assert await bot.runtime.access.roles_of(f"tg:{OLGA}") == set()
            # a supervisor made at the desk may close a colleague's conversation
            await desk_says(bot, PETR, f"/grant {VERA} supervisor", name="Пётр")
            await posted(bot, None, "роль supervisor выдана")
            await desk_says(bot, VERA, "/close решено", thread, name="Вера")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.state == "bot", 5, "closed by Вера")
        assert fake.limit_violations == []
