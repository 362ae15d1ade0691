"""Seeded hostile input at every HTTP entry point, property style: whatever arrives — texts
thousands of letters long, control characters, mixed scripts and directions, lone surrogates,
junk where objects belong, wrong types, nesting — no answer is a 5xx, and every customer
message that was accepted is answered. The seeds are fixed: a failure reproduces."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import aiohttp

from bots.settings import Settings
from bots.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from bots.turns import Brain
from tests.hostile import JUNK, hostile_text, mangle, post_json, webhook_bot
from tests.telegram_harness import wait_until
from tests.vk_harness import SECRET, running_vk_bot

API_TOKEN = "fuzz-api-token-0123456789"
WEBHOOK_SECRET = "fuzz-webhook-0123456789"


async def test_the_webhook_and_the_api_survive_hostile_input_and_answer_customers(
    settings: Settings, brain: Brain
) -> None:
    rng = random.Random(20261206)
    async with webhook_bot(settings, brain, WEBHOOK_SECRET, API_TOKEN) as bot:
        base = f"http://127.0.0.1:{settings.http_port}"
        webhook = {SECRET_HEADER: WEBHOOK_SECRET}
        api = {"Authorization": f"Bearer {API_TOKEN}"}
        statuses: list[tuple[str, int]] = []
        customers: list[int] = []
        async with aiohttp.ClientSession() as http:
            for number in range(60):
                chat = 8800 + number
                update = bot.fake.text_update(chat, hostile_text(rng))
                update["update_id"] = 10_000 + number
                if number % 3 == 2:  # every third one broken on purpose
                    update = mangle(rng, update)
                else:
                    customers.append(chat)
                status = await post_json(http, base + WEBHOOK_PATH, update, webhook)
                statuses.append((f"webhook #{number}", status))
            conv = f"tg:{customers[0]}"
            calls: list[tuple[str, Callable[[], Any]]] = [
                (f"/api/v1/conversations/{conv}/reply", lambda: {"text": hostile_text(rng),
                                                               "operator": "api:crm"}),
                (f"/api/v1/conversations/{conv}/claim", lambda: {"operator": rng.choice(JUNK)}),
                ("/api/v1/operators/api:crm/status", lambda: mangle(rng, {"status": "online"})),
                (f"/api/v1/conversations/{hostile_text(rng)[:30]}/close", lambda: {}),
            ]
            for number in range(40):
                path, body = calls[number % len(calls)]
                statuses.append((f"API {path[:40]}", await post_json(
                    http, base + path, body(), api)))
        server_errors = [(where, status) for where, status in statuses if status >= 500]
        assert not server_errors, server_errors
        for chat in customers:  # every accepted customer message is answered
            await wait_until(lambda chat=chat: bot.fake.messages_to(chat), bool, 20,
                             f"an answer to chat {chat}")


async def test_the_vk_callback_survives_hostile_events(settings: Settings, brain: Brain
                                                       ) -> None:
    rng = random.Random(61202026)
    async with running_vk_bot(settings, brain, mode="callback") as bot, \
            aiohttp.ClientSession() as http:
        statuses, customers = [], []
        for number in range(45):
            user = 9900 + number
            event = bot.vk.callback_body(bot.vk.message_new(user, hostile_text(rng)), SECRET)
            if number % 3 == 2:
                event = mangle(rng, event)
            else:
                customers.append(user)
            statuses.append(await post_json(http, bot.callback_url, event))
        assert all(status < 500 for status in statuses), statuses
        for user in customers:
            await bot.wait_sent(user, 1, timeout=20)
