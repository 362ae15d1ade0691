"""The bot through Redis going away: a restart (SIGTERM, and SIGKILL with appendonly) and a
Sentinel failover. No role exits, /healthz says 503 with the reason meanwhile, and once Redis is
back every customer is answered, exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bots.settings import Settings
from bots.turns import Brain
from fakes.redis_topology import RedisProcess, SentinelTopology
from handoff.embedded_redis import free_port
from tests.telegram_harness import BotUnderTest, running_bot, wait_until

USERS = range(8301, 8321)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis of the test's own (it is restarted), persisting like production."""
    server = RedisProcess(tmp_path / "redis", appendonly=True, appendfsync="everysec").start()
    try:
        yield server
    finally:
        server.stop()


async def healthz(bot: BotUnderTest) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{bot.runtime.settings.http_port}/healthz"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def ask_everyone(bot: BotUnderTest, text: str) -> None:
    for user in USERS:
        await bot.say(user, text)


def answers(bot: BotUnderTest) -> Counter[int]:
    return Counter(int(call.params["chat_id"]) for call in bot.fake.calls_of("sendMessage"))


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_a_redis_restart_stops_nothing_and_loses_nothing(
    settings: Settings, brain: Brain, redis_server: RedisProcess, how: signal.Signals,
) -> None:
    async with running_bot(settings, brain, redis_url=redis_server.url,
                           http_port=free_port()) as bot:
        await ask_everyone(bot, "спасибо")
        await wait_until(lambda: answers(bot), lambda got: len(got) == len(USERS), 20,
                         "every first answer")
        assert (await healthz(bot))[0] == 200
        await asyncio.sleep(1.5)  # past appendfsync everysec: what was answered is on disk

        await asyncio.to_thread(redis_server.stop, how)
        _status, body = await wait_until(lambda: healthz(bot), lambda r: r[0] == 503, 10,
                                         "/healthz to report Redis away")
        problems = body["problems"]
        assert isinstance(problems, list) and str(problems[0]).startswith("redis: ")
        await ask_everyone(bot, "привет")  # they wait at Telegram until Redis is back
        await asyncio.sleep(1.0)
        restarted = time.monotonic()
        await asyncio.to_thread(redis_server.start)

        await wait_until(lambda: answers(bot), lambda got: min(got[u] for u in USERS) >= 2, 30,
                         "every second answer")
        print(f"\n{how.name}: answers flow again {time.monotonic() - restarted:.1f}s after "
              f"Redis is back")
        await asyncio.sleep(1.0)  # time for any duplicate to show up
        assert not bot.task.done(), "the bot stopped"
        assert {user: answers(bot)[user] for user in USERS} == {user: 2 for user in USERS}
        await wait_until(lambda: healthz(bot), lambda r: r[0] == 200, 20, "healthy again")


async def test_a_sentinel_failover_under_load(
    settings: Settings, brain: Brain, tmp_path: Path,
) -> None:
    topology = await asyncio.to_thread(SentinelTopology(tmp_path / "sentinel").start)
    try:
        sentinels = ",".join(f"{host}:{port}" for host, port in topology.sentinels)
        async with running_bot(settings, brain, redis_url=None, redis_sentinels=sentinels,
                               redis_sentinel_master=topology.master_name,
                               http_port=free_port()) as bot:
            await ask_everyone(bot, "спасибо")
            await wait_until(lambda: answers(bot), lambda got: len(got) == len(USERS), 20,
                             "every first answer")
            await asyncio.sleep(1.5)  # replicated, well past the replication lag
            killed = await asyncio.to_thread(topology.kill_primary)
            await ask_everyone(bot, "привет")
            failover = await asyncio.to_thread(topology.wait_failover, 30.0)
            await wait_until(lambda: answers(bot), lambda got: min(got[u] for u in USERS) >= 2,
                             30, "every second answer after the failover")
            print(f"\nfailover from :{killed} in {failover:.1f}s")
            await asyncio.sleep(1.0)
            assert not bot.task.done(), "the bot stopped"
            assert {user: answers(bot)[user] for user in USERS} == {user: 2 for user in USERS}
            assert topology.primary_port() != killed
    finally:
        await asyncio.to_thread(topology.stop)
