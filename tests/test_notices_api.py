"""The notices' HTTP API: a supervisor previews, sends, reads and resumes a notice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from handoff.api import PREFIX, create_api_app
from handoff.conversations import ConversationStore, Limits
from handoff.keys import Keys
from handoff.scripts import Scripts
from handoff.service import HandoffService
from handoff.tokens import allowed
from tests.telegram_harness import wait_until
from tests.test_notices import TEXT, customer_wrote, outbox_texts

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def store(redis: aioredis.Redis, keys: Keys) -> ConversationStore:
    return ConversationStore(redis, keys, Scripts(redis), Limits())


@pytest.fixture
async def client(service: HandoffService, store: ConversationStore) -> AsyncIterator[Client]:
    root = web.Application()
    root.add_subapp(PREFIX, create_api_app(service, store, token=TOKEN))
    async with TestClient(TestServer(root, host="127.0.0.1")) as client:
        yield client


async def test_a_supervisor_previews_sends_and_reads_a_notice(
    client: Client, store: ConversationStore, keys: Keys, redis: aioredis.Redis
) -> None:
    for conv in ("tg:1", "tg:2", "vk:3"):
        await customer_wrote(store, keys, conv, tags="vip" if conv != "tg:2" else "")
    body = {"text": TEXT, "segment": {"tag": "vip", "since": "7d"}, "by": "tg:900"}
    async with client.post(f"{PREFIX}/notices", json=body, headers=AUTH) as response:
        assert response.status == 200
        preview = await response.json()
    assert (preview["count"], preview["first"]) == (2, ["tg:1", "vk:3"])
    assert preview["text"].startswith(TEXT) and "/stop" in preview["text"]
    assert await outbox_texts(redis, keys, "tg") == []  # a preview sends nothing

    async with client.post(f"{PREFIX}/notices", json={**body, "send": True, "language": "en"},
                           headers=AUTH) as response:
        assert response.status == 202
        created = await response.json()
    assert (created["total"], created["created_by"]) == (2, "tg:900")
    assert created["text"].endswith("send /stop.")

    async def read() -> dict[str, object]:
        async with client.get(f"{PREFIX}/notices/{created['id']}", headers=AUTH) as response:
            assert response.status == 200
            return dict(await response.json())

    done = await wait_until(read, lambda n: n["status"] == "done", 5, "the notice sent")
    assert (done["sent"], done["refused"]) == (2, 0)
    assert [m.conversation for m in await outbox_texts(redis, keys, "tg")] == ["tg:1"]
    async with client.post(f"{PREFIX}/notices/{created['id']}/resume", headers=AUTH) as response:
        assert response.status == 200
    await wait_until(read, lambda n: not n["running_here"], 5, "the resumed run")
    assert len(await outbox_texts(redis, keys, "tg")) == 1  # nobody twice


async def test_refusals(client: Client, store: ConversationStore, keys: Keys) -> None:
    await customer_wrote(store, keys, "tg:1")
    for body, reason in [({"text": ""}, "text"), ({"text": "x", "segment": {"channel": "ok"}},
                                                  "unknown channel"),
                         ({"text": "x", "segment": {"since": "soon"}}, ""),
                         ({"text": "x", "segment": {"ids": ["tg:9"]}, "send": True}, "nobody")]:
        async with client.post(f"{PREFIX}/notices", json=body, headers=AUTH) as response:
            assert response.status == 400, body
            assert reason in (await response.json())["error"]
    async with client.get(f"{PREFIX}/notices/20261206-a1b2c3", headers=AUTH) as response:
        assert response.status == 404
    async with client.post(f"{PREFIX}/notices/20261206-a1b2c3/resume",
                           headers=AUTH) as response:
        assert response.status == 404
    async with client.get(f"{PREFIX}/notices/nope", headers=AUTH) as response:
        assert response.status == 400


def test_notices_are_a_supervisors() -> None:
    for route in ("notices", "notice", "notice_resume"):
        assert allowed("supervisor", route) and allowed("admin", route)
        assert not allowed("integration", route) and not allowed("reports", route)
