"""Hostile input for the property-style tests: generators of texts and broken objects, and a
snapshot of what Redis holds, to show that a refused request stored nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bots.settings import Settings
from bots.turns import Brain
from tests.telegram_harness import BotUnderTest, running_bot

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


# Keys that change on their own while a bot runs (leases renewed, members' heartbeats).
HOUSEKEEPING = (":lease", ":workers")


async def keyspace(redis: aioredis.Redis, prefix: str) -> dict[str, bytes]:
    """Every key under the prefix with its serialized value, housekeeping aside: equal snapshots
    before and after a request mean it stored nothing and changed nothing."""
    snapshot = {}
    for key in await redis.keys(f"{prefix}*"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if any(part in name for part in HOUSEKEEPING):
            continue
        value = await redis.dump(name)
        if value is not None:
            snapshot[name] = value
    return snapshot


async def settled_keyspace(redis: aioredis.Redis, prefix: str) -> dict[str, bytes]:
    """The keyspace once the bot's roles have finished what they were doing (two snapshots
    0.2 s apart agree), so a later difference is the test's doing."""
    previous = await keyspace(redis, prefix)
    for _ in range(25):
        await asyncio.sleep(0.2)
        current = await keyspace(redis, prefix)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the keyspace kept changing for 5 s")


@contextlib.asynccontextmanager
async def webhook_bot(settings: Settings, brain: Brain, secret: str, api_token: str
                      ) -> AsyncIterator[BotUnderTest]:
    """The bot in webhook mode with the HTTP API on, once Telegram was told the webhook."""
    async with running_bot(
        settings, brain, telegram_mode="webhook", telegram_webhook_secret=secret,
        telegram_webhook_url=f"http://127.0.0.1:{settings.http_port}", api_token=api_token,
    ) as bot:
        await bot.fake.wait_for("setWebhook")
        yield bot
