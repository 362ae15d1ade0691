"""A running bot (real aiogram, real Redis) against the fake Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from bots.runtime import Runtime, Tuning
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.keys import shard_of

ALL_ROLES = frozenset({"ingress", "worker", "sender"})


@dataclass
class BotUnderTest:
    fake: FakeTelegram
    runtime: Runtime
    stop: asyncio.Event
    task: asyncio.Task[None]

    def texts_to(self, chat_id: int) -> list[str]:
        return [message.get("text", "") for message in self.fake.messages_to(chat_id)]

    async def wait_texts(
        self, chat_id: int, count: int, timeout: float = 5.0
    ) -> list[str]:
        """The chat's messages once at least `count` arrived (fails on timeout)."""
        return await wait_until(lambda: self.texts_to(chat_id), lambda got: len(got) >= count,
                                timeout, f"{count} messages to chat {chat_id}")

    async def say(self, user_id: int, text: str, **kwargs: Any) -> dict[str, Any]:
        return self.fake.push_update(self.fake.text_update(user_id, text, **kwargs))

    async def exchange(self, user_id: int, text: str, timeout: float = 5.0) -> list[str]:
        """Send one message and return every reply the bot decided for it, once delivered."""
        before = len(self.texts_to(user_id))
        update = await self.say(user_id, text)
        event_id = f"tg:{self.fake.bot_id}:{update['update_id']}"
        conv_key = self.runtime.keys.conversation(f"tg:{user_id}")

        async def committed() -> bool:
            entry = await self.runtime.redis.hget(conv_key, "last_event")
            if not entry:
                return False
            stream_entries = await self.runtime.redis.xrange(
                self.runtime.keys.inbound_stream(
                    shard_of(f"tg:{user_id}", self.runtime.settings.ingest_shards)
                ), entry, entry,
            )
            return bool(stream_entries) and event_id in stream_entries[0][1]["e"]

        await wait_until(committed, bool, timeout, f"the bot's turn for {text!r}")
        transcript = await self.runtime.store.transcript(f"tg:{user_id}", last=200)
        last_in = max(i for i, entry in enumerate(transcript) if entry["dir"] == "in")
        replies = sum(1 for entry in transcript[last_in:] if entry["dir"] == "out")
        if (await self.conversation(user_id)).state == "queued" and \
                transcript[-1]["dir"] == "system":
            # handed off: the place in the queue comes last, in a message of its own or in the
            # flow's last one (folded in when that has no buttons)
            texts = await wait_until(
                lambda: self.texts_to(user_id),
                lambda got: len(got) >= before + max(replies, 1)
                and "в очереди" in got[-1], timeout, f"the queue notice after {text!r}")
            return list(texts[before:])
        texts = await self.wait_texts(user_id, before + replies, timeout)
        return texts[before:]

    async def conversation(self, user_id: int) -> Any:
        return await self.runtime.store.load(f"tg:{user_id}")


async def wait_until(
    probe: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_bot(
    settings: Settings, brain: Brain, *, fake: FakeTelegram | None = None,
    roles: frozenset[str] = ALL_ROLES, tuning: Tuning | None = None, **overrides: Any,
) -> AsyncIterator[BotUnderTest]:
    own_fake = fake is None
    fake = fake or FakeTelegram(token=settings_token(settings))
    if own_fake:
        await fake.start()
    values = settings.model_dump()
    values.update(telegram_api_url=fake.url, **overrides)
    configured = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    runtime = await Runtime.open(configured, brain=brain, tuning=tuning or Tuning())
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, set(roles)))
    try:
        yield BotUnderTest(fake, runtime, stop, task)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
        await runtime.close()
        if own_fake:
            await fake.close()


def settings_token(settings: Settings) -> str:
    assert settings.telegram_bot_token is not None
    return settings.telegram_bot_token.get_secret_value()
