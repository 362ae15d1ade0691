"""Seeded hostile input at every HTTP entry point, property style: whatever arrives — texts
thousands of letters long, control characters, mixed scripts and directions, lone surrogates,
junk where objects belong, wrong types, nesting — no answer is a 5xx, and every customer
message that was accepted is answered. The seeds are fixed: a failure reproduces."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import aiohttp

from bots.settings import Settings
from bots.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from bots.turns import Brain
from tests.telegram_harness import running_bot, wait_until
from tests.vk_harness import SECRET, running_vk_bot

API_TOKEN = "fuzz-api-token-0123456789"
WEBHOOK_SECRET = "fuzz-webhook-0123456789"
PIECES = ["заказ", "where is my order", "ЗАКАЗ!!!", "zakaz", "пж", "\u200f\u202e", "👩‍👩‍👧",
          "e\u0301\u0301\u0301", "\x00", "\x1b[31m", "<script>alert(1)</script>", "%s%n{0}",
          "\ud800", "\U0010ffff", "ﷺ", "ꙮ", "\t\r\n", "' OR 1=1 --", "${jndi:ldap://x}"]
JUNK: list[Any] = [None, True, -1, 2**70, 1.5, "", "x" * 5000, [], {}, [[[[[]]]]],
                   {"a": {"b": {"c": []}}}, ["\ud800"]]


def hostile_text(rng: random.Random) -> str:
    shape = rng.randrange(4)
    if shape == 0:  # one endless "word"
        return rng.choice("azжя") * rng.choice([50, 1000, 4096])
    if shape == 1:  # a long ramble
        return " ".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 400)))
    if shape == 2:  # random code points, surrogates and controls included
        return "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randrange(1, 300)))
    return rng.choice(PIECES)


def mangle(rng: random.Random, value: dict[str, Any]) -> dict[str, Any]:
    """The same object with one field replaced by junk, removed, or a junk field added."""
    mangled = json.loads(json.dumps(value))
    target, path = mangled, [key for key in mangled if isinstance(mangled[key], dict)]
    if path and rng.random() < 0.6:
        target = mangled[rng.choice(path)]
    key = rng.choice(list(target) or ["x"])
    what = rng.randrange(3)
    if what == 0:
        target[key] = rng.choice(JUNK)
    elif what == 1:
        target.pop(key, None)
    else:
        target[hostile_text(rng)[:20] or "k"] = rng.choice(JUNK)
    return mangled


async def post_json(http: aiohttp.ClientSession, url: str, body: Any,
                    headers: dict[str, str] | None = None) -> int:
    data = json.dumps(body, ensure_ascii=rng_ascii(body)).encode("utf-8", "surrogatepass")
    async with http.post(url, data=data, headers=headers or {}) as response:
        return response.status


def rng_ascii(body: Any) -> bool:
    """Lone surrogates only survive as \\u escapes: send those bodies ASCII-escaped."""
    return "\\ud8" in json.dumps(body) or "\\udc" in json.dumps(body)


async def test_the_webhook_and_the_api_survive_hostile_input_and_answer_customers(
    settings: Settings, brain: Brain
) -> None:
    rng = random.Random(20261206)
    async with running_bot(
        settings, brain, telegram_mode="webhook", telegram_webhook_secret=WEBHOOK_SECRET,
        telegram_webhook_url=f"http://127.0.0.1:{settings.http_port}", api_token=API_TOKEN,
    ) as bot:
        await bot.fake.wait_for("setWebhook")
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
