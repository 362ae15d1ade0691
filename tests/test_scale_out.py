"""Several `supportbot run` processes over one Redis: shards spread over the live ones, the
sender and the poller run once, a killed process's work moves within its lease, and every
customer is answered exactly once while processes die and join under load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis

from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.keys import Keys
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import wait_until
from tests.test_worker_crash import TEXTS, expected_replies

SHARDS = 6
LEASE = 2.0
USERS = range(8101, 8161)


def bot_process(settings: Settings, api_url: str) -> subprocess.Popen[bytes]:
    """A real `supportbot run` with every role, as production starts it."""
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_PREFIX": settings.redis_prefix,
        "TELEGRAM_BOT_TOKEN": FAKE_TOKEN,
        "TELEGRAM_API_URL": api_url,
        "TELEGRAM_POLL_TIMEOUT": "1",
        "CACHE_DIR": str(settings.cache_dir),
        "DATA_DIR": str(settings.data_dir),
        "INGEST_SHARDS": str(SHARDS),
        "LEASE_SECONDS": str(LEASE),
        "HTTP_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from bots.cli.main import main; main()", "run"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def shard_holders(redis: aioredis.Redis, keys: Keys) -> Counter[str]:
    holders = [await redis.get(keys.shard_lease(shard)) for shard in range(SHARDS)]
    return Counter(str(holder).split(":")[1] for holder in holders if holder)  # by pid


def spread_over(pids: set[int]) -> Callable[[Counter[str]], bool]:
    """Every live process holds its share: SHARDS // n, the first SHARDS % n one more."""
    wanted = {str(pid) for pid in pids}
    return lambda held: set(held) == wanted and sorted(held.values()) == \
        sorted(len(range(i, SHARDS, len(pids))) for i in range(len(pids)))


async def test_three_processes_share_the_shards_survive_a_kill_and_answer_once(
    settings: Settings, brain: Brain, redis: aioredis.Redis
) -> None:
    keys = Keys(settings.redis_prefix)
    expected = expected_replies(brain, USERS, messages=2)
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        with processes() as started:
            started.extend(bot_process(settings, fake.url) for _ in range(3))
            fake.push_update(fake.text_update(9999, "спасибо"))
            await wait_until(lambda: fake.messages_to(9999), bool, 90, "the first answer")
            pids = {process.pid for process in started}
            await wait_until(lambda: shard_holders(redis, keys), spread_over(pids), 20,
                             "the shards spread 2/2/2 over three processes")

            for user in USERS:  # the first message of each, then kill one mid-stream
                fake.push_update(fake.text_update(user, TEXTS[user % len(TEXTS)]))
            await wait_until(lambda: len(fake.calls_of("sendMessage")), lambda n: n > 20, 30,
                             "the first answers")
            victim = started[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = time.monotonic()
            for user in USERS:
                fake.push_update(fake.text_update(user, TEXTS[(user + 1) % len(TEXTS)]))
            started.append(bot_process(settings, fake.url))
            total = sum(expected.values()) + 1
            await wait_until(lambda: len(fake.calls_of("sendMessage")), lambda n: n >= total,
                             60, "every answer")
            recovered = time.monotonic() - killed_at
            await asyncio.sleep(1.0)  # time for any duplicate to show up
            live = {process.pid for process in started if process.poll() is None}
            await wait_until(lambda: shard_holders(redis, keys), spread_over(live), 20,
                             "the shards spread over the three live processes again")
            assert all(process.poll() is None for process in started[1:])

    got = Counter(call.params["chat_id"] for call in fake.calls_of("sendMessage"))
    wrong = {user: (got[user], expected[user]) for user in USERS if got[user] != expected[user]}
    assert not wrong, f"(answers got, expected) of customers answered wrongly: {wrong}"
    # The dead process's shards and sender wait for its leases to run out, then go at once.
    assert recovered < LEASE + 15, f"answers took {recovered:.1f}s after the kill"
