"""`/notice` at the desk: a supervisor makes a notice to a segment (the count first), sends it,
and hears the outcome in the General topic; operators who are not supervisors are refused."""

from __future__ import annotations

import re

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import running_bot
from tests.test_desk_commands import desk_says, posted
from tests.test_desk_e2e import DESK

SUPERVISOR, OPERATOR = 9900, 9101
CUSTOMERS = (6301, 6302, 6303)


async def test_a_supervisor_sends_a_notice_from_the_desk(settings: Settings, brain: Brain
                                                          ) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               desk_supervisors=str(SUPERVISOR)) as bot:
            for customer in CUSTOMERS:
                await bot.exchange(customer, "/start")
            await bot.exchange(CUSTOMERS[2], "/stop")  # this one opted out

            await desk_says(bot, OPERATOR, "/notice channel:tg | Завтра доставка задержится.")
            await posted(bot, None, "/notice — только для руководителей")

            await desk_says(bot, SUPERVISOR, "/notice channel:tg | Завтра доставка задержится.",
                            name="Вера")
            made = await posted(bot, None, "📣 Рассылка")
            notice = re.search(r"Рассылка (\d{8}-[0-9a-f]{6})", made)
            assert notice is not None and "получат 3" in made and "отказались от рассылок: 1" \
                in made
            before = {c: len(bot.texts_to(c)) for c in CUSTOMERS}
            await desk_says(bot, SUPERVISOR, f"/notice send {notice.group(1)}", name="Вера")
            done = await posted(bot, None, "завершена")
            assert "отправлено: 2" in done and "отказались: 1" in done
            for customer in CUSTOMERS[:2]:
                got = await bot.wait_texts(customer, before[customer] + 1)
                assert "Завтра доставка задержится." in got[-1]
            assert len(bot.texts_to(CUSTOMERS[2])) == before[CUSTOMERS[2]]
            await desk_says(bot, SUPERVISOR, f"/notice send {notice.group(1)}", name="Вера")
            await posted(bot, None, "уже отправлена")  # never twice
