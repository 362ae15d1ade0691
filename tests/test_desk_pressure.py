"""The desk under the group's limit: every call that posts into the group (topics, cards, card
edits, relays) is paced from one budget, so a burst of handoffs meets no 429 and loses no card;
and a customer's texts waiting for the budget are merged into one post, in order, with times."""

from __future__ import annotations

import re

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import wait_until
from tests.test_desk_e2e import CUSTOMER, DESK, OPERATOR_A, buttons, desk_bot, handed_off, press


async def test_texts_waiting_for_the_budget_are_merged_in_order(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake) as bot:
            thread, card = await handed_off(bot)
            await press(bot, OPERATOR_A, card, "Взять", name="Ольга")
            await wait_until(lambda: bot.conversation(CUSTOMER),
                             lambda conv: conv.state == "assigned", 5, "taken")
            before = len(fake.messages_to(DESK, thread))
            said = [f"сообщение номер {number}" for number in range(12)]
            for text in said:
                fake.push_update(fake.text_update(CUSTOMER, text))

            def relayed() -> list[str]:
                posts = fake.messages_to(DESK, thread)[before:]
                return [line for post in posts for line in post.get("text", "").splitlines()
                        if "сообщение номер" in line]

            lines = await wait_until(relayed, lambda got: len(got) >= len(said), 20,
                                     "every text in the topic")
            assert [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in lines] == said
            posts = [p for p in fake.messages_to(DESK, thread)[before:]
                     if "сообщение номер" in p.get("text", "")]
            assert len(posts) <= 4  # twelve texts, a few posts
            assert re.match(r"^\[\d\d:\d\d:\d\d\] сообщение", posts[-1]["text"])
            assert not fake.limit_violations


async def test_a_burst_of_handoffs_gets_every_card_without_a_429(
    settings: Settings, brain: Brain
) -> None:
    customers = range(7001, 7009)
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with desk_bot(settings, brain, fake):
            for customer in customers:
                fake.push_update(fake.text_update(customer, "позовите оператора"))

            def cards() -> list[dict[str, object]]:
                return [m for m in fake.messages_to(DESK) if "Взять" in buttons(m)]

            await wait_until(cards, lambda got: len(got) >= len(customers), 90,
                             "a card for every customer")
            assert len(fake.topics_of(DESK)) == len(customers)
            assert not fake.limit_violations  # topics and edits paced too: no 429 at all
