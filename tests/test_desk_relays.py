"""Relay bots: customers' texts posted into the desk's topics by several bots, each with its own
budget, over a fake Bot API that keeps Telegram's per-bot rules (limits per token, a relay has
no private chats and cannot copy from them, presses go to the bot that sent the message)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_e2e import DESK, OPERATOR_A, buttons

RELAYS = ["700001:relay-one-secret-abc", "700002:relay-two-secret-abc",
          "700003:relay-three-secret-abc"]


def with_relays(fake: FakeTelegram, count: int) -> str:
    for number, token in enumerate(RELAYS[:count]):
        fake.add_bot(token, f"relay{number + 1}_bot", groups=(DESK,))
    return ",".join(RELAYS[:count])


@contextlib.asynccontextmanager
async def relay_desk(settings: Settings, brain: Brain, relays: int
                     ) -> AsyncIterator[tuple[FakeTelegram, BotUnderTest]]:
    """A forum desk with `relays` relay bots, Telegram's limits on."""
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        tokens = with_relays(fake, relays)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               desk_relay_tokens=tokens) as bot:
            yield fake, bot


async def taken(bot: BotUnderTest, customer: int) -> int:
    """Hand `customer` off and let an operator take them; their topic's thread id."""
    await bot.say(customer, "позовите оператора", first_name=f"К{customer}")
    cards = await wait_until(
        lambda: [m for m in bot.fake.messages_to(DESK) if "Взять" in buttons(m)
                 and f"id={customer}\n" in m.get("text", "")], bool, 30, f"{customer}'s card")
    bot.fake.push_update(bot.fake.callback_update(
        OPERATOR_A, buttons(cards[0])["Взять"], message_id=cards[0]["message_id"],
        chat_id=DESK, first_name="Ольга"))
    await wait_until(lambda: bot.conversation(customer), lambda c: c.state == "assigned", 10,
                     f"{customer} taken")
    return int(cards[0]["message_thread_id"])


def lines_in(fake: FakeTelegram, thread: int, marker: str) -> list[str]:
    """The customer's texts posted in the topic (alone or merged, with their times)."""
    lines = [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line)
             for post in fake.messages_to(DESK, thread)
             for line in post.get("text", "").splitlines()]
    return [line for line in lines if line.startswith(marker)]


def relay_posts(fake: FakeTelegram) -> list[Any]:
    relays = fake.relay_ids()
    return [c for c in fake.calls_of("sendMessage") if c.ok and c.bot in relays]


async def burst_through(bot: BotUnderTest, threads: dict[int, int], per_customer: int) -> None:
    for number in range(per_customer):
        for customer in threads:
            bot.fake.push_update(bot.fake.text_update(customer, f"{customer}: текст {number}"))
    for customer, thread in threads.items():
        expected = [f"{customer}: текст {n}" for n in range(per_customer)]
        got = await wait_until(lambda c=customer, t=thread: lines_in(bot.fake, t, f"{c}: текст"),
                               lambda got, e=expected: len(got) >= len(e), 60,
                               f"{customer}'s texts in the topic")
        assert got == expected  # nothing lost, nothing doubled, in order


async def test_a_pool_of_three_relays_posts_a_burst_with_no_429(
    settings: Settings, brain: Brain
) -> None:
    async with relay_desk(settings, brain, 3) as (fake, bot):
        threads = {customer: await taken(bot, customer) for customer in (8101, 8102, 8103)}
        await burst_through(bot, threads, per_customer=6)
        assert relay_posts(fake)  # the relays carried texts
        assert not fake.limit_violations  # per bot: nobody went over its own budget


async def test_relays_post_topics_and_cards_and_answer_the_presses_on_theirs(
    settings: Settings, brain: Brain
) -> None:
    """A burst of handoffs through three relays: every card once, angry customers' first, the
    topics and cards spread over the bots; a press on a relay's card reaches that relay, which
    answers it and re-renders its card (Telegram lets only the sender do either)."""
    polite, angry = range(8501, 8510), range(8510, 8513)
    async with relay_desk(settings, brain, 3) as (fake, bot):
        for customer in [*polite, *angry]:  # the angry ones last
            text = "это безобразие, верните деньги немедленно" if customer in angry \
                else "позовите оператора"
            fake.push_update(fake.text_update(customer, text, first_name=f"К{customer}"))

        def cards() -> list[dict[str, Any]]:
            return [m for m in fake.messages_to(DESK) if "Взять" in buttons(m)]

        posted = await wait_until(cards, lambda got: len(got) >= 12, 60, "twelve cards")
        order = [int(re.findall(r"id=(\d+)\n", card["text"])[0]) for card in posted]
        assert sorted(order) == [*polite, *angry]  # each once
        assert max(order.index(c) for c in angry) < max(order.index(c) for c in polite)
        relays = fake.relay_ids()
        card_bots = {m["from"]["id"] for m in posted}
        topic_bots = {c.bot for c in fake.calls_of("createForumTopic") if c.ok}
        assert card_bots & relays and topic_bots & relays  # the relays carried them too
        assert not fake.limit_violations

        by_relay = next(m for m in posted if m["from"]["id"] in relays)
        customer = int(re.findall(r"id=(\d+)\n", by_relay["text"])[0])
        fake.push_update(fake.callback_update(
            OPERATOR_A, buttons(by_relay)["Взять"], message_id=by_relay["message_id"],
            chat_id=DESK, first_name="Ольга"))
        await wait_until(lambda: bot.conversation(customer), lambda c: c.state == "assigned",
                         15, "taken through the relay's card")
        answers = await wait_until(lambda: [c for c in fake.calls_of("answerCallbackQuery")
                                            if c.ok], bool, 10, "the press answered")
        assert {c.bot for c in answers} == {by_relay["from"]["id"]}
        await wait_until(lambda: [c for c in fake.calls_of("editMessageText") if c.ok
                                  and c.params.get("message_id") == by_relay["message_id"]],
                         bool, 15, "the card re-rendered")
        edits = [c for c in fake.calls_of("editMessageText")
                 if c.params.get("message_id") == by_relay["message_id"]]
        assert edits and all(c.ok and c.bot == by_relay["from"]["id"] for c in edits)


async def test_a_relay_removed_from_the_group_is_dropped_and_nothing_is_lost(
    settings: Settings, brain: Brain, caplog: pytest.LogCaptureFixture
) -> None:
    async with relay_desk(settings, brain, 2) as (fake, bot):
        threads = {customer: await taken(bot, customer) for customer in (8201, 8202)}
        fake.remove_bot(RELAYS[0], DESK)
        fake.revoke_bot(RELAYS[1])
        await burst_through(bot, threads, per_customer=5)
        reports = await wait_until(
            lambda: [m for m in fake.messages_to(DESK) if "исключён из пула" in
                     m.get("text", "")], lambda got: len(got) >= 2, 20, "two reports")
        await asyncio.sleep(0.5)  # and no third
        assert len([m for m in fake.messages_to(DESK)
                    if "исключён из пула" in m.get("text", "")]) == len(reports) == 2
    dropped = [r.getMessage() for r in caplog.records if "dropped from the pool" in r.getMessage()]
    assert len(dropped) == 2 and any("kicked" in line for line in dropped)


async def test_a_relay_with_a_rejected_token_is_left_out_at_start(
    settings: Settings, brain: Brain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        tokens = with_relays(fake, 2)
        fake.revoke_bot(RELAYS[0])
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               desk_relay_tokens=tokens) as bot:
            await taken(bot, 8301)
        assert "desk relays: @relay2_bot" in caplog.text
        assert "desk relay 700001… left out: Unauthorized" in caplog.text


async def test_the_fake_keeps_telegrams_rules_for_other_bots() -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        fake.add_bot(RELAYS[0], "relay1_bot", groups=(DESK,))
        customer_message = fake.push_update(fake.text_update(8401, "привет"))["message"]
        photo = fake.push_update(fake.media_update(8401, "photo"))["message"]["photo"][-1]

        async def call(token: str, method: str, **params: Any) -> dict[str, Any]:
            async with aiohttp.ClientSession() as http, \
                    http.post(f"{fake.url}/bot{token}/{method}", json=params) as response:
                return dict(await response.json())

        relay = RELAYS[0]
        to_customer = await call(relay, "sendMessage", chat_id=8401, text="x")
        assert to_customer["description"] == \
            "Forbidden: bot can't initiate conversation with a user"
        copied = await call(relay, "copyMessage", chat_id=DESK, from_chat_id=8401,
                            message_id=customer_message["message_id"])
        assert copied["description"] == "Bad Request: chat not found"
        reused = await call(relay, "sendPhoto", chat_id=DESK, photo=photo["file_id"])
        assert reused["description"] == "Bad Request: wrong file identifier/HTTP URL specified"
        posted = await call(relay, "sendMessage", chat_id=DESK, text="ok",
                            reply_markup={"inline_keyboard": [[{"text": "b",
                                                                "callback_data": "d"}]]})
        assert posted["ok"] and posted["result"]["from"]["username"] == "relay1_bot"
        before = len(fake.calls_of("getUpdates"))
        fake.push_update(fake.callback_update(OPERATOR_A, "d",
                                              message_id=posted["result"]["message_id"],
                                              chat_id=DESK))
        main_updates = await call(FAKE_TOKEN, "getUpdates", timeout=0)
        assert not [u for u in main_updates["result"] if "callback_query" in u]
        assert before + 1 == len(fake.calls_of("getUpdates"))
        assert fake.bot_by_token(relay) is not None
        assert [u for u in fake.bot_by_token(relay).updates  # type: ignore[union-attr]
                if "callback_query" in u]
