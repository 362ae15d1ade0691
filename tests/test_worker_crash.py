"""A worker process killed with SIGKILL mid-stream loses no message and answers none twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable

from bots.settings import Settings
from bots.turns import Brain
from flows.engine import DialogueState, Turn
from tests.telegram_harness import running_bot, wait_until

USERS = range(7001, 7081)
MESSAGES_PER_USER = 5
TEXTS = ["спасибо", "привет", "какой у вас график работы", "спасибо большое"]


def worker_process(settings: Settings, api_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_PREFIX": settings.redis_prefix,
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token",
        "TELEGRAM_API_URL": api_url,
        "CACHE_DIR": str(settings.cache_dir),
        "DATA_DIR": str(settings.data_dir),
        "INGEST_SHARDS": str(settings.ingest_shards),
        "LEASE_SECONDS": str(settings.lease_seconds),
        "HTTP_PORT": "0",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from bots.cli.main import main; main()", "run", "--role", "worker"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def expected_replies(brain: Brain, users: Iterable[int] = USERS,
                     messages: int = MESSAGES_PER_USER) -> dict[int, int]:
    """Replies each user must get, computed by running the same texts through the engine
    (user u's message n is TEXTS[(u + n) % len(TEXTS)])."""
    per_user: dict[int, int] = {}
    for user in users:
        state, count = DialogueState(), 0
        for number in range(messages):
            text = TEXTS[(user + number) % len(TEXTS)]
            parse = brain.nlu.parse_sync(text)  # type: ignore[attr-defined]
            result = brain.engine.handle(state, Turn(text=text, parse=parse))
            state, count = result.state, count + len(result.replies)
        per_user[user] = count
    return per_user


async def test_killed_worker_loses_nothing_and_doubles_nothing(
    settings: Settings, brain: Brain
) -> None:
    expected = expected_replies(brain)
    async with running_bot(settings, brain, roles=frozenset({"ingress", "sender"})) as bot:
        first = worker_process(settings, bot.fake.url)
        try:
            await bot.say(9999, "спасибо")  # wait until the worker is up and answering
            await bot.wait_texts(9999, 1, timeout=60)
            for number in range(MESSAGES_PER_USER):
                for user in USERS:
                    await bot.say(user, TEXTS[(user + number) % len(TEXTS)])
            total = sum(expected.values())
            await wait_until(lambda: len(bot.fake.calls_of("sendMessage")),
                             lambda sent: sent >= total // 10, 30, "the first replies")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
            if first.stderr:
                first.stderr.close()
        answered_before_kill = len(bot.fake.calls_of("sendMessage")) - 1
        assert answered_before_kill < total, "the kill came too late to test anything"

        second = worker_process(settings, bot.fake.url)
        try:
            await wait_until(lambda: len(bot.fake.calls_of("sendMessage")) - 1,
                             lambda sent: sent >= total, 60, "every reply")
            await asyncio.sleep(0.3)  # time for any duplicate to show up
        finally:
            second.terminate()
            second.wait()
            if second.stderr:
                second.stderr.close()
        got = Counter(call.params["chat_id"] for call in bot.fake.calls_of("sendMessage"))
        assert {user: got[user] for user in USERS} == expected
