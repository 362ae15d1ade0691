"""Several desk groups (OPERATOR_CHAT_IDS): each conversation is routed to one desk by the rules
(DESK_ROUTES, else a stable hash) and stays there; each desk has its own topics, budget and
queue summary; `/transfer desk` moves a conversation, topic and card, to another desk."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bots.desk.routing import DeskRouting, RoutingError, parse_desks, parse_routes
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_desk_e2e import OPERATOR_A, OPERATOR_B, buttons

SALES, CARE = -1001000000001, -1001000000002
API_TOKEN = "desk-groups-api-token-0123456789"


@contextlib.asynccontextmanager
async def two_desks(settings: Settings, brain: Brain, routes: str
                    ) -> AsyncIterator[tuple[FakeTelegram, BotUnderTest]]:
    async with FakeTelegram(token=FAKE_TOKEN, enforce_limits=True) as fake:
        fake.add_group(SALES, "Продажи", is_forum=True)
        fake.add_group(CARE, "Забота", is_forum=True)
        async with running_bot(settings, brain, fake=fake, api_token=API_TOKEN,
                               operator_chat_ids=f"sales={SALES}, care={CARE}",
                               desk_routes=routes) as bot:
            yield fake, bot


def cards_of(fake: FakeTelegram, desk: int, customer: int) -> list[dict[str, Any]]:
    return [m for m in fake.messages_to(desk) if "Взять" in buttons(m)
            and f"id={customer}\n" in m.get("text", "")]


async def take(fake: FakeTelegram, desk: int, card: dict[str, Any], operator: int) -> None:
    fake.push_update(fake.callback_update(operator, buttons(card)["Взять"],
                                          message_id=card["message_id"], chat_id=desk,
                                          first_name="Ольга"))


async def test_rules_route_each_conversation_to_one_desk_and_it_stays(
    settings: Settings, brain: Brain
) -> None:
    async with two_desks(settings, brain, "language:en -> care") as (fake, bot):
        fake.push_update(fake.text_update(8601, "позовите оператора", first_name="Анна"))
        fake.push_update(fake.text_update(8602, "позовите оператора", first_name="John",
                                          language_code="en"))
        english = await wait_until(lambda: cards_of(fake, CARE, 8602), bool, 30,
                                   "the English customer's card in the care desk")
        assert not cards_of(fake, SALES, 8602)
        # The other customer: by the stable hash, in exactly one desk.
        homes = await wait_until(
            lambda: [d for d in (SALES, CARE) if cards_of(fake, d, 8601)], bool, 30, "a card")
        assert len(homes) == 1
        routing = DeskRouting(parse_desks(f"sales={SALES}, care={CARE}"))
        assert homes[0] == routing.choose("tg:8601", {}).chat_id
        # Each desk's summary counts its own queue and shows the other desk's.
        summaries = await wait_until(
            lambda: {d: [m["text"] for m in fake.messages_to(d) if "📋 Очередь" in
                         m.get("text", "")] for d in (SALES, CARE)},
            lambda got: all(got.values()), 60, "a summary in each desk")
        assert all("Другие столы:" in texts[-1] for texts in summaries.values())
        # Supervisors see every desk through the API too.
        base = f"http://127.0.0.1:{settings.http_port}/api/v1/queue"
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.get(base) as whole:
                queue = await whole.json()
            async with http.get(base, params={"desk": str(CARE)}) as care_only:
                care = await care_only.json()
        assert queue["length"] == 2 and sum(queue["desks"].values()) == 2
        assert queue["desks"][str(CARE)] >= 1
        assert "tg:8602" in [i["conversation"]["id"] for i in care["items"]]
        assert all(i["conversation"]["desk"] == CARE for i in care["items"])

        await take(fake, CARE, english[0], OPERATOR_A)
        await wait_until(lambda: bot.conversation(8602), lambda c: c.state == "assigned", 15,
                         "taken in the care desk")
        fake.push_update(fake.text_update(8602, "my parcel is late", first_name="John",
                                          language_code="en"))
        thread = english[0]["message_thread_id"]
        await wait_until(lambda: [m for m in fake.messages_to(CARE, thread)
                                  if "my parcel is late" in m.get("text", "")], bool, 15,
                         "the customer's text in the care topic")
        assert not [t for t in fake.topics_of(SALES).values() if "John" in t["name"]]
        assert not fake.limit_violations


async def test_transfer_to_another_desk_moves_the_topic_and_the_card(
    settings: Settings, brain: Brain
) -> None:
    async with two_desks(settings, brain, "language:en -> care") as (fake, bot):
        fake.push_update(fake.text_update(8701, "позовите оператора", first_name="John",
                                          language_code="en"))
        card = (await wait_until(lambda: cards_of(fake, CARE, 8701), bool, 30, "card"))[0]
        old_thread = card["message_thread_id"]
        await take(fake, CARE, card, OPERATOR_A)
        await wait_until(lambda: bot.conversation(8701), lambda c: c.state == "assigned", 15,
                         "taken")
        fake.push_update(fake.group_message_update(CARE, OPERATOR_A, "/transfer desk nowhere",
                                                   thread_id=old_thread))
        await wait_until(lambda: [m for m in fake.messages_to(CARE, old_thread)
                                  if "Нет стола «nowhere»" in m.get("text", "")], bool, 15,
                         "an unknown desk refused")
        fake.push_update(fake.group_message_update(CARE, OPERATOR_A, "/transfer desk sales",
                                                   thread_id=old_thread))
        moved = (await wait_until(lambda: cards_of(fake, SALES, 8701), bool, 30,
                                  "a card in the sales desk"))[0]
        assert (await bot.conversation(8701)).state == "queued"  # in the queue, of the new desk
        notes = [m for m in fake.messages_to(CARE, old_thread)
                 if "передан в стол «sales»" in m.get("text", "")]
        assert len(notes) == 1
        await wait_until(lambda: fake.topics_of(CARE)[old_thread], lambda t: t["is_closed"],
                         15, "the old topic closed")
        assert await bot.runtime.redis.hget(bot.runtime.keys.conversation("tg:8701"),
                                            "desk") == str(SALES)

        await take(fake, SALES, moved, OPERATOR_B)
        await wait_until(lambda: bot.conversation(8701), lambda c: c.state == "assigned", 15,
                         "taken in the sales desk")
        fake.push_update(fake.text_update(8701, "still there?", first_name="John",
                                          language_code="en"))
        await wait_until(lambda: [m for m in fake.messages_to(SALES, moved["message_thread_id"])
                                  if "still there?" in m.get("text", "")], bool, 15,
                         "the customer's next text in the new topic")
        assert not [m for m in fake.messages_to(CARE, old_thread)
                    if "still there?" in m.get("text", "")]
        assert not fake.limit_violations


def test_desk_settings_errors_name_the_desk_or_rule() -> None:
    desks = parse_desks("sales=-1001, care=-1002")
    assert [d.name for d in desks] == ["sales", "care"]
    assert [d.name for d in parse_desks("-1001,-1002")] == ["desk1", "desk2"]
    with pytest.raises(RoutingError, match=r"desk 2 \('care=x'\): the chat id must be"):
        parse_desks("sales=-1001, care=x")
    with pytest.raises(RoutingError, match="repeated"):
        parse_desks("a=-1, a=-2")
    with pytest.raises(RoutingError, match=r"rule 2 .*no desk named 'vip'"):
        parse_routes("channel:vk -> care; tag:x -> vip", desks)
    with pytest.raises(RoutingError, match="unknown key 'city'"):
        parse_routes("city:moscow -> care", desks)
    routing = DeskRouting(desks, parse_routes(
        "channel:vk -> care; tag:refund -> sales; intent:order_status -> sales", desks))
    assert routing.choose("vk:1", {}).name == "care"
    assert routing.choose("tg:1", {"handoff_tags": "vip,refund"}).name == "sales"
    assert routing.choose("tg:1", {}, [{"intent": "greet"}, {"intent": "order_status"}]
                          ).name == "sales"
    spread = {routing.choose(f"tg:{n}", {}).name for n in range(50)}
    assert spread == {"sales", "care"}  # the hash uses both desks
    assert re.fullmatch(r"desk\d", parse_desks("-5")[0].name)
