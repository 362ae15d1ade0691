"""The HTTP API mounted in the running bot: an integration takes a customer and answers."""

from __future__ import annotations

import aiohttp

from bots.settings import Settings
from bots.turns import Brain
from tests.telegram_harness import running_bot, settings_token, wait_until

CUSTOMER = 6501
TOKEN = "api-s3cret-0123456789"


async def test_an_integration_claims_and_replies_through_the_api(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain, api_token=TOKEN) as bot:
        await bot.say(CUSTOMER, "позовите оператора")
        await wait_until(lambda: bot.conversation(CUSTOMER), lambda c: c.state == "queued", 5,
                         "the handoff")
        told = len(await bot.wait_texts(CUSTOMER, 1))
        base = f"http://127.0.0.1:{settings.http_port}/api/v1"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/queue") as anonymous:
                assert anonymous.status == 401
            async with http.get(f"{base}/queue", headers=auth) as queue:
                assert queue.status == 200
                assert (await queue.json())["items"][0]["conversation"]["id"] == f"tg:{CUSTOMER}"
            async with http.post(f"{base}/operators/api:crm/status", headers=auth,
                                 json={"status": "online", "name": "CRM"}) as status:
                assert status.status == 200
            async with http.post(f"{base}/conversations/tg:{CUSTOMER}/claim", headers=auth,
                                 json={"operator": "api:crm"}) as claim:
                assert claim.status == 200
            async with http.post(f"{base}/conversations/tg:{CUSTOMER}/reply", headers=auth,
                                 json={"operator": "api:crm", "text": "Ответ из CRM"}) as reply:
                assert reply.status == 200
        got = await bot.wait_texts(CUSTOMER, told + 2)
        assert "оператор" in got[told].lower() and got[told + 1] == "Ответ из CRM"


async def test_api_actions_show_in_the_desk(settings: Settings, brain: Brain) -> None:
    """Operators in the group see what an integration did: the card names its owner, the
    reply lands in the topic, and a close marks the topic closed."""
    from fakes.telegram import FakeTelegram
    from tests.test_desk_e2e import CUSTOMER as DESK_CUSTOMER
    from tests.test_desk_e2e import DESK, handed_off

    async with FakeTelegram(token=settings_token(settings)) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, api_token=TOKEN,
                               operator_chat_id=DESK) as bot:
            thread, card = await handed_off(bot)
            conv = f"tg:{DESK_CUSTOMER}"
            base = f"http://127.0.0.1:{settings.http_port}/api/v1"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with aiohttp.ClientSession(headers=auth) as http:
                async with http.post(f"{base}/operators/api:crm/status",
                                     json={"status": "online", "name": "CRM"}) as status:
                    assert status.status == 200
                async with http.post(f"{base}/conversations/{conv}/claim",
                                     json={"operator": "api:crm"}) as claim:
                    assert claim.status == 200
                await wait_until(
                    lambda: fake.messages_to(DESK, thread),
                    lambda found: any(m["message_id"] == card["message_id"]
                                      and "ведёт CRM" in m.get("text", "") for m in found),
                    5, "the card showing its owner")
                async with http.post(f"{base}/conversations/{conv}/reply",
                                     json={"operator": "api:crm", "text": "Ответ из CRM"}) as reply:
                    assert reply.status == 200
                await wait_until(
                    lambda: [m.get("text", "") for m in fake.messages_to(DESK, thread)],
                    lambda texts: any("Ответ из CRM" in t and "api:crm" in t for t in texts),
                    5, "the API reply in the topic")
                async with http.post(f"{base}/conversations/{conv}/close",
                                     json={"by": "api:crm"}) as close:
                    assert close.status == 200
                # Behind the card's and the topic's own edits, paced at the group's one a second
                await wait_until(lambda: fake.topics_of(DESK)[thread],
                                 lambda topic: topic["is_closed"], 15, "the topic closed")
