"""Hostile requests at the bot's HTTP entry points and hostile settings: secrets that would
switch authentication off are refused at start-up, and bodies nested thousands deep or not in
UTF-8 are a 400 that stores nothing (they were a 500 from the decoder's RecursionError, and
UTF-16 was decoded and acted on)."""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest

from bots.settings import MIN_SECRET, Settings, SettingsError, load_settings
from bots.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from bots.turns import Brain
from handoff.jsonbody import MAX_DEPTH, BodyError, parse_json
from tests.hostile import keyspace, settled_keyspace, webhook_bot
from tests.telegram_harness import BotUnderTest
from tests.vk_harness import CONFIRMATION, SECRET, running_vk_bot

API_TOKEN = "hostile-api-token-0123456789"
WEBHOOK_SECRET = "hostile-webhook-0123456789"
NESTED = b"[" * 5000 + b"]" * 5000  # 10 KB
UPDATE = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "привет",
                                      "chat": {"id": 7, "type": "private"},
                                      "from": {"id": 7, "is_bot": False, "first_name": "A"}}}


@pytest.mark.parametrize("name", ["TELEGRAM_WEBHOOK_SECRET", "VK_SECRET", "API_TOKEN"])
@pytest.mark.parametrize("value", ["", "short"])
def test_an_empty_or_short_secret_is_refused_in_one_line(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, **{name.lower(): value})
    assert str(refused.value).startswith(f"{name}: ")
    assert f"at least {MIN_SECRET} characters" in str(refused.value)


def test_webhook_mode_without_its_secret_does_not_start() -> None:
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        load_settings(_env_file=None, telegram_bot_token="1:x", telegram_mode="webhook",
                      telegram_webhook_url="https://bot.example.com")
    with pytest.raises(SettingsError, match="A-Z a-z 0-9"):
        load_settings(_env_file=None, telegram_webhook_secret="a" * 15 + "!")


@pytest.mark.parametrize("body, reason", [
    (NESTED, "nested deeper"),
    (json.dumps([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]).encode(),
     "nested deeper"),
    (json.dumps(UPDATE).encode("utf-16"), "not UTF-8"),
    (b"\xff\xfe{", "not UTF-8"),
    (b"{oops", "not JSON"),
])
def test_bodies_are_utf8_json_nested_at_most_so_deep(body: bytes, reason: str) -> None:
    with pytest.raises(BodyError, match=reason):
        parse_json(body)
    assert parse_json(json.dumps([[1]] * 3).encode()) == [[1]] * 3
    assert MAX_DEPTH >= 10  # Telegram updates and VK events nest about six levels


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http, \
            http.post(url, data=io.BytesIO(body), headers=headers) as response:
        return response.status


async def stored(bot: BotUnderTest) -> int:
    keys, settings = bot.runtime.keys, bot.runtime.settings
    return sum([await bot.runtime.redis.xlen(keys.inbound_stream(shard))
                for shard in range(settings.ingest_shards)])


async def test_the_webhook_and_the_api_answer_400_and_store_nothing(
    settings: Settings, brain: Brain
) -> None:
    async with webhook_bot(settings, brain, WEBHOOK_SECRET, API_TOKEN) as bot:
        base = f"http://127.0.0.1:{settings.http_port}"
        webhook = {SECRET_HEADER: WEBHOOK_SECRET}
        api = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
        hostile: list[tuple[str, bytes, dict[str, Any]]] = [
            (WEBHOOK_PATH, NESTED, webhook),
            (WEBHOOK_PATH, json.dumps(UPDATE).encode("utf-16"), webhook),
            ("/api/v1/operators/api:crm/status", NESTED, api),
            ("/api/v1/operators/api:crm/status", json.dumps({"status": "online"}).encode(
                "utf-16"), api),
        ]
        for path, body, headers in hostile:
            assert await post(base + path, body, headers) == 400, path
        assert await stored(bot) == 0
        assert await post(base + WEBHOOK_PATH, json.dumps(UPDATE).encode(), webhook) == 200
        assert await stored(bot) == 1  # the same body in UTF-8 is taken


async def test_the_vk_callback_answers_400_to_nested_json(settings: Settings, brain: Brain
                                                          ) -> None:
    async with running_vk_bot(settings, brain, mode="callback") as bot, \
            aiohttp.ClientSession() as http:
        async with http.post(bot.callback_url, data=NESTED) as nested:
            assert nested.status == 400
        event = bot.vk.callback_body(bot.vk.message_new(7401, "привет"), SECRET)
        async with http.post(bot.callback_url, data=json.dumps(event).encode("utf-16")) as utf16:
            assert utf16.status == 400


def _refused_at_the_webhook(api: dict[str, str]) -> list[tuple[str, bytes, dict[str, str]]]:
    update = json.dumps(UPDATE).encode()
    webhook = {SECRET_HEADER: WEBHOOK_SECRET}
    return [
        (WEBHOOK_PATH, update, {}),  # no secret
        (WEBHOOK_PATH, update, {SECRET_HEADER: "x" * len(WEBHOOK_SECRET)}),  # a wrong one
        (WEBHOOK_PATH, b"{" * 2_000_000, webhook),  # over the size limit
        (WEBHOOK_PATH, NESTED, webhook),
        (WEBHOOK_PATH, b"\xff\xfe\x00", webhook),
        (WEBHOOK_PATH, b"[1, 2, 3]", webhook),
        (WEBHOOK_PATH, json.dumps({"update_id": "1", "message": {}}).encode(), webhook),
        ("/api/v1/conversations/tg:7/claim", b'{"operator": "api:x"}', {}),
        ("/api/v1/conversations/tg:7/claim", b'{"operator": "api:x"}',
         {"Authorization": "Bearer " + "x" * len(API_TOKEN)}),
        ("/api/v1/conversations/tg:7/claim", b'{"operator": 5}', api),
        ("/api/v1/conversations/tg:7/reply", b'{"text": ""}', api),
        ("/api/v1/conversations/" + "z" * 5000 + "/close", b"{}", api),
        ("/api/v1/operators/api:crm/status", b'{"status": "sleeping"}', api),
    ]


async def test_refused_requests_store_nothing_at_any_entry_point(
    settings: Settings, brain: Brain
) -> None:
    async with webhook_bot(settings, brain, WEBHOOK_SECRET, API_TOKEN) as bot:
        base = f"http://127.0.0.1:{settings.http_port}"
        api = {"Authorization": f"Bearer {API_TOKEN}"}
        assert await post(base + WEBHOOK_PATH, json.dumps(UPDATE).encode(),
                          {SECRET_HEADER: WEBHOOK_SECRET}) == 200
        await bot.wait_texts(7, 1)  # every role is up and has made its keys
        before = await settled_keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        for path, body, headers in _refused_at_the_webhook(api):
            status = await post(base + path, body, headers)
            assert status < 500, (path[:60], status)
        assert await keyspace(bot.runtime.redis, bot.runtime.keys.prefix) == before


async def test_refused_callbacks_store_nothing(settings: Settings, brain: Brain) -> None:
    async with running_vk_bot(settings, brain, mode="callback") as bot:
        good = bot.vk.message_new(7402, "привет")
        refused: list[Any] = [
            bot.vk.callback_body(good, "wrong-secret-0123456789"),
            {**bot.vk.callback_body(good, SECRET), "group_id": 78},
            {**bot.vk.callback_body(good, SECRET), "group_id": 77.0},
            {**bot.vk.callback_body(good, SECRET), "secret": None},
            {"type": "confirmation", "group_id": 77, "secret": "wrong-secret-0123456789"},
            {"type": "message_new", "group_id": 77, "secret": SECRET, "object": "junk"},
            [bot.vk.callback_body(good, SECRET)],
        ]
        before = await settled_keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        for body in refused:
            status, text = await bot.post(body)
            assert status < 500 and text != CONFIRMATION, (body, status, text)
        assert await keyspace(bot.runtime.redis, bot.runtime.keys.prefix) == before
        assert await bot.post(bot.vk.callback_body(good, SECRET)) == (200, "ok")
        stored_now = await keyspace(bot.runtime.redis, bot.runtime.keys.prefix)
        assert stored_now != before  # and the good one is stored
